"""SigV4 verification against requests signed by botocore, the reference client."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from lambdaplane.auth import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    SignedRequest,
    body_sha256,
    verify,
)
from lambdaplane.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
ENDPOINT = "http://localhost:9000"
SIGNED_AT = datetime(2026, 11, 26, 19, 0, 0, tzinfo=UTC)
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
ARN_LATEST = "arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST"


def lookup(access_key_id: str) -> str | None:
    return {KEY_ID: SECRET}.get(access_key_id)


@pytest.fixture(autouse=True)
def _offline_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials, no metadata service, no user config: nothing leaves the host."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time botocore signs with."""
    import botocore.auth

    def set_clock(when: datetime) -> None:
        naive = when.astimezone(UTC).replace(tzinfo=None)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: naive)

    set_clock(SIGNED_AT)
    return set_clock


def to_signed_request(method: str, url: str, headers: Any, body: bytes | None) -> SignedRequest:
    """What the server sees on the wire for a request botocore sends."""
    parts = urlsplit(url)
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        lowered[name.lower()] = text
    lowered.setdefault("host", parts.netloc)
    return SignedRequest(
        method=method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=lowered,
        body_sha256=body_sha256(body or b""),
    )


def sign(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    service: str = "lambda",
    region: str = REGION,
    context: dict[str, Any] | None = None,
) -> SignedRequest:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    request.context.update(context or {})
    SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    return to_signed_request(method, request.url, request.headers, body)


def presign(
    url: str,
    *,
    expires: int = 60,
    token: str | None = None,
    s3_style: bool = False,
) -> SignedRequest:
    from botocore.auth import S3SigV4QueryAuth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url)
    signer = S3SigV4QueryAuth if s3_style else SigV4QueryAuth
    signer(Credentials(KEY_ID, SECRET, token), "lambda", REGION, expires=expires).add_auth(request)
    return to_signed_request("GET", request.url, request.headers, b"")


def check(request: SignedRequest, now: datetime = SIGNED_AT, **kwargs: Any) -> str:
    kwargs.setdefault("region", REGION)
    return verify(request, lookup, now, **kwargs)


def replace_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = dict(request.headers)
    if value is None:
        headers.pop(name, None)
    else:
        headers[name] = value
    return SignedRequest(
        request.method, request.raw_path, request.raw_query, headers, request.body_sha256
    )


def with_fields(request: SignedRequest, **changes: Any) -> SignedRequest:
    return dataclasses.replace(request, **changes)


# --- real clients -------------------------------------------------------------------


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


