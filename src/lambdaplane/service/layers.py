"""Lambda layers: publish, read, list and delete layer versions, their permission
policies, and what functions need from them (``function_layers.FunctionLayers``).

A layer is named within the account and region; its versions are numbered from 1 and
a number is never reused, even after every version is deleted. Deleting a version
hides it from Get/List and from new function configurations, but its code stays:
functions that reference it keep working, as on AWS. Layer zips live in the same
content-addressed code store as function code, so ``Content.Location`` is the same
presigned download URL as GetFunction's.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdaplane.code import MAX_UNZIPPED_BYTES, CodeStore, check_zipped_size
from lambdaplane.code.layers import LayerTrees
from lambdaplane.code.validate import scan
from lambdaplane.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    ServiceException,
)
from lambdaplane.service.configuration import last_modified
from lambdaplane.service.function_layers import LayerRefs, check_count
from lambdaplane.service.functions import NO_S3_BUCKET
from lambdaplane.service.names import Scope
from lambdaplane.store.layers import LayerRepository, StoredLayerVersion

DEFAULT_PAGE = 50
NOT_FOUND = "The resource you requested does not exist."
NO_POLICY = "No policy is associated with the given resource."
BAD_VERSION = "Layer Version Cannot be less than 1"
POLICY_REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetLayerPolicy API to retrieve the latest Revision Id"
)
TOO_BIG = (
    f"Function code combined with layers exceeds the maximum allowed size of "
    f"{MAX_UNZIPPED_BYTES} bytes. The actual size is {{}} bytes."
)

# The model has already checked LayerNameOrArn / LayerVersionArn against its patterns.
_LAYER_ARN = re.compile(
    r"arn:(?P<partition>[a-zA-Z0-9-]*):lambda:(?P<region>[^:]*):(?P<account>\d{12}):"
    r"layer:(?P<name>[a-zA-Z0-9-_]+)(?::(?P<version>[0-9]+))?"
)


@dataclass(frozen=True)
class _Code:
    """What a function needs of one layer version: its code and its unpacked size."""

    sha256: str
    unzipped_size: int


class LayerService:
    """Layers of one account and region; also the ``FunctionLayers`` of its functions."""

    def __init__(
        self,
        scope: Scope,
        layers: LayerRepository,
        code: CodeStore,
        trees: LayerTrees,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.scope = scope
        self._layers = layers
        self._code = code
        self._trees = trees
        self._wall = wall
        # Layer versions are immutable and never renumbered: safe to remember for good.
        self._codes: dict[tuple[str, int], _Code] = {}
        self._unzipped: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- ARNs ----------------------------------------------------------------------------

    def layer_arn(self, name: str) -> str:
        scope = self.scope
        return f"arn:{scope.partition}:lambda:{scope.region}:{scope.account_id}:layer:{name}"

    def _own_name(self, layer_name: str) -> str | None:
        """The bare name a LayerName (name or ARN) gives, or None for another account's or
        region's layer (none of which exist here)."""
        match = _LAYER_ARN.fullmatch(layer_name)
        if match is None:
            return layer_name
        if match["region"] != self.scope.region or match["account"] != self.scope.account_id:
            return None
        return match["name"]

    # -- layer versions ------------------------------------------------------------------

    def publish(self, request: Mapping[str, Any], code_url: Callable[[str], str]) -> dict[str, Any]:
        """PublishLayerVersion: validate and store the zip, then number the new version."""
        name = self._own_name(request["LayerName"])
        if name is None:
            raise AccessDeniedException(None)
        zip_bytes = _layer_zip(request.get("Content") or {})
        check_zipped_size(len(zip_bytes))
        summary = self._code.put(zip_bytes)  # Validates the archive before writing anything.
        runtimes = request.get("CompatibleRuntimes")
        architectures = request.get("CompatibleArchitectures")
        created = self._wall()

        def build(number: int) -> StoredLayerVersion:
            return StoredLayerVersion(
                name=name,
                version=number,
                code_sha256=summary.sha256_hex,
                code_size=summary.size,
                unzipped_size=summary.unzipped_size,
                description=request.get("Description") or "",
                license_info=request.get("LicenseInfo"),
                compatible_runtimes=None if runtimes is None else list(runtimes),
                compatible_architectures=None if architectures is None else list(architectures),
                created_at=created,
            )

        return self._view(self._layers.publish(name, build), code_url)

    def get(self, layer_name: str, version: int, code_url: Callable[[str], str]) -> dict[str, Any]:
        """GetLayerVersion."""
        _check_version(version)
        name = self._own_name(layer_name)
        stored = self._layers.get(name, version) if name is not None else None
        if stored is None:
            raise ResourceNotFoundException(NOT_FOUND)
        return self._view(stored, code_url)

    def get_by_arn(self, arn: str, code_url: Callable[[str], str]) -> dict[str, Any]:
        """GetLayerVersionByArn (an AWS-managed ``awslayer`` ARN names nothing here)."""
        match = _LAYER_ARN.fullmatch(arn)
        if match is None or match["version"] is None:
            raise ResourceNotFoundException(NOT_FOUND)
        return self.get(arn.rsplit(":", 1)[0], int(match["version"]), code_url)

    def delete(self, layer_name: str, version: int) -> None:
        """DeleteLayerVersion: idempotent, as AWS (a missing version is no error)."""
        _check_version(version)
        name = self._own_name(layer_name)
        if name is not None:
            self._layers.delete(name, version)

    def list_versions(
        self,
        layer_name: str,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> dict[str, Any]:
        """ListLayerVersions: newest first; an unknown layer has no versions (no error)."""
        limit = max_items or DEFAULT_PAGE
        below = _decode_marker(marker) if marker else None
        if below is not None and not below.isdigit():
            raise InvalidParameterValueException("Invalid marker: " + (marker or ""))
        name = self._own_name(layer_name)
        rows = self._layers.versions(name, int(below) if below else None) if name else []
        matching = [v for v in rows if _matches(v, runtime, architecture)]
        page = matching[:limit]
        result: dict[str, Any] = {"LayerVersions": [self._item(v) for v in page]}
        if len(matching) > limit:
            result["NextMarker"] = _encode_marker(str(page[-1].version))
        return result

    def list_layers(
        self,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> dict[str, Any]:
        """ListLayers: each layer with a matching live version, by name, with its newest
        matching version."""
        limit = max_items or DEFAULT_PAGE
        after = _decode_marker(marker) if marker else None
        items: list[dict[str, Any]] = []
        listed: set[str] = set()
        more = False
        for version in self._layers.all_versions(after):  # by name, newest first
            if version.name in listed or not _matches(version, runtime, architecture):
                continue
            if len(items) == limit:
                more = True
                break
            listed.add(version.name)
            items.append(
                {
                    "LayerName": version.name,
                    "LayerArn": self.layer_arn(version.name),
                    "LatestMatchingVersion": self._item(version),
                }
            )
        result: dict[str, Any] = {"Layers": items}
        if more:
            result["NextMarker"] = _encode_marker(items[-1]["LayerName"])
        return result

    # -- permissions ---------------------------------------------------------------------

    def add_permission(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """AddLayerVersionPermission: one statement more, as AWS writes it."""
        name, version, stored = self._for_policy(request["LayerName"], request["VersionNumber"])
        _check_policy_revision(stored, request.get("RevisionId"))
        sid = request["StatementId"]
        if any(s.get("Sid") == sid for s in stored.policy):
            raise ResourceConflictException(
                f"The statement id ({sid}) provided already exists. Please provide a new "
                "statement id, or remove the existing statement."
            )
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": self._principal(request["Principal"]),
            "Action": request["Action"],
            "Resource": f"{self.layer_arn(name)}:{version}",
        }
        if request.get("OrganizationId"):
            statement["Condition"] = {
                "StringEquals": {"aws:PrincipalOrgID": request["OrganizationId"]}
            }
        revision = str(uuid.uuid4())
        if not self._layers.set_policy(
            name, version, [*stored.policy, statement], revision, stored.policy_revision
        ):
            raise PreconditionFailedException(POLICY_REVISION_MISMATCH)
        return {"Statement": _json(statement), "RevisionId": revision}

    def remove_permission(
        self, layer_name: str, version: int, statement_id: str, revision_id: str | None
    ) -> None:
        """RemoveLayerVersionPermission."""
        name, version, stored = self._for_policy(layer_name, version)
        _check_policy_revision(stored, revision_id)
        kept = [s for s in stored.policy if s.get("Sid") != statement_id]
        if len(kept) == len(stored.policy):
            raise ResourceNotFoundException(
                f"Statement {statement_id} is not found in resource policy."
            )
        revision = str(uuid.uuid4())
        if not self._layers.set_policy(name, version, kept, revision, stored.policy_revision):
            raise PreconditionFailedException(POLICY_REVISION_MISMATCH)

    def get_policy(self, layer_name: str, version: int) -> dict[str, Any]:
        """GetLayerVersionPolicy: the policy document as AWS builds it."""
        _, _, stored = self._for_policy(layer_name, version)
        if not stored.policy:
            raise ResourceNotFoundException(NO_POLICY)
        document = {"Version": "2012-10-17", "Id": "default", "Statement": stored.policy}
        return {"Policy": _json(document), "RevisionId": stored.policy_revision}

    def _for_policy(self, layer_name: str, version: int) -> tuple[str, int, StoredLayerVersion]:
        _check_version(version)
        name = self._own_name(layer_name)
        stored = self._layers.get(name, version) if name is not None else None
        if name is None or stored is None:
            arn = layer_name if layer_name.startswith("arn:") else self.layer_arn(layer_name)
            raise ResourceNotFoundException(f"Layer version {arn}:{version} does not exist.")
        return name, version, stored

    def _principal(self, principal: str) -> str | dict[str, str]:
        if principal == "*":
            return "*"
        if principal.isdigit():  # an account id: AWS names its root
            return {"AWS": f"arn:{self.scope.partition}:iam::{principal}:root"}
        return {"AWS": principal}

    # -- what functions need (FunctionLayers) --------------------------------------------

    def resolve(
        self, arns: Sequence[str], code_sha256: str, code_unzipped: int | None = None
    ) -> list[dict[str, Any]]:
        """See ``FunctionLayers.resolve``; checks in AWS's order."""
        check_count(arns)
        if not arns:
            return []
        first_of: dict[str, str] = {}
        resolved: list[dict[str, Any]] = []
        total = 0
        for arn in arns:
            match = _LAYER_ARN.fullmatch(arn)
            if match is not None and match["region"] != self.scope.region:
                raise InvalidParameterValueException(
                    "Layers are not in the same region as the function. Layers are expected "
                    f"to be in region {self.scope.region}."
                )
            stored = None
            if (
                match is not None
                and match["version"] is not None
                and match["account"] == self.scope.account_id
            ):
                stored = self._layers.get(match["name"], int(match["version"]))
            if match is None or stored is None:
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
            if stored.name in first_of:
                raise InvalidParameterValueException(
                    "Two different versions of the same layer are not allowed to be referenced "
                    f"in the same function. {first_of[stored.name]} and {arn} are versions of "
                    "the same layer."
                )
            first_of[stored.name] = arn
            resolved.append({"Arn": arn, "CodeSize": stored.code_size})
            total += stored.unzipped_size
        code = code_unzipped if code_unzipped is not None else self._code_unzipped(code_sha256)
        _check_total(code + total)
        return resolved

    def check_size(self, layers: LayerRefs | None, code_unzipped: int) -> None:
        """See ``FunctionLayers.check_size``."""
        if layers:
            _check_total(
                code_unzipped + sum(self._layer_code(r["Arn"]).unzipped_size for r in layers)
            )

    def opt_dir(self, layers: LayerRefs | None) -> Path | None:
        """See ``FunctionLayers.opt_dir``: deleted versions included."""
        if not layers:
            return None
        return self._trees.merged([self._layer_code(r["Arn"]).sha256 for r in layers])

    def _layer_code(self, arn: str) -> _Code:
        match = _LAYER_ARN.fullmatch(arn)
        if match is None or match["version"] is None:
            raise ServiceException(f"Layer version {arn} cannot be resolved.")
        key = (match["name"], int(match["version"]))
        found = self._codes.get(key)
        if found is None:
            stored = self._layers.get(*key, include_deleted=True)
            if stored is None:
                raise ServiceException(f"Layer version {arn} is missing from the store.")
            found = _Code(stored.code_sha256, stored.unzipped_size)
            with self._lock:
                self._codes[key] = found
        return found

    def _code_unzipped(self, sha256_hex: str) -> int:
        """A stored package's unpacked size, from its central directory (remembered)."""
        size = self._unzipped.get(sha256_hex)
        if size is None:
            size = scan(self._code.read(sha256_hex)).unzipped_size
            with self._lock:
                self._unzipped[sha256_hex] = size
        return size

    # -- views ---------------------------------------------------------------------------

    def _view(self, stored: StoredLayerVersion, code_url: Callable[[str], str]) -> dict[str, Any]:
        """A GetLayerVersion / PublishLayerVersion response."""
        layer_arn = self.layer_arn(stored.name)
        view: dict[str, Any] = {
            "Content": {
                "Location": code_url(stored.code_sha256),
                "CodeSha256": base64.b64encode(bytes.fromhex(stored.code_sha256)).decode(),
                "CodeSize": stored.code_size,
            },
            "LayerArn": layer_arn,
            "LayerVersionArn": f"{layer_arn}:{stored.version}",
            "Description": stored.description,
            "CreatedDate": _created(stored),
            "Version": stored.version,
        }
        _add_optional(view, stored)
        return view

    def _item(self, stored: StoredLayerVersion) -> dict[str, Any]:
        """A LayerVersionsListItem."""
        item: dict[str, Any] = {
            "LayerVersionArn": f"{self.layer_arn(stored.name)}:{stored.version}",
            "Version": stored.version,
            "Description": stored.description,
            "CreatedDate": _created(stored),
        }
        _add_optional(item, stored)
        return item


def _add_optional(view: dict[str, Any], stored: StoredLayerVersion) -> None:
    if stored.compatible_runtimes is not None:
        view["CompatibleRuntimes"] = list(stored.compatible_runtimes)
    if stored.license_info is not None:
        view["LicenseInfo"] = stored.license_info
    if stored.compatible_architectures is not None:
        view["CompatibleArchitectures"] = list(stored.compatible_architectures)


def _created(stored: StoredLayerVersion) -> str:
    return last_modified(datetime.fromtimestamp(stored.created_at, UTC))


def _matches(stored: StoredLayerVersion, runtime: str | None, architecture: str | None) -> bool:
    if runtime is not None and runtime not in (stored.compatible_runtimes or ()):
        return False
    return architecture is None or architecture in (stored.compatible_architectures or ())


def _check_version(version: int) -> None:
    if version < 1:
        raise InvalidParameterValueException(BAD_VERSION)


def _check_policy_revision(stored: StoredLayerVersion, revision_id: str | None) -> None:
    if revision_id is not None and revision_id != stored.policy_revision:
        raise PreconditionFailedException(POLICY_REVISION_MISMATCH)


def _check_total(size: int) -> None:
    if size > MAX_UNZIPPED_BYTES:
        raise InvalidParameterValueException(TOO_BIG.format(size))


def _layer_zip(content: Mapping[str, Any]) -> bytes:
    if content.get("ZipFile") is not None:
        return bytes(content["ZipFile"])
    if content.get("S3Bucket") or content.get("S3Key"):
        raise InvalidParameterValueException(NO_S3_BUCKET)
    raise InvalidParameterValueException("Please provide a source for function code.")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _encode_marker(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_marker(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameterValueException("Invalid marker: " + marker) from None
