"""AWS Signature Version 4 verification, as AWS's own endpoints do it.

Contract: :func:`verify` takes a :class:`SignedRequest` (the request as it arrived
on the wire: method, raw percent-encoded path, raw query string, lower-cased
headers and the hex SHA-256 of the body), a :class:`KeyLookup` mapping access key
ids to secrets, the current time and the server's region. It returns the access
key id that signed the request, or raises one of the 403 errors of
:mod:`lambdaplane.errors` with AWS's wording:

* ``MissingAuthenticationTokenException``: neither an ``Authorization`` header nor a
  presigned query string.
* ``IncompleteSignatureException``: a malformed ``Authorization`` header, credential,
  date or presigned query string.
* ``UnrecognizedClientException``: the access key id is unknown.
* ``InvalidSignatureException``: a wrong region, service, date scope, clock skew of
  more than 5 minutes, an expired presigned URL, a body that does not match
  ``x-amz-content-sha256``, or a signature that does not match.

Both forms of SigV4 are accepted: the ``Authorization: AWS4-HMAC-SHA256 ...`` header
(with ``x-amz-date`` or ``date``) and presigned URLs (``X-Amz-Algorithm``,
``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``,
``X-Amz-Signature``). The canonical request follows AWS for every service but S3:
the path as received is URI-encoded once more (after removing dot segments and
empty segments), query parameters are decoded, re-encoded with RFC 3986's
unreserved set and sorted, and header values are trimmed with inner whitespace
runs collapsed. This is what botocore (boto3, the AWS CLI) and the other AWS SDKs
sign.

``any_credentials=True`` skips the key lookup and the signature comparison only;
the request must still be well formed and correctly scoped (region, service, date)
and within the clock window.

The function is pure apart from a small module-level cache of derived signing keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from time import gmtime, strftime
from typing import Final, Protocol
from urllib.parse import quote, unquote

from lambdaplane.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = [
    "ALGORITHM",
    "DEFAULT_SERVICES",
    "EMPTY_SHA256",
    "MAX_PRESIGNED_EXPIRES",
    "MAX_SKEW_SECONDS",
    "UNSIGNED_PAYLOAD",
    "KeyLookup",
    "SignedRequest",
    "body_sha256",
    "verify",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
EMPTY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
DEFAULT_SERVICES: Final = frozenset({"lambda", "logs"})
MAX_SKEW_SECONDS: Final = 300
MAX_PRESIGNED_EXPIRES: Final = 604800

_SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_INVALID_TOKEN: Final = "The security token included in the request is invalid."
_HOST_NOT_SIGNED: Final = (
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
)
_PRESIGN_PARAMS: Final = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
)
_PRESIGN_MARKERS: Final = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})

# Already canonical: nothing to encode, no dot or empty segments to remove.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9\-_~][A-Za-z0-9\-_.~]*)*/?").fullmatch
_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]*").fullmatch


class KeyLookup(Protocol):
    """Returns the secret access key of an access key id, or None if it is unknown."""

    def __call__(self, access_key_id: str, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as received: what SigV4 signs.

    ``raw_path`` is the path exactly as on the wire (still percent-encoded) and
    ``raw_query`` the query string without ``?``. ``headers`` has lower-cased names;
    repeated headers are joined with ``,``. ``body_sha256`` is the hex SHA-256 of
    the body; None means the caller did not hash it (then ``x-amz-content-sha256``
    is trusted as sent, and without that header the empty body's hash is used).
    Text is the wire bytes decoded as UTF-8 with ``surrogateescape`` (or as ASCII):
    the canonical request is encoded back the same way, byte for byte.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]
    body_sha256: str | None = None


def body_sha256(body: bytes) -> str:
    """The hex SHA-256 of a body, as ``SignedRequest.body_sha256`` expects."""
    return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256


def verify(
    request: SignedRequest,
    keys: KeyLookup,
    now: datetime,
    *,
    region: str,
    services: frozenset[str] = DEFAULT_SERVICES,
    any_credentials: bool = False,
) -> str:
    """Verify the SigV4 signature of ``request``; return the signing access key id.

    ``now`` is the server's clock (a naive datetime is taken as UTC). Raises the
    403 errors described in the module docstring.
    """
    now_ts = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).timestamp()
    headers = request.headers
    authorization = headers.get("authorization")
    query = request.raw_query
    pairs = _split_query(query) if query else []
    presigned = _presign_params(pairs) if "X-Amz-" in query else None
    if authorization is not None:
        if presigned is not None:
            raise IncompleteSignatureException(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter "
                "or the Authorization header should be specified"
            )
        return _verify_header(
            request, pairs, authorization, keys, now_ts, region, services, any_credentials
        )
    if presigned is not None:
        return _verify_presigned(
            request, pairs, presigned, keys, now_ts, region, services, any_credentials
        )
    raise MissingAuthenticationTokenException("Missing Authentication Token")


# --- the two forms ------------------------------------------------------------------


def _verify_header(
    request: SignedRequest,
    pairs: list[tuple[str, str]],
    authorization: str,
    keys: KeyLookup,
    now_ts: float,
    region: str,
    services: frozenset[str],
    any_credentials: bool,
) -> str:
    headers = request.headers
    algorithm, _, rest = authorization.strip().partition(" ")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep and name not in params:
            params[name] = value.strip()
    credential = params.get("Credential")
    signed_headers = params.get("SignedHeaders")
    signature = params.get("Signature")
    amz_date = headers.get("x-amz-date")
    http_date = headers.get("date") if amz_date is None else None
    problems = []
    if not credential:
        problems.append("Authorization header requires 'Credential' parameter.")
    if not signature:
        problems.append("Authorization header requires 'Signature' parameter.")
    if not signed_headers:
        problems.append("Authorization header requires 'SignedHeaders' parameter.")
    if amz_date is None and http_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise IncompleteSignatureException(" ".join(problems) + f" Authorization={authorization}")
    assert credential and signature and signed_headers  # narrowed by the checks above
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}'.")

    timestamp = amz_date if amz_date is not None else _http_date_to_amz(http_date or "")
    request_ts = _parse_amz_date(timestamp)
    access_key_id, scope = _check_scope(credential, timestamp, region, services)
    _check_clock(timestamp, request_ts, now_ts)
    names = signed_headers.split(";")
    if "host" not in names and ":authority" not in names:
        raise InvalidSignatureException(_HOST_NOT_SIGNED)
    payload = _payload_hash(request)
    if any_credentials:
        return access_key_id
    secret = keys(access_key_id)
    if secret is None:
        raise UnrecognizedClientException(_INVALID_TOKEN)

    canonical = (
        f"{request.method.upper()}\n{_canonical_uri(request.raw_path)}\n"
        f"{_canonical_query(pairs, skip_signature=False)}\n"
        f"{_canonical_headers(names, headers)}\n{signed_headers}\n{payload}"
    )
    _check_signature(canonical, timestamp, scope, secret, signature)
    return access_key_id


def _verify_presigned(
    request: SignedRequest,
    pairs: list[tuple[str, str]],
    params: dict[str, str],
    keys: KeyLookup,
    now_ts: float,
    region: str,
    services: frozenset[str],
    any_credentials: bool,
) -> str:
    missing = [
        f"AWS query-string parameters must include '{name}'."
        for name in _PRESIGN_PARAMS
        if not params.get(name)
    ]
    if missing:
        raise IncompleteSignatureException(
            " ".join(missing) + " Re-examine the query-string parameters."
        )
    algorithm = params["X-Amz-Algorithm"]
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    timestamp = params["X-Amz-Date"]
    request_ts = _parse_amz_date(timestamp)
    access_key_id, scope = _check_scope(params["X-Amz-Credential"], timestamp, region, services)

    expires_text = params.get("X-Amz-Expires")
    if expires_text is None:
        _check_clock(timestamp, request_ts, now_ts)
    else:
        expires = _parse_expires(expires_text)
        if request_ts > now_ts + MAX_SKEW_SECONDS:
            _check_clock(timestamp, request_ts, now_ts)
        if now_ts > request_ts + expires:
            now_text = _format_ts(now_ts)
            raise InvalidSignatureException(
                f"Signature expired: {timestamp} is now earlier than "
                f"{_format_ts(now_ts - expires)} ({now_text} - {expires} sec.)"
            )
    signed_headers = params["X-Amz-SignedHeaders"]
    names = signed_headers.split(";")
    if "host" not in names and ":authority" not in names:
        raise InvalidSignatureException(_HOST_NOT_SIGNED)

    headers = request.headers
    content_sha = headers.get("x-amz-content-sha256")
    # AWS's own SDKs sign a presigned request with the hash of its (empty) body;
    # S3-style presigners use UNSIGNED-PAYLOAD. Both are accepted.
    payloads = (
        (_payload_hash(request),)
        if content_sha is not None
        else (request.body_sha256 or EMPTY_SHA256, UNSIGNED_PAYLOAD)
    )
    if any_credentials:
        return access_key_id
    secret = keys(access_key_id)
    if secret is None:
        raise UnrecognizedClientException(_INVALID_TOKEN)

    prefix = (
        f"{request.method.upper()}\n{_canonical_uri(request.raw_path)}\n"
        f"{_canonical_query(pairs, skip_signature=True)}\n"
        f"{_canonical_headers(names, headers)}\n{signed_headers}\n"
    )
    signature = params["X-Amz-Signature"]
    for payload in payloads[:-1]:
        if _signature_matches(prefix + payload, timestamp, scope, secret, signature):
            return access_key_id
    _check_signature(prefix + payloads[-1], timestamp, scope, secret, signature)
    return access_key_id


# --- pieces -------------------------------------------------------------------------


def _presign_params(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    """The decoded X-Amz-* query parameters, or None if this is not a presigned URL."""
    params: dict[str, str] = {}
    for name, value in pairs:
        key = unquote(name) if "%" in name else name
        if key.startswith("X-Amz-") and key not in params:
            params[key] = unquote(value) if "%" in value else value
    if params.keys() & _PRESIGN_MARKERS:
        return params
    return None


def _split_query(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _parse_amz_date(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 basic timestamp (``20261126T190000Z``)."""
    if (
        len(text) == 16
        and text[8] == "T"
        and text[15] == "Z"
        and text.isascii()
        and text[:8].isdigit()
        and text[9:15].isdigit()
    ):
        try:
            return datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[9:11]),
                int(text[11:13]),
                int(text[13:15]),
                tzinfo=UTC,
            ).timestamp()
        except ValueError:
            pass
    raise IncompleteSignatureException(
        f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _http_date_to_amz(text: str) -> str:
    """An RFC 1123 ``Date`` header as the ISO 8601 basic timestamp that was signed."""
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _format_ts(ts: float) -> str:
    return strftime("%Y%m%dT%H%M%SZ", gmtime(int(ts)))


def _check_clock(timestamp: str, request_ts: float, now_ts: float) -> None:
    if request_ts < now_ts - MAX_SKEW_SECONDS:
        raise InvalidSignatureException(
            f"Signature expired: {timestamp} is now earlier than "
            f"{_format_ts(now_ts - MAX_SKEW_SECONDS)} ({_format_ts(now_ts)} - 5 min.)"
        )
    if request_ts > now_ts + MAX_SKEW_SECONDS:
        raise InvalidSignatureException(
            f"Signature not yet current: {timestamp} is still later than "
            f"{_format_ts(now_ts + MAX_SKEW_SECONDS)} ({_format_ts(now_ts)} + 5 min.)"
        )


def _parse_expires(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise IncompleteSignatureException(
            f"X-Amz-Expires should be a number of seconds, got '{text}'."
        )
    expires = int(text)
    if expires < 1:
        raise IncompleteSignatureException("X-Amz-Expires must be at least 1 second.")
    if expires > MAX_PRESIGNED_EXPIRES:
        raise IncompleteSignatureException(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    return expires


def _check_scope(
    credential: str, timestamp: str, region: str, services: frozenset[str]
) -> tuple[str, str]:
    """Split ``AKID/date/region/service/aws4_request``; return (key id, scope)."""
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'"
        )
    access_key_id, date, scope_region, service, terminator = parts
    if terminator != TERMINATOR:
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'. "
        )
    if scope_region != region:
        raise InvalidSignatureException("Credential should be scoped to a valid region. ")
    if service not in services:
        expected = "lambda" if "lambda" in services else min(services, default="")
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{expected}'. "
        )
    if date != timestamp[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: '{date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    return access_key_id, f"{date}/{region}/{service}/{TERMINATOR}"


def _payload_hash(request: SignedRequest) -> str:
    """The payload hash of the canonical request (header form)."""
    declared = request.headers.get("x-amz-content-sha256")
    actual = request.body_sha256
    if declared is None:
        return actual or EMPTY_SHA256
    if declared == UNSIGNED_PAYLOAD or actual is None:
        return declared
    if declared.lower() != actual.lower():
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    return declared


def _canonical_uri(raw_path: str) -> str:
    """The path as received, dot and empty segments removed, URI-encoded once more."""
    if not raw_path:
        return "/"
    if _PLAIN_PATH(raw_path):
        return raw_path
    return _encode_path(raw_path)


@lru_cache(maxsize=256)
def _encode_path(raw_path: str) -> str:
    return quote(_remove_dot_segments(raw_path), safe="/~", errors="surrogateescape")


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def _encode_component(text: str) -> str:
    if _UNRESERVED(text):
        return text
    return _reencode(text)


@lru_cache(maxsize=512)
def _reencode(text: str) -> str:
    return quote(unquote(text, errors="surrogateescape"), safe="-_.~", errors="surrogateescape")


def _canonical_query(pairs: list[tuple[str, str]], *, skip_signature: bool) -> str:
    if not pairs:
        return ""
    encoded = []
    for name, value in pairs:
        key = _encode_component(name)
        if skip_signature and key == "X-Amz-Signature":
            continue
        encoded.append((key, _encode_component(value)))
    encoded.sort()
    return "&".join(f"{key}={value}" for key, value in encoded)


def _canonical_headers(names: list[str], headers: Mapping[str, str]) -> str:
    lines = []
    for name in names:
        value = headers.get(name.lower(), "")
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


_signing_keys: dict[tuple[str, str, str, str], bytes] = {}
_SIGNING_KEYS_MAX: Final = 512


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    cache_key = (secret, date, region, service)
    key = _signing_keys.get(cache_key)
    if key is None:
        key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
        key = hmac.digest(key, region.encode(), "sha256")
        key = hmac.digest(key, service.encode(), "sha256")
        key = hmac.digest(key, TERMINATOR.encode(), "sha256")
        if len(_signing_keys) >= _SIGNING_KEYS_MAX:
            _signing_keys.clear()
        _signing_keys[cache_key] = key
    return key


def _signature_matches(
    canonical: str, timestamp: str, scope: str, secret: str, signature: str
) -> bool:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    date, region, service, _ = scope.split("/", 3)
    key = _signing_key(secret, date, region, service)
    expected = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    provided = signature.lower()
    return provided.isascii() and hmac.compare_digest(expected, provided)


def _check_signature(
    canonical: str, timestamp: str, scope: str, secret: str, signature: str
) -> None:
    if not _signature_matches(canonical, timestamp, scope, secret, signature):
        raise InvalidSignatureException(_SIGNATURE_MISMATCH)
