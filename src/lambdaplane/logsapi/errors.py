"""The CloudWatch Logs API's error codes, rendered by ``protocol.render_error`` as AWS's
JSON 1.1 errors: ``{"__type": "<Code>", "message": "..."}``, HTTP 400."""

from __future__ import annotations

from lambdaplane.errors import LambdaError


class LogsError(LambdaError):
    status = 400
    error_type = None
    message_key = "message"


class InvalidParameterException(LogsError):
    code = "InvalidParameterException"


class ResourceNotFoundException(LogsError):
    code = "ResourceNotFoundException"


class ResourceAlreadyExistsException(LogsError):
    code = "ResourceAlreadyExistsException"


class SerializationException(LogsError):
    code = "SerializationException"


class UnknownOperationException(LogsError):
    code = "UnknownOperationException"


GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."
GROUP_EXISTS = "The specified log group already exists"
STREAM_EXISTS = "The specified log stream already exists"
BAD_TOKEN = "The specified nextToken is invalid."
