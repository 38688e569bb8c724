"""The credentials file: created once, private, reloaded unchanged."""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lambdaplane.auth import (
    AccessKey,
    KeyStore,
    KeyStoreError,
    SignedRequest,
    new_access_key,
    verify,
)
from lambdaplane.errors import UnrecognizedClientException


def test_first_open_creates_root_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    store = KeyStore.open(data_dir)
    assert store.created is True
    path = data_dir / "credentials.json"
    assert store.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    root = store.root_key
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", root.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9/+]{40}", root.secret_access_key)
    assert store.secret_for(root.access_key_id) == root.secret_access_key
    assert store.secret_for("AKIAUNKNOWN000000000") is None
    assert root.access_key_id in store
    document = json.loads(path.read_text())
    assert document["root_access_key_id"] == root.access_key_id
    assert [p.name for p in data_dir.iterdir()] == ["credentials.json"]  # no temp files left


def test_second_open_reloads_same_keys(tmp_path: Path) -> None:
    first = KeyStore.open(tmp_path)
    before = (tmp_path / "credentials.json").read_bytes()
    second = KeyStore.open(tmp_path)
    assert second.created is False
    assert second.root_key == first.root_key
    assert (tmp_path / "credentials.json").read_bytes() == before


def test_file_without_root_gets_one(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text(json.dumps({"version": 1, "keys": []}))
    store = KeyStore.open(tmp_path)
    assert store.created is True
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600
    assert KeyStore.open(tmp_path).root_key == store.root_key


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"root_access_key_id": "AKIAX", "keys": {}}),
        json.dumps({"root_access_key_id": "AKIAX", "keys": [{"access_key_id": "AKIAX"}]}),
        json.dumps({"root_access_key_id": "AKIAX", "keys": []}),
    ],
)
def test_corrupt_file_is_an_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "credentials.json").write_text(content)
    with pytest.raises(KeyStoreError):
        KeyStore.open(tmp_path)


def test_new_keys_are_random_and_secret_not_in_repr() -> None:
    keys = {new_access_key() for _ in range(50)}
    assert len({k.access_key_id for k in keys}) == 50
    key = AccessKey("AKIAEXAMPLE000000000", "s3cr3t")
    assert "s3cr3t" not in repr(key)


def test_secret_for_is_a_key_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    signed_at = datetime(2026, 11, 26, 19, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: signed_at)
    store = KeyStore.open(tmp_path)
    root = store.root_key

    def signed_by(key_id: str) -> SignedRequest:
        request = AWSRequest(method="GET", url="http://localhost:9000/2015-03-31/functions")
        credentials = Credentials(key_id, root.secret_access_key)
        botocore.auth.SigV4Auth(credentials, "lambda", "us-east-1").add_auth(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        headers["host"] = "localhost:9000"
        return SignedRequest("GET", "/2015-03-31/functions", "", headers, None)

    now = signed_at.replace(tzinfo=UTC)
    assert verify(signed_by(root.access_key_id), store.secret_for, now, region="us-east-1") == (
        root.access_key_id
    )
    with pytest.raises(UnrecognizedClientException):
        verify(signed_by("AKIAUNKNOWN000000000"), store.secret_for, now, region="us-east-1")
