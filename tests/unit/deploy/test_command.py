"""The botocore edge of deploy-alias: the alias calls, errors and credentials (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from lambdaplane.auth.keys import KeyStore
from lambdaplane.deploy.command import LambdaAlias, credentials
from lambdaplane.deploy.deployment import AliasChanged, AliasError, AliasState

ARN = "arn:aws:lambda:us-east-1:000000000000:function:hello:live"


@pytest.fixture
def client() -> Iterator[Any]:
    session = botocore.session.get_session()
    lam = session.create_client(
        "lambda",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield lam
    lam.close()


def test_get_reads_version_weights_revision_and_name(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_response(
            "get_alias",
            {
                "AliasArn": ARN,
                "Name": "live",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.3}},
                "RevisionId": "rev-1",
            },
            {"FunctionName": ARN.rsplit(":", 1)[0], "Name": "live"},
        )
        state = LambdaAlias(client, ARN.rsplit(":", 1)[0], "live").get()
    assert state == AliasState("hello", "1", {"2": 0.3}, "rev-1")


def test_route_sends_weights_and_the_revision_precondition(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_response(
            "update_alias",
            {"AliasArn": ARN, "FunctionVersion": "1", "RevisionId": "rev-2"},
            {
                "FunctionName": "hello",
                "Name": "live",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
                "RevisionId": "rev-1",
            },
        )
        assert LambdaAlias(client, "hello", "live").route("1", {"2": 0.1}, "rev-1") == "rev-2"


def test_a_failed_precondition_is_a_concurrent_change(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_client_error(
            "update_alias",
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id.",
            412,
        )
        stub.add_client_error(
            "update_alias", "ResourceNotFoundException", "Function not found: x:7", 404
        )
        alias = LambdaAlias(client, "hello", "live")
        with pytest.raises(AliasChanged, match="does not match"):
            alias.route("1", {"2": 0.1}, "old")
        with pytest.raises(AliasError, match="ResourceNotFoundException: Function not found"):
            alias.route("1", {"7": 0.1}, "old")


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


def test_environment_credentials_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    KeyStore.open(tmp_path)
    found = credentials(botocore.session.get_session(), tmp_path)
    assert found[:2] == ("AKIAENV", "secret")


@pytest.mark.usefixtures("no_aws_config")
def test_the_data_dirs_root_key_is_the_fallback(tmp_path: Path) -> None:
    root = KeyStore.open(tmp_path / "data").root_key
    found = credentials(botocore.session.get_session(), tmp_path / "data")
    assert found == (root.access_key_id, root.secret_access_key, None)


@pytest.mark.usefixtures("no_aws_config")
def test_no_credentials_anywhere_creates_none(tmp_path: Path) -> None:
    with pytest.raises(AliasError, match="no credentials"):
        credentials(botocore.session.get_session(), tmp_path / "data")
    assert not (tmp_path / "data").exists()
