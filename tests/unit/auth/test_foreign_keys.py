"""Keys of other accounts' principals: identities, and a running store seeing new keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdaplane.auth.keys import Identity, KeyStore, KeyStoreError
from lambdaplane.cli import main


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_identities_of_own_and_foreign_keys(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path, account_id="123456789012")
    root = store.root_key.access_key_id
    assert store.identity_for(root) == Identity(
        root, "123456789012", "arn:aws:iam::123456789012:root"
    )
    assert store.identity_for("AKIANOTAKEY000000000") is None

    user = KeyStore.add_foreign_key(tmp_path, "111122223333", user="alice", org_id="o-abcdefghij")
    account = KeyStore.add_foreign_key(tmp_path, "444455556666")
    store = KeyStore.open(tmp_path, account_id="123456789012")
    assert store.identity_for(user.access_key_id) == Identity(
        user.access_key_id, "111122223333", "arn:aws:iam::111122223333:user/alice", "o-abcdefghij"
    )
    assert store.identity_for(account.access_key_id) == Identity(
        account.access_key_id, "444455556666", "arn:aws:iam::444455556666:root"
    )
    # Foreign keys sign requests like any key, but are no administrators of this one.
    assert store.secret_for(user.access_key_id) == user.secret_access_key
    assert store.own_secret_for(user.access_key_id) is None
    assert store.own_secret_for(root) == store.root_key.secret_access_key
    assert store.root_key.access_key_id == root
    entries = json.loads((tmp_path / "credentials.json").read_text())["keys"]
    assert entries[1]["account_id"] == "111122223333" and entries[1]["user"] == "alice"
    assert "account_id" not in entries[0]


def test_a_running_store_sees_keys_added_meanwhile_at_most_once_a_second(tmp_path: Path) -> None:
    clock = FakeClock()
    store = KeyStore.open(tmp_path, clock=clock)
    first = KeyStore.add_foreign_key(tmp_path, "111122223333")
    assert store.secret_for(first.access_key_id) is None  # read less than a second ago
    clock.now += 1.0
    assert store.secret_for(first.access_key_id) == first.secret_access_key
    assert store.identity_for(first.access_key_id) is not None

    second = KeyStore.add_foreign_key(tmp_path, "111122223333", user="bob")
    clock.now += 0.5
    assert store.secret_for(second.access_key_id) is None
    assert store.secret_for("AKIAUNKNOWN000000000") is None  # does not re-read either
    clock.now += 0.6
    assert store.secret_for(second.access_key_id) == second.secret_access_key


def test_a_broken_file_keeps_the_keys_read_before(tmp_path: Path) -> None:
    clock = FakeClock()
    store = KeyStore.open(tmp_path, clock=clock)
    root = store.root_key
    (tmp_path / "credentials.json").write_text("{not json")
    clock.now += 5
    assert store.secret_for("AKIAUNKNOWN000000000") is None
    assert store.secret_for(root.access_key_id) == root.secret_access_key


@pytest.mark.parametrize(
    ("account", "extra"),
    [
        ("1111", {}),
        ("111122223333", {"user": "no spaces"}),
        ("111122223333", {"org_id": "org-1"}),
    ],
)
def test_malformed_foreign_keys_are_refused(
    tmp_path: Path, account: str, extra: dict[str, str]
) -> None:
    with pytest.raises(KeyStoreError):
        KeyStore.add_foreign_key(tmp_path, account, **extra)


def test_keys_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert main(["keys", "add", "--account-id", "111122223333", "--user", "alice",
                 "--org-id", "o-abcdefghij", "--data-dir", data, "--json"]) == 0  # fmt: skip
    added = json.loads(capsys.readouterr().out)
    assert added["Arn"] == "arn:aws:iam::111122223333:user/alice"
    store = KeyStore.open(tmp_path)
    assert store.secret_for(added["AccessKeyId"]) == added["SecretAccessKey"]

    assert main(["keys", "add", "--account-id", "444455556666", "--data-dir", data]) == 0
    text = capsys.readouterr().out
    assert "arn:aws:iam::444455556666:root" in text and "aws_secret_access_key:" in text

    assert main(["keys", "list", "--data-dir", data, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["Arn"] for k in listed] == [
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::444455556666:root",
    ]
    assert all("SecretAccessKey" not in k for k in listed)

    assert main(["keys", "add", "--account-id", "12", "--data-dir", data]) == 2


def test_a_removed_foreign_key_is_refused_within_a_second(tmp_path: Path) -> None:
    clock = FakeClock()
    store = KeyStore.open(tmp_path, clock=clock)
    key = KeyStore.add_foreign_key(tmp_path, "111122223333")
    clock.now += 1.0
    assert store.identity_for(key.access_key_id) is not None
    own = store.root_key

    removed = KeyStore.remove_foreign_key(tmp_path, key.access_key_id)
    assert removed.arn == "arn:aws:iam::111122223333:root"
    clock.now += 0.5
    assert store.secret_for(key.access_key_id) == key.secret_access_key  # read < 1 s ago
    clock.now += 0.6
    assert store.secret_for(key.access_key_id) is None
    assert store.identity_for(key.access_key_id) is None
    assert store.secret_for(own.access_key_id) == own.secret_access_key
    with pytest.raises(KeyStoreError):
        KeyStore.remove_foreign_key(tmp_path, own.access_key_id)  # own keys stay


def test_keys_remove_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    key = KeyStore.add_foreign_key(tmp_path, "111122223333", user="alice")
    assert main(["keys", "remove", key.access_key_id, "--data-dir", data]) == 0
    assert "arn:aws:iam::111122223333:user/alice" in capsys.readouterr().out
    assert KeyStore.open(tmp_path).foreign_keys() == []
    assert main(["keys", "remove", key.access_key_id, "--data-dir", data]) == 2
