"""The function control plane: create, read, list, update and delete functions.

Every method validates fully before it writes, so a refused request changes nothing.
Writes are compare-and-swap on ``RevisionId``; a create or update leaves the function
``Pending`` / ``InProgress`` and hands it to ``settle``, which the server runs in the
background (and again at start for anything a crash left half-way).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from lambdaplane.code import CodeStore, check_zipped_size, inspect_zip
from lambdaplane.errors import (
    CodeSigningConfigNotFoundException,
    InvalidParameterValueException,
    NotImplementedYet,
    PreconditionFailedException,
    ResourceConflictException,
    ValidationException,
)
from lambdaplane.service import configuration as cfg
from lambdaplane.service.names import MAX_NAME_LENGTH, Scope
from lambdaplane.service.runtimes import RuntimeCatalog
from lambdaplane.service.state import State, UpdateStatus
from lambdaplane.store import FunctionRepository, StoredFunction, TagRepository
from lambdaplane.store.functions import LATEST, AlreadyExists

DEFAULT_PAGE = 50
# Invocations read a function's configuration from memory for this long; local writes
# invalidate at once, writes on other nodes are seen within it (AWS is eventually
# consistent about configuration changes too).
INVOKE_CACHE_SECONDS = 1.0
REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)
NO_S3_BUCKET = (
    "Error occurred while GetObject. S3 Error Code: NoSuchBucket. "
    "S3 Error Message: The specified bucket does not exist"
)


def new_revision() -> str:
    return str(uuid.uuid4())


class FunctionService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        tags: TagRepository,
        code: CodeStore,
        runtimes: RuntimeCatalog,
        schedule_settle: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scope = scope
        self._functions = functions
        self._tags = tags
        self._code = code
        self._runtimes = runtimes
        self._schedule_settle = schedule_settle
        self._clock = clock
        self._invoke_cache: dict[tuple[str, str], tuple[float, StoredFunction]] = {}

    # -- reads -------------------------------------------------------------------------

    def load(
        self, function_name: str, qualifier: str | None = None, conn: Connection | None = None
    ) -> StoredFunction:
        """The function version named, or ResourceNotFoundException."""
        ref = self.scope.parse(function_name, qualifier)
        version = ref.qualifier or LATEST
        stored = (
            self._functions.get(ref.name, version, conn)
            if len(ref.name) <= MAX_NAME_LENGTH
            else None
        )
        if stored is None:
            raise self.scope.not_found(ref.name, ref.qualifier)
        return stored

    def load_for_invoke(self, function_name: str, qualifier: str | None) -> StoredFunction:
        """Like ``load``, from a short-lived in-memory copy (the invoke hot path)."""
        ref = self.scope.parse(function_name, qualifier)
        key = (ref.name, ref.qualifier or LATEST)
        now = self._clock()
        hit = self._invoke_cache.get(key)
        if hit is not None and now - hit[0] < INVOKE_CACHE_SECONDS:
            return hit[1]
        stored = self.load(function_name, qualifier)
        self._invoke_cache[key] = (now, stored)
        return stored

    def _changed(self, name: str) -> None:
        for key in [k for k in self._invoke_cache if k[0] == name]:
            del self._invoke_cache[key]

    def get_configuration(self, function_name: str, qualifier: str | None) -> dict[str, Any]:
        return self.load(function_name, qualifier).config

    def get_function(
        self, function_name: str, qualifier: str | None, code_url: Callable[[str], str]
    ) -> dict[str, Any]:
        with self._functions.connect() as conn:
            stored = self.load(function_name, qualifier, conn)
            tags = self._tags.get(self.scope.function_arn(stored.name), conn)
        result: dict[str, Any] = {
            "Configuration": stored.config,
            "Code": {"RepositoryType": "S3", "Location": code_url(stored.code_sha256)},
        }
        if tags:
            result["Tags"] = tags
        return result

    def list_functions(
        self, marker: str | None, max_items: int | None, all_versions: bool
    ) -> dict[str, Any]:
        limit = max_items or DEFAULT_PAGE
        after = _decode_marker(marker) if marker else None
        rows = self._functions.page(after, limit + 1, None if all_versions else LATEST)
        page = rows[:limit]
        result: dict[str, Any] = {
            "Functions": [cfg.for_listing(r.config, qualified=all_versions) for r in page]
        }
        if len(rows) > limit:
            result["NextMarker"] = _encode_marker(page[-1].name)
        return result

    # -- writes ------------------------------------------------------------------------

    def create_function(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = self.scope.parse(request["FunctionName"])
        name = ref.name
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidParameterValueException(
                ValidationException.from_violations(
                    [
                        f"Value '{name}' at 'functionName' failed to satisfy constraint: "
                        f"Member must have length less than or equal to {MAX_NAME_LENGTH}"
                    ]
                ).message
            )
        if request.get("PackageType", "Zip") != "Zip":
            raise InvalidParameterValueException(
                "lambdaplane runs .zip deployment packages only; PackageType Image is not supported."
            )
        if not request.get("Runtime") or not request.get("Handler"):
            raise InvalidParameterValueException(
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages."
            )
        runtime = self._runtimes.require(request["Runtime"])
        if request.get("Publish"):
            raise NotImplementedYet(
                "CreateFunction with Publish=true needs function versions, which lambdaplane "
                "does not offer yet."
            )
        if request.get("CodeSigningConfigArn"):
            raise CodeSigningConfigNotFoundException(
                "The code signing configuration cannot be found. Check that the provided "
                f"configuration is not deleted: {request['CodeSigningConfigArn']}."
            )
        cfg.check_environment(request.get("Environment"))
        cfg.check_layers(request.get("Layers"))
        tags = dict(request.get("Tags") or {})
        cfg.check_tags(tags)
        zip_bytes = _zip_from(request.get("Code") or {})
        check_zipped_size(len(zip_bytes))
        summary = inspect_zip(zip_bytes)
        if self._functions.get(name) is not None:
            raise _already_exists(name)
        self._code.put(zip_bytes)
        config = cfg.new_configuration(
            request,
            name=name,
            arn=self.scope.function_arn(name),
            runtime_version_arn=runtime.version_arn(self.scope.region, self.scope.partition),
            code_sha256=summary.sha256_b64,
            code_size=summary.size,
            revision_id=new_revision(),
        )
        stored = StoredFunction(
            name=name,
            version=LATEST,
            revision_id=config["RevisionId"],
            state="Pending",
            last_update_status=None,
            code_sha256=summary.sha256_hex,
            code_size=summary.size,
            config=config,
        )
        try:
            self._functions.create(stored)
        except AlreadyExists:
            raise _already_exists(name) from None
        if tags:
            self._tags.put(self.scope.function_arn(name), tags)
        self._changed(name)
        self._schedule_settle(name)
        return config

    def update_function_code(self, request: dict[str, Any]) -> dict[str, Any]:
        current = self._load_unqualified(request["FunctionName"])
        self._check_revision(current, request.get("RevisionId"))
        if request.get("ImageUri"):
            raise InvalidParameterValueException(
                "Please don't provide ImageUri when updating a function with packageType Zip."
            )
        if request.get("Publish"):
            raise NotImplementedYet(
                "UpdateFunctionCode with Publish=true needs function versions, which lambdaplane "
                "does not offer yet."
            )
        zip_bytes = _zip_from(request)
        check_zipped_size(len(zip_bytes))
        summary = inspect_zip(zip_bytes)
        self._check_updatable(current)
        config = dict(current.config)
        config.update(CodeSha256=summary.sha256_b64, CodeSize=summary.size)
        if request.get("Architectures"):
            config["Architectures"] = list(request["Architectures"])
        config = cfg.in_progress(config, new_revision())
        if request.get("DryRun"):
            return config
        self._code.put(zip_bytes)
        self._replace(current, config, code_sha256=summary.sha256_hex, code_size=summary.size)
        return config

    def update_function_configuration(self, request: dict[str, Any]) -> dict[str, Any]:
        current = self._load_unqualified(request["FunctionName"])
        self._check_revision(current, request.get("RevisionId"))
        runtime_arn = None
        if "Runtime" in request:
            runtime = self._runtimes.require(request["Runtime"])
            runtime_arn = runtime.version_arn(self.scope.region, self.scope.partition)
        if "Environment" in request:
            cfg.check_environment(request["Environment"])
        if "Layers" in request:
            cfg.check_layers(request["Layers"])
        if request.get("ImageConfig"):
            raise InvalidParameterValueException(
                "Please don't provide ImageConfig when updating a function with packageType Zip."
            )
        self._check_updatable(current)
        config = cfg.updated_configuration(
            current.config, request, runtime_version_arn=runtime_arn, revision_id=new_revision()
        )
        self._replace(current, config)
        return config

    def delete_function(self, function_name: str, qualifier: str | None) -> None:
        ref = self.scope.parse(function_name, qualifier)
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if ref.qualifier is not None and not ref.qualifier.isdigit():
            raise InvalidParameterValueException("Deletion of aliases is not currently supported.")
        if ref.qualifier is not None:  # Versions do not exist yet.
            raise self.scope.not_found(ref.name)
        if len(ref.name) > MAX_NAME_LENGTH or not self._functions.delete(ref.name):
            raise self.scope.not_found(ref.name)
        self._changed(ref.name)
        self._tags.drop(self.scope.function_arn(ref.name))

    def settle(self, name: str) -> None:
        """Finish a pending creation or in-progress update: unpack the code, mark it done."""
        for _ in range(5):
            current = self._functions.get(name)
            if current is None:
                return
            if current.state != "Pending" and current.last_update_status != "InProgress":
                return
            state = State(current.state)
            update = UpdateStatus(current.last_update_status or UpdateStatus.IN_PROGRESS)
            try:
                self._code.unpacked(current.code_sha256)
            except Exception as exc:  # A broken blob must not stay Pending forever.
                config = cfg.failed(current.config, new_revision(), str(exc), "InternalError")
                if state is State.PENDING:
                    state = state.to(State.FAILED)
                update.to(UpdateStatus.FAILED)
            else:
                config = cfg.settled(current.config, new_revision())
                state = state.to(State.ACTIVE)
                update.to(UpdateStatus.SUCCESSFUL)
            updated = StoredFunction(
                name=current.name,
                version=current.version,
                revision_id=config["RevisionId"],
                state=state,
                last_update_status=config["LastUpdateStatus"],
                code_sha256=current.code_sha256,
                code_size=current.code_size,
                config=config,
            )
            if self._functions.replace(updated, current.revision_id):
                self._changed(name)
                return

    def unsettled(self) -> list[str]:
        """Names of functions a previous run left Pending or InProgress."""
        return sorted({f.name for f in self._functions.in_transition()})

    def account_usage(self) -> tuple[int, int]:
        return self._functions.usage()

    # -- helpers -----------------------------------------------------------------------

    def _load_unqualified(self, function_name: str) -> StoredFunction:
        ref = self.scope.parse(function_name)
        if ref.qualifier is not None and ref.qualifier != LATEST:
            raise InvalidParameterValueException(
                "This operation is permitted on Lambda functions only. Aliases and versions do "
                "not support this operation. Please specify either a function name or an "
                "unqualified function ARN."
            )
        stored = self._functions.get(ref.name) if len(ref.name) <= MAX_NAME_LENGTH else None
        if stored is None:
            raise self.scope.not_found(ref.name)
        return stored

    @staticmethod
    def _check_revision(current: StoredFunction, revision_id: str | None) -> None:
        if revision_id is not None and revision_id != current.revision_id:
            raise PreconditionFailedException(REVISION_MISMATCH)

    def _check_updatable(self, current: StoredFunction) -> None:
        if current.state == "Pending":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in "
                "the following state: Pending"
            )
        if current.last_update_status == "InProgress":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. An update is in progress for "
                f"resource: {self.scope.function_arn(current.name)}"
            )

    def _replace(
        self,
        current: StoredFunction,
        config: dict[str, Any],
        code_sha256: str | None = None,
        code_size: int | None = None,
    ) -> None:
        updated = StoredFunction(
            name=current.name,
            version=current.version,
            revision_id=config["RevisionId"],
            state=current.state,
            last_update_status="InProgress",
            code_sha256=code_sha256 or current.code_sha256,
            code_size=current.code_size if code_size is None else code_size,
            config=config,
        )
        replaced = self._functions.replace(updated, current.revision_id)
        self._changed(current.name)
        if not replaced:
            # Someone else updated it between our read and our write.
            raise ResourceConflictException(
                "The operation cannot be performed at this time. An update is in progress for "
                f"resource: {self.scope.function_arn(current.name)}"
            )
        self._schedule_settle(current.name)


def _already_exists(name: str) -> ResourceConflictException:
    return ResourceConflictException(f"Function already exist: {name}")


def _zip_from(code: dict[str, Any]) -> bytes:
    if code.get("ZipFile") is not None:
        return bytes(code["ZipFile"])
    if code.get("S3Bucket") or code.get("S3Key"):
        raise InvalidParameterValueException(NO_S3_BUCKET)
    if code.get("ImageUri"):
        raise InvalidParameterValueException(
            "lambdaplane runs .zip deployment packages only; PackageType Image is not supported."
        )
    raise InvalidParameterValueException("Please provide a source for function code.")


def _encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_marker(marker: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameterValueException("Invalid marker: " + marker) from None
    return decoded