@pytest.fixture
def captured_client(clock: Callable[[datetime], None]) -> Iterator[Callable[..., SignedRequest]]:
    """Call a boto3 client operation and return the request it would have sent."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION
    )
    clients: dict[str, Any] = {}

    def capture(request: Any, **_: Any) -> None:
        raise _Captured(request)

    def call(service: str, operation: str, **params: Any) -> SignedRequest:
        if service not in clients:
            client = session.client(service, endpoint_url=ENDPOINT)
            client.meta.events.register("before-send", capture)
            clients[service] = client
        with pytest.raises(_Captured) as caught:
            getattr(clients[service], operation)(**params)
        sent = caught.value.request
        body = sent.body
        if isinstance(body, str):
            body = body.encode()
        elif body is not None and not isinstance(body, bytes):
            body = body.read()
        return to_signed_request(sent.method, sent.url, sent.headers, body)

    yield call


@pytest.mark.parametrize(
    ("operation", "params", "path_fragment"),
    [
        (
            "get_function_configuration",
            {"FunctionName": ARN_LATEST},
            "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-function%3A%24LATEST",
        ),
        ("get_function", {"FunctionName": "my-function", "Qualifier": "1"}, "my-function"),
        (
            "list_versions_by_function",
            {"FunctionName": "f", "Marker": "a b/c+d=e&f", "MaxItems": 5},
            "/versions",
        ),
        ("list_functions", {"Marker": "x", "MaxItems": 10}, "/functions"),
        (
            "invoke",
            {
                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f",
                "Qualifier": "$LATEST",
                "Payload": json.dumps({"key": "value with  spaces", "n": [1, 2]}).encode(),
            },
            "/invocations",
        ),
        (
            "create_function",
            {
                "FunctionName": "f",
                "Runtime": "python3.12",
                "Role": "arn:aws:iam::123456789012:role/r",
                "Handler": "h.handler",
                "Code": {"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
            },
            "/functions",
        ),
    ],
)
def test_boto3_lambda_requests_verify(
    captured_client: Callable[..., SignedRequest],
    operation: str,
    params: dict[str, Any],
    path_fragment: str,
) -> None:
    request = captured_client("lambda", operation, **params)
    assert path_fragment in request.raw_path
    assert check(request) == KEY_ID
    assert check(request, SIGNED_AT + timedelta(minutes=5)) == KEY_ID


def test_boto3_logs_request_verifies(captured_client: Callable[..., SignedRequest]) -> None:
    request = captured_client("logs", "filter_log_events", logGroupName="/aws/lambda/f")
    assert check(request) == KEY_ID
    with pytest.raises(InvalidSignatureException) as error:
        check(request, services=frozenset({"lambda"}))
    assert str(error.value) == "Credential should be scoped to correct service: 'lambda'. "


def test_boto3_post_with_tampered_body_fails(
    captured_client: Callable[..., SignedRequest],
) -> None:
    request = captured_client("lambda", "invoke", FunctionName="f", Payload=b'{"a": 1}')
    tampered = with_fields(request, body_sha256=body_sha256(b'{"a": 2}'))
    with pytest.raises(InvalidSignatureException) as error:
        check(tampered)
    assert str(error.value) == MISMATCH


# --- botocore's signer directly -----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"{ENDPOINT}/2015-03-31/functions",
        f"{ENDPOINT}/2015-03-31/functions/",
        f"{ENDPOINT}/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012"
        "%3Afunction%3Af%3A%24LATEST/configuration",
        f"{ENDPOINT}/2015-03-31/functions/f/configuration?Qualifier=1&Marker=x",
        f"{ENDPOINT}/2015-03-31/functions/f/versions?Marker=a%20b%2Fc&MaxItems=3",
        f"{ENDPOINT}/2015-03-31/functions?FunctionVersion=ALL&Marker=&MaxItems=50",
        f"{ENDPOINT}/2015-03-31//functions/./f/../g/policy",
        f"{ENDPOINT}/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af",
    ],
)
def test_get_requests_verify(clock: Callable[[datetime], None], url: str) -> None:
    request = sign("GET", url)
    assert check(request) == KEY_ID


def test_query_is_canonicalised_from_the_wire_form(clock: Callable[[datetime], None]) -> None:
    """A proxy or client may send a query that differs from its canonical encoding."""
    request = sign(
        "GET", f"{ENDPOINT}/2015-03-31/functions/f/aliases?Marker=a%2Fb&Version=%24LATEST"
    )
    assert check(request) == KEY_ID
    for wire in ("Version=$LATEST&Marker=a%2fb", "Marker=a/b&&Version=%24LATEST"):
        assert check(with_fields(request, raw_query=wire)) == KEY_ID
    with pytest.raises(InvalidSignatureException):
        check(with_fields(request, raw_query="Marker=a%2Fc&Version=%24LATEST"))


def test_post_with_json_body_verifies(clock: Callable[[datetime], None]) -> None:
    body = json.dumps({"FunctionName": "f", "Environment": {"Variables": {"A": "1"}}}).encode()
    request = sign(
        "POST",
        f"{ENDPOINT}/2015-03-31/functions",
        body=body,
        headers={"Content-Type": "application/json", "X-Custom": "  spaced    out\tvalue  "},
    )
    assert request.body_sha256 == body_sha256(body)
    assert check(request) == KEY_ID
    # The header arriving with different inner whitespace still canonicalises the same.
    assert check(replace_header(request, "x-custom", "spaced out   value")) == KEY_ID


def test_date_header_instead_of_x_amz_date(clock: Callable[[datetime], None]) -> None:
    request = sign(
        "GET",
        f"{ENDPOINT}/2015-03-31/functions",
        headers={"Date": "Thu, 01 Jan 2026 00:00:00 GMT"},
    )
    assert "x-amz-date" not in request.headers
    assert request.headers["date"].startswith("Thu, 26 Nov 2026 19:00:00")
    assert check(request) == KEY_ID


def test_unsigned_payload_header_accepted(clock: Callable[[datetime], None]) -> None:
    request = sign(
        "PUT",
        "https://localhost:9000/2015-03-31/functions/f/code",
        body=b'{"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}',
        context={"payload_signing_enabled": False},
    )
    assert request.headers["x-amz-content-sha256"] == UNSIGNED_PAYLOAD
    assert check(request) == KEY_ID


def test_content_sha256_header_must_match_body(clock: Callable[[datetime], None]) -> None:
    body = b'{"a": 1}'
    request = sign(
        "POST",
        f"{ENDPOINT}/2015-03-31/functions/f/invocations",
        body=body,
        headers={"X-Amz-Content-SHA256": body_sha256(body)},
    )
    assert check(request) == KEY_ID
    with pytest.raises(InvalidSignatureException) as error:
        check(with_fields(request, body_sha256=body_sha256(b"other")))
    assert "x-amz-content-sha256" in str(error.value)


def test_wrong_secret(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions", secret="not-the-secret")
    with pytest.raises(InvalidSignatureException) as error:
        check(request)
    assert str(error.value) == MISMATCH
    assert error.value.status == 403


@pytest.mark.parametrize(
    "change",
    [
        {"method": "DELETE"},
        {"raw_path": "/2015-03-31/functions/other"},
        {"raw_query": "Marker=y"},
        {"body_sha256": body_sha256(b"x")},
    ],
)
def test_tampered_request(clock: Callable[[datetime], None], change: dict[str, str]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions?Marker=x")
    with pytest.raises(InvalidSignatureException) as error:
        check(with_fields(request, **change))
    assert str(error.value) == MISMATCH


def test_tampered_signed_header(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    with pytest.raises(InvalidSignatureException):
        check(replace_header(request, "host", "evil.example.com"))


def test_unknown_access_key(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions", key_id="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(UnrecognizedClientException) as error:
        check(request)
    assert str(error.value) == "The security token included in the request is invalid."


def test_clock_skew_past(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    assert check(request, SIGNED_AT + timedelta(minutes=5)) == KEY_ID
    with pytest.raises(InvalidSignatureException) as error:
        check(request, SIGNED_AT + timedelta(minutes=30))
    assert str(error.value) == (
        "Signature expired: 20261126T190000Z is now earlier than 20261126T192500Z "
        "(20261126T193000Z - 5 min.)"
    )
    with pytest.raises(InvalidSignatureException):
        check(request, SIGNED_AT + timedelta(minutes=5, seconds=1))


def test_clock_skew_future(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    assert check(request, SIGNED_AT - timedelta(minutes=5)) == KEY_ID
    with pytest.raises(InvalidSignatureException) as error:
        check(request, SIGNED_AT - timedelta(minutes=10))
    assert str(error.value) == (
        "Signature not yet current: 20261126T190000Z is still later than 20261126T185500Z "
        "(20261126T185000Z + 5 min.)"
    )


def test_naive_now_is_utc(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    assert check(request, SIGNED_AT.replace(tzinfo=None)) == KEY_ID


def test_wrong_region(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions", region="eu-west-1")
    with pytest.raises(InvalidSignatureException) as error:
        check(request)
    assert str(error.value) == "Credential should be scoped to a valid region. "


def test_wrong_service(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions", service="s3")
    with pytest.raises(InvalidSignatureException) as error:
        check(request)
    assert str(error.value) == "Credential should be scoped to correct service: 'lambda'. "


def test_credential_date_must_match_request_date(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    auth = request.headers["authorization"].replace("/20261126/", "/20261125/")
    with pytest.raises(InvalidSignatureException) as error:
        check(replace_header(request, "authorization", auth))
    assert str(error.value) == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
        "from HTTP: '20261125' != '20261126', from '20261126T190000Z'."
    )


def test_host_must_be_signed(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    auth = request.headers["authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    with pytest.raises(InvalidSignatureException) as error:
        check(replace_header(request, "authorization", auth))
    assert "'Host'" in str(error.value)


def test_missing_authentication() -> None:
    request = SignedRequest("GET", "/2015-03-31/functions", "", {"host": "h"}, EMPTY_SHA256)
    with pytest.raises(MissingAuthenticationTokenException) as error:
        check(request)
    assert str(error.value) == "Missing Authentication Token"
    with pytest.raises(MissingAuthenticationTokenException):
        check(request, any_credentials=True)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (
            f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261126/us-east-1/lambda/aws4_request, "
            "SignedHeaders=host;x-amz-date",
            "Authorization header requires 'Signature' parameter. Authorization="
            f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261126/us-east-1/lambda/aws4_request, "
            "SignedHeaders=host;x-amz-date",
        ),
        (
            "AWS4-HMAC-SHA256 Signature=abc",
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization=AWS4-HMAC-SHA256 Signature=abc",
        ),
        (
            "Bearer eyJhbGciOi",
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization=Bearer eyJhbGciOi",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1, SignedHeaders=host, "
            "Signature=abc",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AKID/20261126/us-east-1'",
        ),
        (
            "AWS4-HMAC-SHA1 Credential=AKID/20261126/us-east-1/lambda/aws4_request, "
            "SignedHeaders=host, Signature=abc",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'.",
        ),
    ],
)
def test_malformed_authorization(authorization: str, expected: str) -> None:
    headers = {"host": "h", "x-amz-date": "20261126T190000Z", "authorization": authorization}
    request = SignedRequest("GET", "/2015-03-31/functions", "", headers, EMPTY_SHA256)
    for any_credentials in (False, True):
        with pytest.raises(IncompleteSignatureException) as error:
            check(request, any_credentials=any_credentials)
        assert str(error.value) == expected


def test_missing_date_header(clock: Callable[[datetime], None]) -> None:
    request = replace_header(sign("GET", f"{ENDPOINT}/2015-03-31/functions"), "x-amz-date", None)
    with pytest.raises(IncompleteSignatureException) as error:
        check(request)
    assert str(error.value).startswith(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256 "
    )


def test_malformed_date(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    with pytest.raises(IncompleteSignatureException) as error:
        check(replace_header(request, "x-amz-date", "2026-11-26T19:00:00Z"))
    assert str(error.value) == (
        "Date must be in ISO-8601 'basic format'. Got '2026-11-26T19:00:00Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_signature_is_compared_case_insensitively(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    head, _, signature = request.headers["authorization"].rpartition("Signature=")
    upper = replace_header(request, "authorization", f"{head}Signature={signature.upper()}")
    assert check(upper) == KEY_ID
    garbage = replace_header(request, "authorization", f"{head}Signature=\u00e9{signature[1:]}")
    with pytest.raises(InvalidSignatureException):
        check(garbage)


# --- any_credentials ----------------------------------------------------------------


def test_any_credentials_accepts_unknown_keys_and_signatures(
    clock: Callable[[datetime], None],
) -> None:
    request = sign(
        "GET", f"{ENDPOINT}/2015-03-31/functions", key_id="AKIAANYTHING00000000", secret="x"
    )

    def no_lookup(access_key_id: str) -> str | None:
        raise AssertionError("keys must not be consulted")

    result = verify(request, no_lookup, SIGNED_AT, region=REGION, any_credentials=True)
    assert result == "AKIAANYTHING00000000"
    with pytest.raises(UnrecognizedClientException):
        check(request)


def test_any_credentials_still_checks_scope_and_clock(clock: Callable[[datetime], None]) -> None:
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions", region="eu-west-1")
    with pytest.raises(InvalidSignatureException):
        check(request, any_credentials=True)
    request = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    with pytest.raises(InvalidSignatureException):
        check(request, SIGNED_AT + timedelta(hours=1), any_credentials=True)


# --- presigned URLs -----------------------------------------------------------------


def test_presigned_url_valid(clock: Callable[[datetime], None]) -> None:
    request = presign(
        f"{ENDPOINT}/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af"
        "/configuration?Qualifier=%24LATEST&Marker=x"
    )
    assert "X-Amz-Signature=" in request.raw_query
    assert "authorization" not in request.headers
    assert check(request) == KEY_ID
    assert check(request, SIGNED_AT + timedelta(seconds=60)) == KEY_ID


def test_presigned_url_with_unsigned_payload(clock: Callable[[datetime], None]) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions/f/configuration", s3_style=True)
    assert check(request) == KEY_ID


def test_presigned_url_with_security_token(clock: Callable[[datetime], None]) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions", token="FwoGZXIvYXdzE//token+/=")
    assert "X-Amz-Security-Token=" in request.raw_query
    assert check(request) == KEY_ID


@pytest.mark.parametrize(
    "tamper",
    [
        lambda q: q.replace("Qualifier=1", "Qualifier=2"),
        lambda q: q + "&Extra=1",
        lambda q: q.replace("X-Amz-Expires=60", "X-Amz-Expires=600"),
        lambda q: q[:-1] + ("0" if q[-1] != "0" else "1"),
    ],
)
def test_presigned_url_tampered(
    clock: Callable[[datetime], None], tamper: Callable[[str], str]
) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions/f/configuration?Qualifier=1")
    with pytest.raises(InvalidSignatureException) as error:
        check(with_fields(request, raw_query=tamper(request.raw_query)))
    assert str(error.value) == MISMATCH


def test_presigned_url_expired(clock: Callable[[datetime], None]) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions", expires=60)
    with pytest.raises(InvalidSignatureException) as error:
        check(request, SIGNED_AT + timedelta(seconds=61))
    assert str(error.value) == (
        "Signature expired: 20261126T190000Z is now earlier than 20261126T190001Z "
        "(20261126T190101Z - 60 sec.)"
    )
    # A long-lived URL stays valid well past the 5-minute header window.
    request = presign(f"{ENDPOINT}/2015-03-31/functions", expires=3600)
    assert check(request, SIGNED_AT + timedelta(minutes=59)) == KEY_ID


def test_presigned_url_not_yet_current(clock: Callable[[datetime], None]) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions", expires=3600)
    with pytest.raises(InvalidSignatureException) as error:
        check(request, SIGNED_AT - timedelta(minutes=10))
    assert str(error.value).startswith("Signature not yet current: 20261126T190000Z")


@pytest.mark.parametrize("expires", [0, 604801])
def test_presigned_url_expires_bounds(clock: Callable[[datetime], None], expires: int) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions", expires=expires)
    with pytest.raises(IncompleteSignatureException):
        check(request)


def test_presigned_url_max_expiry_accepted(clock: Callable[[datetime], None]) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions", expires=604800)
    assert check(request, SIGNED_AT + timedelta(days=6)) == KEY_ID


def test_presigned_url_unknown_key_and_any_credentials(
    clock: Callable[[datetime], None],
) -> None:
    request = presign(f"{ENDPOINT}/2015-03-31/functions")
    query = request.raw_query.replace(KEY_ID, "AKIAOTHER00000000000")
    other = with_fields(request, raw_query=query)
    with pytest.raises(UnrecognizedClientException):
        check(other)
    assert check(other, any_credentials=True) == "AKIAOTHER00000000000"


def test_presigned_url_missing_parameters() -> None:
    request = SignedRequest(
        "GET",
        "/2015-03-31/functions",
        "X-Amz-Signature=abc&X-Amz-Date=20261126T190000Z",
        {"host": "h"},
        EMPTY_SHA256,
    )
    with pytest.raises(IncompleteSignatureException) as error:
        check(request)
    assert str(error.value) == (
        "AWS query-string parameters must include 'X-Amz-Algorithm'. "
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "Re-examine the query-string parameters."
    )


def test_header_and_presigned_together_rejected(clock: Callable[[datetime], None]) -> None:
    signed = sign("GET", f"{ENDPOINT}/2015-03-31/functions")
    presigned = presign(f"{ENDPOINT}/2015-03-31/functions")
    both = with_fields(presigned, headers=signed.headers)
    with pytest.raises(IncompleteSignatureException):
        check(both)
