"""SigV4 on the real server: the printed keys work, anything else is refused with AWS's errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, signed_request, start_server


def test_printed_keys_are_accepted(server: ServerProcess) -> None:
    assert server.access_key_id.startswith("AKIA") and len(server.access_key_id) == 20
    assert server.access_key_id in server.log() and server.secret_access_key in server.log()
    client = server.client()
    assert "Functions" in client.list_functions()
    client.close()
    creds = server.data_dir / "credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600


def test_wrong_secret_is_refused(server: ServerProcess) -> None:
    client = server.client(aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as exc:
        client.list_functions()
    client.close()
    error = exc.value.response
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith(
        "The request signature we calculated does not match"
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_refused(server: ServerProcess) -> None:
    client = server.client(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
    with pytest.raises(ClientError) as exc:
        client.list_functions()
    client.close()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert (
        exc.value.response["Error"]["Message"]
        == "The security token included in the request is invalid."
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_request_is_refused(server: ServerProcess) -> None:
    status, headers, body = signed_request(server, "GET", "/2015-03-31/functions/", sign=False)
    assert status == 403
    assert headers["x-amzn-errortype"].split(":")[0] == "MissingAuthenticationTokenException"
    assert json.loads(body)["message"] == "Missing Authentication Token"


def test_skewed_clock_is_refused(server: ServerProcess) -> None:
    skewed = datetime.now(UTC) - timedelta(minutes=6)
    client = server.client()
    # botocore stamps requests with this clock; six minutes slow is outside AWS's 5.
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=skewed.replace(tzinfo=None)),
        pytest.raises(ClientError) as exc,
    ):
        client.list_functions()
    client.close()
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "Signature expired" in exc.value.response["Error"]["Message"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _presigned(server: ServerProcess, secret: str, expires: int = 60) -> str:
    request = AWSRequest(method="GET", url=f"{server.endpoint}/2015-03-31/functions/")
    SigV4QueryAuth(
        Credentials(server.access_key_id, secret), "lambda", server.region, expires=expires
    ).add_auth(request)
    return str(request.url)


def test_presigned_requests(server: ServerProcess) -> None:
    with urllib.request.urlopen(
        _presigned(server, server.secret_access_key), timeout=10
    ) as response:
        assert "Functions" in json.loads(response.read())
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(_presigned(server, "wrong"), timeout=10)
    assert exc.value.code == 403
    assert exc.value.headers["x-amzn-errortype"].split(":")[0] == "InvalidSignatureException"
    exc.value.close()


def test_insecure_any_credentials(tmp_path: Any) -> None:
    srv = start_server(tmp_path / "data", "--insecure-any-credentials")
    try:
        client = srv.client(aws_access_key_id="anything", aws_secret_access_key="whatever")
        assert "Functions" in client.list_functions()
        client.close()
        status, _, _ = signed_request(srv, "GET", "/2015-03-31/functions/", sign=False)
        assert status == 403  # Still a well-formed signature is required.
    finally:
        assert srv.stop() == 0
