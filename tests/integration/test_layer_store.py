"""The layer store on SQLite and on a real PostgreSQL (127.0.0.1:5432, trust auth; each
run uses a database of its own, dropped afterwards), as in test_store.py."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from lambdaplane.store import upgrade
from lambdaplane.store.layers import LayerRepository, StoredLayerVersion


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    upgrade(bare_engine)
    return bare_engine


def version(name: str, number: int, runtimes: list[str] | None = None) -> StoredLayerVersion:
    return StoredLayerVersion(
        name=name,
        version=number,
        code_sha256=f"{number:02x}" * 32,
        code_size=10 * number,
        unzipped_size=100 * number,
        description=f"v{number}",
        license_info=None,
        compatible_runtimes=runtimes,
        compatible_architectures=["x86_64"],
        created_at=1_700_000_000.25,
    )


def test_tables_exist(engine: sa.Engine) -> None:
    assert {"layers", "layer_versions"} <= set(sa.inspect(engine).get_table_names())


def test_publish_get_list_delete(engine: sa.Engine) -> None:
    repo = LayerRepository(engine, "000000000000", "us-east-1")
    other_region = LayerRepository(engine, "000000000000", "eu-west-1")
    for _ in range(3):
        repo.publish("b", lambda n: version("b", n, ["python3.12"]))
    repo.publish("a", lambda n: version("a", n))
    assert other_region.publish("a", lambda n: version("a", n)).version == 1

    got = repo.get("b", 2)
    assert got == version("b", 2, ["python3.12"])
    assert [v.version for v in repo.versions("b")] == [3, 2, 1]
    assert [v.version for v in repo.versions("b", below=3)] == [2, 1]
    assert [(v.name, v.version) for v in repo.all_versions()] == [
        ("a", 1),
        ("b", 3),
        ("b", 2),
        ("b", 1),
    ]
    assert [v.name for v in repo.all_versions(after="a")] == ["b", "b", "b"]

    assert repo.delete("b", 3) and not repo.delete("b", 3) and not repo.delete("x", 1)
    assert repo.get("b", 3) is None
    deleted = repo.get("b", 3, include_deleted=True)
    assert deleted is not None and deleted.deleted and deleted.code_sha256 == "03" * 32
    assert [v.version for v in repo.versions("b")] == [2, 1]
    repo.delete("b", 2)
    repo.delete("b", 1)
    assert repo.versions("b") == []
    assert repo.publish("b", lambda n: version("b", n)).version == 4  # never reused


def test_policy_compare_and_swap(engine: sa.Engine) -> None:
    repo = LayerRepository(engine, "000000000000", "us-east-1")
    repo.publish("l", lambda n: version("l", n))
    statement = {"Sid": "s1", "Effect": "Allow", "Principal": "*"}
    assert repo.set_policy("l", 1, [statement], "r1", None)
    assert not repo.set_policy("l", 1, [], "r2", None)  # someone else went first
    assert not repo.set_policy("l", 1, [], "r2", "wrong")
    got = repo.get("l", 1)
    assert got is not None and got.policy == [statement] and got.policy_revision == "r1"
    assert repo.set_policy("l", 1, [], "r2", "r1")
    repo.delete("l", 1)
    assert not repo.set_policy("l", 1, [statement], "r3", "r2")  # deleted versions: no


def test_concurrent_publishers_get_distinct_numbers(engine: sa.Engine) -> None:
    repo = LayerRepository(engine, "000000000000", "us-east-1")
    numbers: list[int] = []
    lock = threading.Lock()

    def publish() -> None:
        for _ in range(5):
            published = repo.publish("busy", lambda n: version("busy", n))
            with lock:
                numbers.append(published.version)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 21))
