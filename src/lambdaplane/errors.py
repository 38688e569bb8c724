"""AWS Lambda's error types: one class per error code, each carrying its HTTP status.

Everything below the API layer raises these; ``lambdaplane.api.protocol`` is the one
place that renders them. The body keys follow what AWS sends for each code (and what
botocore's model says): modeled Lambda exceptions carry ``Type`` ("User" or "Service")
plus either ``message`` or ``Message``; ValidationException and the auth errors carry
only a ``message``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LambdaError(Exception):
    """An error with an AWS error code, an HTTP status and a message."""

    code: ClassVar[str] = "ServiceException"
    status: ClassVar[int] = 500
    error_type: ClassVar[str | None] = "Service"
    message_key: ClassVar[str] = "Message"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or "")
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body AWS sends for this error."""
        body: dict[str, Any] = {}
        if self.error_type is not None:
            body["Type"] = self.error_type
        if self.message is not None:
            body[self.message_key] = self.message
        body.update(self.extra)
        return body


class ServiceException(LambdaError):
    pass


class ValidationException(LambdaError):
    code = "ValidationException"
    status = 400
    error_type = None
    message_key = "message"

    @classmethod
    def from_violations(cls, violations: list[str]) -> ValidationException:
        """Coral's wording: '1 validation error detected: …' / 'N validation errors detected: a; b'."""
        count = len(violations)
        noun = "error" if count == 1 else "errors"
        return cls(f"{count} validation {noun} detected: " + "; ".join(violations))


class InvalidParameterValueException(LambdaError):
    code = "InvalidParameterValueException"
    status = 400
    error_type = "User"
    message_key = "message"


class InvalidRequestContentException(LambdaError):
    code = "InvalidRequestContentException"
    status = 400
    error_type = "User"
    message_key = "message"


class ResourceNotFoundException(LambdaError):
    code = "ResourceNotFoundException"
    status = 404
    error_type = "User"
    message_key = "Message"


class ProvisionedConcurrencyConfigNotFoundException(LambdaError):
    code = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404
    error_type = "User"
    message_key = "message"


class ConcurrencyLimitException(LambdaError):
    """InvalidParameterValueException as AWS's concurrency limit checks send it: no ``Type``."""

    code = "InvalidParameterValueException"
    status = 400
    error_type = None
    message_key = "message"


class ResourceConflictException(LambdaError):
    code = "ResourceConflictException"
    status = 409
    error_type = "User"
    message_key = "message"


class CodeSigningConfigNotFoundException(LambdaError):
    code = "CodeSigningConfigNotFoundException"
    status = 404
    error_type = "User"
    message_key = "Message"


class PreconditionFailedException(LambdaError):
    code = "PreconditionFailedException"
    status = 412
    error_type = "User"
    message_key = "message"


class RequestEntityTooLargeException(LambdaError):
    code = "RequestEntityTooLargeException"
    status = 413
    error_type = None
    message_key = "message"


class TooManyRequestsException(LambdaError):
    code = "TooManyRequestsException"
    status = 429
    error_type = "User"
    message_key = "message"


class AccessDeniedException(LambdaError):
    code = "AccessDeniedException"
    status = 403
    error_type = None
    message_key = "Message"


class InvalidSignatureException(LambdaError):
    code = "InvalidSignatureException"
    status = 403
    error_type = None
    message_key = "message"


class UnrecognizedClientException(LambdaError):
    code = "UnrecognizedClientException"
    status = 403
    error_type = None
    message_key = "message"


class MissingAuthenticationTokenException(LambdaError):
    """No credentials at all: AWS answers 403 'Missing Authentication Token'."""

    code = "MissingAuthenticationTokenException"
    status = 403
    error_type = None
    message_key = "message"


class IncompleteSignatureException(LambdaError):
    code = "IncompleteSignatureException"
    status = 403
    error_type = None
    message_key = "message"


class UnknownOperationException(LambdaError):
    """A path and method that match no operation of the Lambda API."""

    code = "UnknownOperationException"
    status = 404
    error_type = None
    message_key = "message"


class NotImplementedYet(LambdaError):
    """An operation of the model that lambdaplane does not serve yet.

    AWS has no such error; we answer like a region where the feature is not offered:
    a clear, AWS-shaped 501 that SDKs surface as a ClientError naming the operation.
    """

    code = "NotImplementedException"
    status = 501
    error_type = "Service"
    message_key = "message"
