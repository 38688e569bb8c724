"""LayerService over a real SQLite store and code store: numbering, listing, policies,
and what functions get from layers (checks, sizes, /opt)."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lambdaplane.code import CodeStore
from lambdaplane.code.layers import LayerTrees
from lambdaplane.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.service import configuration as cfg
from lambdaplane.service.function_layers import NoLayers
from lambdaplane.service.layers import LayerService
from lambdaplane.service.names import Scope
from lambdaplane.store import open_engine, upgrade
from lambdaplane.store.layers import LayerRepository
from lambdaplane.testing import make_zip

ACCOUNT, REGION = "123456789012", "us-east-1"
SCOPE = Scope(region=REGION, account_id=ACCOUNT)
PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer"
T0 = 1_700_000_000.5


def url(sha256_hex: str) -> str:
    return f"http://test/{sha256_hex}.zip"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(eng)
    return eng


@pytest.fixture
def code(tmp_path: Path) -> CodeStore:
    return CodeStore(tmp_path / "code", fsync=False)


@pytest.fixture
def service(engine: sa.Engine, code: CodeStore, tmp_path: Path) -> LayerService:
    trees = LayerTrees(tmp_path / "code" / "opt", code.unpacked)
    return LayerService(
        SCOPE, LayerRepository(engine, ACCOUNT, REGION), code, trees, wall=lambda: T0
    )


def publish(service: LayerService, name: str, **request: Any) -> dict[str, Any]:
    content = request.pop("files", {"python/mod.py": f"NAME = {name!r}\n"})
    return service.publish(
        {"LayerName": name, "Content": {"ZipFile": make_zip(content)}, **request}, url
    )


def zeros(size: int) -> bytes:
    """A small zip that unpacks to ``size`` bytes."""
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * size)
    return buf.getvalue()


# -- versions ------------------------------------------------------------------------


def test_publish_numbers_versions_and_never_reuses_them(service: LayerService) -> None:
    first = publish(service, "lib", Description="d", LicenseInfo="MIT")
    assert first["Version"] == 1
    assert first["LayerArn"] == f"{PREFIX}:lib"
    assert first["LayerVersionArn"] == f"{PREFIX}:lib:1"
    assert first["CreatedDate"] == "2023-11-14T22:13:20.500+0000"
    assert first["Description"] == "d" and first["LicenseInfo"] == "MIT"
    # Fields not given are absent, as AWS omits them; empty lists are kept.
    assert "CompatibleRuntimes" not in first and "CompatibleArchitectures" not in first
    assert publish(service, "lib", CompatibleRuntimes=[])["CompatibleRuntimes"] == []
    service.delete("lib", 1)
    service.delete("lib", 2)
    assert service.list_versions("lib", None, None, None, None) == {"LayerVersions": []}
    assert publish(service, "lib")["Version"] == 3


def test_content_reports_the_zip(service: LayerService, code: CodeStore) -> None:
    zip_bytes = make_zip({"bin/tool": "#!/bin/sh\n"})
    published = service.publish({"LayerName": "l", "Content": {"ZipFile": zip_bytes}}, url)
    content = published["Content"]
    assert content["CodeSize"] == len(zip_bytes)
    sha_hex = content["Location"].removeprefix("http://test/").removesuffix(".zip")
    assert code.read(sha_hex) == zip_bytes
    assert json.dumps(content["CodeSha256"])  # base64 text


def test_get_by_name_arn_and_version_arn(service: LayerService) -> None:
    publish(service, "lib")
    by_name = service.get("lib", 1, url)
    assert service.get(f"{PREFIX}:lib", 1, url) == by_name
    assert service.get_by_arn(f"{PREFIX}:lib:1", url) == by_name
    with pytest.raises(ResourceNotFoundException, match="The resource you requested"):
        service.get("lib", 2, url)
    with pytest.raises(ResourceNotFoundException):
        service.get("arn:aws:lambda:eu-west-1:123456789012:layer:lib", 1, url)
    with pytest.raises(ResourceNotFoundException):
        service.get_by_arn("arn:aws:lambda:::awslayer:AWSLambda-Python", url)
    for bad in (0, -1):
        with pytest.raises(InvalidParameterValueException, match="Cannot be less than 1"):
            service.get("lib", bad, url)


def test_delete_is_idempotent_and_hides_the_version(service: LayerService) -> None:
    publish(service, "lib")
    service.delete("lib", 1)
    service.delete("lib", 1)
    service.delete("missing", 7)
    with pytest.raises(ResourceNotFoundException):
        service.get("lib", 1, url)
    with pytest.raises(InvalidParameterValueException):
        service.delete("lib", -1)


def test_publish_refuses_s3_and_foreign_accounts(service: LayerService) -> None:
    with pytest.raises(InvalidParameterValueException, match="NoSuchBucket"):
        service.publish({"LayerName": "l", "Content": {"S3Bucket": "b", "S3Key": "k"}}, url)
    with pytest.raises(AccessDeniedException):
        publish(service, "arn:aws:lambda:us-east-1:999999999999:layer:l")


# -- listing -------------------------------------------------------------------------


def test_list_versions_filters_and_pages(service: LayerService) -> None:
    publish(service, "lib", CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"])
    publish(service, "lib", CompatibleRuntimes=["nodejs20.x"], CompatibleArchitectures=["arm64"])
    publish(service, "lib", CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["arm64"])

    def versions(**kwargs: Any) -> list[int]:
        result = service.list_versions(
            "lib",
            kwargs.get("runtime"),
            kwargs.get("arch"),
            kwargs.get("marker"),
            kwargs.get("limit"),
        )
        return [v["Version"] for v in result["LayerVersions"]]

    assert versions() == [3, 2, 1]
    assert versions(runtime="python3.12") == [3, 1]
    assert versions(arch="arm64") == [3, 2]
    assert versions(runtime="python3.12", arch="x86_64") == [1]
    assert versions(runtime="java21") == []
    page = service.list_versions("lib", None, None, None, 2)
    assert [v["Version"] for v in page["LayerVersions"]] == [3, 2]
    assert versions(marker=page["NextMarker"]) == [1]
    assert "NextMarker" not in service.list_versions("lib", None, None, page["NextMarker"], 2)
    assert versions() == versions()  # listing changes nothing
    assert service.list_versions("missing", None, None, None, None) == {"LayerVersions": []}


def test_list_layers_shows_each_layers_latest_matching_version(service: LayerService) -> None:
    publish(service, "b-lib", CompatibleRuntimes=["python3.12"])
    publish(service, "b-lib", CompatibleRuntimes=["nodejs20.x"])
    publish(service, "a-lib", CompatibleRuntimes=["python3.12"])
    publish(service, "c-lib")
    service.delete("c-lib", 1)  # a layer without live versions is not listed

    def latest(result: dict[str, Any]) -> list[tuple[str, int]]:
        return [(x["LayerName"], x["LatestMatchingVersion"]["Version"]) for x in result["Layers"]]

    assert latest(service.list_layers(None, None, None, None)) == [("a-lib", 1), ("b-lib", 2)]
    matching = service.list_layers("python3.12", None, None, None)
    assert latest(matching) == [("a-lib", 1), ("b-lib", 1)]
    assert matching["Layers"][1]["LayerArn"] == f"{PREFIX}:b-lib"
    first = service.list_layers(None, None, None, 1)
    assert latest(first) == [("a-lib", 1)]
    rest = service.list_layers(None, None, first["NextMarker"], 1)
    assert latest(rest) == [("b-lib", 2)] and "NextMarker" not in rest
    with pytest.raises(InvalidParameterValueException, match="Invalid marker"):
        service.list_layers(None, None, "A", None)


# -- permissions ---------------------------------------------------------------------


def test_policy_statements_as_aws_writes_them(service: LayerService) -> None:
    publish(service, "lib")
    with pytest.raises(ResourceNotFoundException, match="No policy is associated"):
        service.get_policy("lib", 1)
    base = {"LayerName": "lib", "VersionNumber": 1, "Action": "lambda:GetLayerVersion"}
    everyone = service.add_permission({**base, "StatementId": "all", "Principal": "*"})
    assert json.loads(everyone["Statement"]) == {
        "Sid": "all",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:GetLayerVersion",
        "Resource": f"{PREFIX}:lib:1",
    }
    account = service.add_permission(
        {
            **base,
            "StatementId": "acct",
            "Principal": "210987654321",
            "RevisionId": everyone["RevisionId"],
        }
    )
    org = service.add_permission(
        {**base, "StatementId": "org", "Principal": "*", "OrganizationId": "o-abcdefghij"}
    )
    policy = service.get_policy("lib", 1)
    assert policy["RevisionId"] == org["RevisionId"] != account["RevisionId"]
    document = json.loads(policy["Policy"])
    assert document["Version"] == "2012-10-17" and document["Id"] == "default"
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert list(statements) == ["all", "acct", "org"]
    assert statements["acct"]["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert statements["org"]["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}
    }
    assert policy["Policy"].startswith('{"Version":"2012-10-17","Id":"default","Statement":[')


def test_policy_errors(service: LayerService) -> None:
    publish(service, "lib")
    base = {"LayerName": "lib", "VersionNumber": 1, "Action": "lambda:GetLayerVersion"}
    first = service.add_permission({**base, "StatementId": "s1", "Principal": "*"})
    with pytest.raises(ResourceConflictException, match=r"statement id \(s1\)"):
        service.add_permission({**base, "StatementId": "s1", "Principal": "*"})
    with pytest.raises(PreconditionFailedException, match="GetLayerPolicy"):
        service.add_permission({**base, "StatementId": "s2", "Principal": "*", "RevisionId": "x"})
    with pytest.raises(ResourceNotFoundException, match=f"Layer version {PREFIX}:lib:2 does"):
        service.add_permission({**base, "VersionNumber": 2, "StatementId": "s3", "Principal": "*"})
    with pytest.raises(ResourceNotFoundException, match=f"Layer version {PREFIX}:nope:1 does"):
        service.get_policy("nope", 1)
    with pytest.raises(ResourceNotFoundException, match="Statement nope is not found"):
        service.remove_permission("lib", 1, "nope", None)
    with pytest.raises(PreconditionFailedException):
        service.remove_permission("lib", 1, "s1", "wrong")
    service.remove_permission("lib", 1, "s1", first["RevisionId"])
    with pytest.raises(ResourceNotFoundException, match="No policy is associated"):
        service.get_policy("lib", 1)


# -- what functions get --------------------------------------------------------------


def test_resolve_gives_the_configuration_shape(service: LayerService) -> None:
    one = publish(service, "one")
    two = publish(service, "two")
    resolved = service.resolve([one["LayerVersionArn"], two["LayerVersionArn"]], "0" * 64, 10)
    assert resolved == [
        {"Arn": one["LayerVersionArn"], "CodeSize": one["Content"]["CodeSize"]},
        {"Arn": two["LayerVersionArn"], "CodeSize": two["Content"]["CodeSize"]},
    ]
    assert service.resolve([], "0" * 64) == []


def test_resolve_refuses_what_aws_refuses(service: LayerService) -> None:
    arns = [publish(service, "lib")["LayerVersionArn"] for _ in range(2)]

    def refused(layers: list[str]) -> str:
        with pytest.raises(InvalidParameterValueException) as caught:
            service.resolve(layers, "0" * 64, 10)
        return str(caught.value)

    assert refused([f"{PREFIX}:l{n}:1" for n in range(6)]) == "Cannot reference more than 5 layers."
    assert refused([f"{PREFIX}:missing:1"]) == f"Layer version {PREFIX}:missing:1 does not exist."
    assert refused([f"{PREFIX}:lib:9"]) == f"Layer version {PREFIX}:lib:9 does not exist."
    assert refused(["arn:aws:lambda:eu-west-1:123456789012:layer:lib:1"]) == (
        "Layers are not in the same region as the function. Layers are expected to be in "
        "region us-east-1."
    )
    assert refused(arns) == (
        "Two different versions of the same layer are not allowed to be referenced in the "
        f"same function. {arns[0]} and {arns[1]} are versions of the same layer."
    )
    assert "versions of the same layer" in refused([arns[0], arns[0]])
    service.delete("lib", 1)
    assert refused([arns[0]]) == f"Layer version {arns[0]} does not exist."


def test_code_and_layers_together_stay_under_250_mb(service: LayerService, code: CodeStore) -> None:
    big = [
        service.publish({"LayerName": f"big{n}", "Content": {"ZipFile": zeros(100_000_000)}}, url)
        for n in range(2)
    ]
    arns = [b["LayerVersionArn"] for b in big]
    service.resolve(arns, "0" * 64, 62_144_000)  # exactly the limit
    with pytest.raises(InvalidParameterValueException) as caught:
        service.resolve(arns, "0" * 64, 62_144_001)
    assert str(caught.value) == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 "
        "bytes. The actual size is 262144001 bytes."
    )
    # Without a known size, the stored package is measured.
    function_code = code.put(zeros(70_000_000))
    with pytest.raises(InvalidParameterValueException, match="270000000 bytes"):
        service.resolve(arns, function_code.sha256_hex)
    refs = [{"Arn": a, "CodeSize": 1} for a in arns]
    service.check_size(refs, 62_144_000)
    with pytest.raises(InvalidParameterValueException, match="262144001 bytes"):
        service.check_size(refs, 62_144_001)
    service.delete("big0", 1)  # a deleted version still counts for functions using it
    with pytest.raises(InvalidParameterValueException):
        service.check_size(refs, 62_144_001)


def test_opt_dir_merges_in_order_and_survives_deletion(service: LayerService) -> None:
    first = publish(service, "first", files={"python/shared.py": "WHO = 1\n", "bin/a": "a"})
    second = publish(service, "second", files={"python/shared.py": "WHO = 2\n", "lib/b": "b"})
    refs = [{"Arn": first["LayerVersionArn"]}, {"Arn": second["LayerVersionArn"]}]
    merged = service.opt_dir(refs)
    assert merged is not None
    assert (merged / "python" / "shared.py").read_text() == "WHO = 2\n"
    assert {p.name for p in merged.iterdir()} == {"python", "bin", "lib"}
    assert service.opt_dir(refs) == merged  # built once
    reverse = service.opt_dir(list(reversed(refs)))
    assert reverse is not None and reverse != merged
    assert (reverse / "python" / "shared.py").read_text() == "WHO = 1\n"
    single = service.opt_dir(refs[:1])
    assert single is not None and (single / "bin" / "a").read_text() == "a"
    assert service.opt_dir(None) is None and service.opt_dir([]) is None
    service.delete("first", 1)
    service.delete("second", 1)
    fresh = LayerService(SCOPE, service._layers, service._code, service._trees)
    assert fresh.opt_dir(refs) == merged


def test_without_a_layer_store_no_version_exists() -> None:
    layers = NoLayers()
    assert layers.resolve([], "0" * 64) == []
    with pytest.raises(InvalidParameterValueException, match="Layer version x does not exist"):
        layers.resolve(["x"], "0" * 64)
    with pytest.raises(InvalidParameterValueException, match="more than 5"):
        layers.resolve(["x"] * 6, "0" * 64)
    assert layers.opt_dir([{"Arn": "x"}]) is None


def test_with_layers_sets_or_removes_the_key() -> None:
    config = {"FunctionName": "f", "Layers": [{"Arn": "old", "CodeSize": 1}], "Timeout": 3}
    replaced = cfg.with_layers(config, [{"Arn": "new", "CodeSize": 2}])
    assert replaced["Layers"] == [{"Arn": "new", "CodeSize": 2}]
    assert list(replaced) == sorted(replaced)
    assert "Layers" not in cfg.with_layers(config, [])
    assert config["Layers"] == [{"Arn": "old", "CodeSize": 1}]  # not modified in place
