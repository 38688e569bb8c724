"""The function control plane: create, read, list, update and delete functions.

Every method validates fully before it writes, so a refused request changes nothing.
Writes are compare-and-swap on ``RevisionId``; a create or update leaves the function
``Pending`` / ``InProgress`` and hands it to ``settle``, which the server runs in the
background (and again at start for anything a crash left half-way).
"""

from __future__ import annotations

import base64
import binascii
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from lambdaplane.code import CodeStore, check_zipped_size, inspect_zip
from lambdaplane.errors import (
    CodeSigningConfigNotFoundException,
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ValidationException,
)
from lambdaplane.service import configuration as cfg
from lambdaplane.service import versions
from lambdaplane.service.concurrency import ConcurrencyService
from lambdaplane.service.function_layers import FunctionLayers, NoLayers
from lambdaplane.service.names import MAX_NAME_LENGTH, Scope
from lambdaplane.service.runtimes import RuntimeCatalog
from lambdaplane.service.state import State, UpdateStatus
from lambdaplane.store import (
    AliasRepository,
    FunctionRepository,
    StoredAlias,
    StoredFunction,
    TagRepository,
)
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
        aliases: AliasRepository | None = None,
        choose: Callable[[], float] = random.random,
        layers: FunctionLayers | None = None,
        concurrency: ConcurrencyService | None = None,
    ) -> None:
        self.scope = scope
        self._concurrency = concurrency  # reservations: GetFunction shows them
        self._functions = functions
        self._aliases = aliases
        self._choose = choose  # uniform in [0, 1): picks an alias's weighted version
        self._tags = tags
        self._code = code
        self._runtimes = runtimes
        self._schedule_settle = schedule_settle
        self._clock = clock
        self._layers: FunctionLayers = layers or NoLayers()
        self._invoke_cache: dict[tuple[str, str], tuple[float, StoredFunction]] = {}
        # SnapStart: starts a published version's snapshot (its init phase); the server
        # sets it and calls snapshot_done when the snapshot is ready or failed.
        self.snapshotter: Callable[[StoredFunction], None] | None = None
        self._alias_cache: dict[tuple[str, str], tuple[float, StoredAlias | None]] = {}

    # -- reads -------------------------------------------------------------------------

    def load(
        self, function_name: str, qualifier: str | None = None, conn: Connection | None = None
    ) -> StoredFunction:
        """The function version named (an alias names its primary version), or
        ResourceNotFoundException."""
        ref = self.scope.parse(function_name, qualifier)
        version = ref.qualifier or LATEST
        stored = None
        if len(ref.name) <= MAX_NAME_LENGTH:
            if is_alias(version):
                alias = self._aliases.get(ref.name, version) if self._aliases else None
                if alias is not None:
                    stored = self._functions.get(ref.name, alias.function_version, conn)
            else:
                stored = self._functions.get(ref.name, version, conn)
        if stored is None:
            raise self.scope.not_found(ref.name, ref.qualifier)
        return stored

    def load_alias(self, function_name: str, alias: str) -> StoredAlias | None:
        """An alias from a short-lived in-memory copy (the invoke hot path)."""
        key = (function_name, alias)
        now = self._clock()
        hit = self._alias_cache.get(key)
        if hit is not None and now - hit[0] < INVOKE_CACHE_SECONDS:
            return hit[1]
        stored = self._aliases.get(function_name, alias) if self._aliases else None
        self._alias_cache[key] = (now, stored)
        return stored

    def alias_changed(self, function_name: str) -> None:
        """Forget cached aliases of a function (called by the alias service on writes)."""
        for key in [k for k in self._alias_cache if k[0] == function_name]:
            del self._alias_cache[key]

    def load_for_invoke(self, function_name: str, qualifier: str | None) -> StoredFunction:
        """Like ``load``, from a short-lived in-memory copy (the invoke hot path).

        An alias with a routing configuration picks its additional version with that
        version's weight, afresh for every call.
        """
        ref = self.scope.parse(function_name, qualifier)
        version = ref.qualifier or LATEST
        if is_alias(version):
            alias = self.load_alias(ref.name, version) if len(ref.name) <= MAX_NAME_LENGTH else None
            if alias is None:
                raise self.scope.not_found(ref.name, version)
            version = alias.function_version
            for extra, weight in alias.routing.items():
                if self._choose() < weight:
                    version = extra
        key = (ref.name, version)
        now = self._clock()
        hit = self._invoke_cache.get(key)
        if hit is not None and now - hit[0] < INVOKE_CACHE_SECONDS:
            return hit[1]
        stored = self.load(ref.name, version)
        self._invoke_cache[key] = (now, stored)
        return stored

    def _changed(self, name: str) -> None:
        for key in [k for k in self._invoke_cache if k[0] == name]:
            del self._invoke_cache[key]

    def get_configuration(self, function_name: str, qualifier: str | None) -> dict[str, Any]:
        ref = self.scope.parse(function_name, qualifier)
        return self._presented(self.load(function_name, qualifier), ref.qualifier)

    def _presented(self, stored: StoredFunction, qualifier: str | None) -> dict[str, Any]:
        """A version's configuration under the ARN it was asked for by: an explicit
        ``$LATEST`` or an alias qualifies the ARN, as AWS shows it."""
        if qualifier is None or qualifier == stored.version != LATEST:
            return stored.config
        return {**stored.config, "FunctionArn": self.scope.function_arn(stored.name, qualifier)}

    def get_function(
        self, function_name: str, qualifier: str | None, code_url: Callable[[str], str]
    ) -> dict[str, Any]:
        ref = self.scope.parse(function_name, qualifier)
        with self._functions.connect() as conn:
            stored = self.load(function_name, qualifier, conn)
            tags = self._tags.get(self.scope.function_arn(stored.name), conn)
        result: dict[str, Any] = {
            "Configuration": self._presented(stored, ref.qualifier),
            "Code": {"RepositoryType": "S3", "Location": code_url(stored.code_sha256)},
        }
        if tags:
            result["Tags"] = tags
        reserved = self._concurrency.reserved(stored.name) if self._concurrency else None
        if reserved is not None:
            result["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return result

    def list_functions(
        self, marker: str | None, max_items: int | None, all_versions: bool
    ) -> dict[str, Any]:
        limit = max_items or DEFAULT_PAGE
        after, after_version = None, None
        if marker:
            after, _, after_version = _decode_marker(marker).partition(":")
        rows = self._functions.page(
            after, limit + 1, None if all_versions else LATEST, after_version or None
        )
        page = rows[:limit]
        result: dict[str, Any] = {
            "Functions": [cfg.for_listing(r.config, qualified=all_versions) for r in page]
        }
        if len(rows) > limit:
            last = page[-1]
            result["NextMarker"] = _encode_marker(
                f"{last.name}:{last.version}" if all_versions else last.name
            )
        return result

    def list_versions(
        self, function_name: str, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        """ListVersionsByFunction: $LATEST, then every published version in order."""
        ref = self.scope.parse(function_name)
        if len(ref.name) > MAX_NAME_LENGTH or self._functions.get(ref.name) is None:
            raise self.scope.not_found(ref.name)
        limit = max_items or DEFAULT_PAGE
        start = 0
        if marker:
            position = _decode_marker(marker)
            if not position.isdigit():
                raise InvalidParameterValueException("Invalid marker: " + marker)
            start = int(position)
        rows = self._functions.versions(ref.name, start, limit + 1)
        page = rows[:limit]
        result: dict[str, Any] = {
            "Versions": [cfg.for_listing(r.config, qualified=True) for r in page]
        }
        if len(rows) > limit:
            result["NextMarker"] = _encode_marker(str(start + limit))
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
        if request.get("CodeSigningConfigArn"):
            raise CodeSigningConfigNotFoundException(
                "The code signing configuration cannot be found. Check that the provided "
                f"configuration is not deleted: {request['CodeSigningConfigArn']}."
            )
        cfg.check_environment(request.get("Environment"))
        cfg.check_snapstart(request.get("Runtime"), request.get("SnapStart"))
        cfg.check_layers(request.get("Layers"))
        tags = dict(request.get("Tags") or {})
        cfg.check_tags(tags)
        zip_bytes = _zip_from(request.get("Code") or {})
        check_zipped_size(len(zip_bytes))
        summary = inspect_zip(zip_bytes)
        layers = self._layers.resolve(
            request.get("Layers") or [], summary.sha256_hex, summary.unzipped_size
        )
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
        config = cfg.with_layers(config, layers)
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
        first_version = None
        if request.get("Publish"):
            first_version = self._snapshot(stored, "1", None)
            # AWS answers with $LATEST's configuration, numbered as the version published.
            config = {**config, "Version": "1"}
        try:
            self._functions.create(stored, first_version)
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
        zip_bytes = _zip_from(request)
        check_zipped_size(len(zip_bytes))
        summary = inspect_zip(zip_bytes)
        self._layers.check_size(current.config.get("Layers"), summary.unzipped_size)
        self._check_updatable(current)
        config = dict(current.config)
        config.update(CodeSha256=summary.sha256_b64, CodeSize=summary.size)
        if request.get("Architectures"):
            config["Architectures"] = list(request["Architectures"])
        config = cfg.in_progress(config, new_revision())
        if request.get("DryRun"):
            return config
        self._code.put(zip_bytes)
        if request.get("Publish"):
            # The new code and its version are written together; both settle once the
            # code is unpacked. AWS answers with the version, still Pending.
            return self._update_and_publish(
                current, config, code_sha256=summary.sha256_hex, code_size=summary.size
            )
        self._replace(current, config, code_sha256=summary.sha256_hex, code_size=summary.size)
        return config

    def publish_version(self, request: dict[str, Any]) -> dict[str, Any]:
        """PublishVersion: snapshot $LATEST, or return the last version if nothing changed."""
        current = self._load_unqualified(request["FunctionName"])
        expected_sha = request.get("CodeSha256")
        if expected_sha is not None and expected_sha != current.config["CodeSha256"]:
            raise InvalidParameterValueException(
                f"CodeSHA256 ({expected_sha}) is different from current CodeSHA256 in $LATEST "
                f"({current.config['CodeSha256']}). Please try again with the CodeSHA256 in $LATEST."
            )
        self._check_revision(current, request.get("RevisionId"))
        self._check_updatable(current)
        last = self._functions.last_published(current.name)
        if last is not None and versions.same_content(last.config, current.config):
            return last.config
        latest_config = {**current.config, "RevisionId": new_revision()}
        latest = _with_config(current, latest_config)
        published = self._functions.publish(
            latest,
            current.revision_id,
            lambda number: self._snapshot(current, str(number), request.get("Description")),
        )
        self._changed(current.name)
        if published is None:
            raise self._conflict(current.name)
        if published.state == "Pending":  # a SnapStart version: its snapshot is made now
            self._schedule_settle(current.name)
        return published.config

    def update_function_configuration(self, request: dict[str, Any]) -> dict[str, Any]:
        current = self._load_unqualified(request["FunctionName"])
        self._check_revision(current, request.get("RevisionId"))
        runtime_arn = None
        if "Runtime" in request:
            runtime = self._runtimes.require(request["Runtime"])
            runtime_arn = runtime.version_arn(self.scope.region, self.scope.partition)
        if "Environment" in request:
            cfg.check_environment(request["Environment"])
        layers = None
        if "Layers" in request:
            cfg.check_layers(request["Layers"])
            layers = self._layers.resolve(request["Layers"] or [], current.code_sha256)
        if request.get("ImageConfig"):
            raise InvalidParameterValueException(
                "Please don't provide ImageConfig when updating a function with packageType Zip."
            )
        self._check_updatable(current)
        cfg.check_snapstart(
            request.get("Runtime", current.config.get("Runtime")),
            request["SnapStart"] if "SnapStart" in request else current.config.get("SnapStart"),
        )
        config = cfg.updated_configuration(
            current.config, request, runtime_version_arn=runtime_arn, revision_id=new_revision()
        )
        if layers is not None:
            config = cfg.with_layers(config, layers)
        self._replace(current, config)
        return config

    def delete_function(self, function_name: str, qualifier: str | None) -> None:
        """Delete the function, or with a version number only that version.

        A version an alias routes to cannot go; a version that does not exist (any more)
        is deleted already, so that is no error, as on AWS.
        """
        ref = self.scope.parse(function_name, qualifier)
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if ref.qualifier is not None and not ref.qualifier.isdigit():
            raise InvalidParameterValueException("Deletion of aliases is not currently supported.")
        if len(ref.name) > MAX_NAME_LENGTH:
            raise self.scope.not_found(ref.name)
        if ref.qualifier is not None:
            if self._functions.get(ref.name) is None:
                raise self.scope.not_found(ref.name)
            users = self._aliases.referencing(ref.name, ref.qualifier) if self._aliases else []
            if users:
                raise ResourceConflictException(
                    "Unable to delete version because the following aliases reference it: "
                    f"[{', '.join(users)}]"
                )
            self._functions.delete_version(ref.name, ref.qualifier)
            self._changed(ref.name)
            return
        if not self._functions.delete(ref.name):
            raise self.scope.not_found(ref.name)
        self._changed(ref.name)
        self.alias_changed(ref.name)
        if self._concurrency is not None:
            self._concurrency.changed()  # its reservation went with it
        self._tags.drop(self.scope.function_arn(ref.name))

    def settle(self, name: str) -> None:
        """Finish every pending creation or in-progress update of the function's versions:
        unpack the code, mark it done."""
        for stored in self._functions.versions(name):
            if stored.state == "Pending" or stored.last_update_status == "InProgress":
                self._settle_version(name, stored.version)

    def _settle_version(self, name: str, version: str) -> None:
        for _ in range(5):
            current = self._functions.get(name, version)
            if current is None:
                return
            if current.state != "Pending" and current.last_update_status != "InProgress":
                return
            state = State(current.state)
            update = UpdateStatus(current.last_update_status or UpdateStatus.IN_PROGRESS)
            if current.version != LATEST:  # a version is created once, never updated
                update = UpdateStatus.IN_PROGRESS
            try:
                self._code.unpacked(current.code_sha256)
                self._layers.opt_dir(current.config.get("Layers"))  # /opt, ready for invokes
            except Exception as exc:  # A broken blob must not stay Pending forever.
                config = cfg.failed(current.config, new_revision(), str(exc), "InternalError")
                if state is State.PENDING:
                    state = state.to(State.FAILED)
                update.to(UpdateStatus.FAILED)
            else:
                if self.snapshotter is not None and _snapshots(current):
                    self.snapshotter(current)  # Pending until snapshot_done
                    return
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

    def snapshot_done(self, name: str, version: str, failure: str | None) -> None:
        """A SnapStart version's snapshot is ready (Active) or its init failed (Failed,
        StateReasonCode FunctionError, the init error as the reason)."""
        for _ in range(5):
            current = self._functions.get(name, version)
            if current is None or current.state != "Pending":
                return
            if failure is None:
                config = cfg.settled(current.config, new_revision())
                state = State(current.state).to(State.ACTIVE)
            else:
                config = cfg.failed(current.config, new_revision(), failure, "FunctionError")
                state = State(current.state).to(State.FAILED)
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
                if failure is None:  # the snapshot is cached, and billed, until it is deleted
                    architecture = (config.get("Architectures") or ("x86_64",))[0]
                    self._functions.bill_snapshot(
                        name, version, int(config["MemorySize"]), architecture
                    )
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
            raise self._conflict(current.name)
        self._schedule_settle(current.name)

    def _update_and_publish(
        self, current: StoredFunction, config: dict[str, Any], code_sha256: str, code_size: int
    ) -> dict[str, Any]:
        updated = StoredFunction(
            name=current.name,
            version=LATEST,
            revision_id=config["RevisionId"],
            state=current.state,
            last_update_status="InProgress",
            code_sha256=code_sha256,
            code_size=code_size,
            config=config,
        )
        published = self._functions.publish(
            updated, current.revision_id, lambda n: self._snapshot(updated, str(n), None)
        )
        self._changed(current.name)
        if published is None:
            raise self._conflict(current.name)
        self._schedule_settle(current.name)
        return published.config

    def _snapshot(
        self, latest: StoredFunction, version: str, description: str | None
    ) -> StoredFunction:
        """Version ``version`` cut from ``latest`` (see ``versions.snapshot``)."""
        config = versions.snapshot(
            latest.config,
            version=version,
            arn=self.scope.function_arn(latest.name, version),
            description=description,
            revision_id=new_revision(),
        )
        return StoredFunction(
            name=latest.name,
            version=version,
            revision_id=config["RevisionId"],
            state=config["State"],
            last_update_status=config.get("LastUpdateStatus"),
            code_sha256=latest.code_sha256,
            code_size=latest.code_size,
            config=config,
        )

    def _conflict(self, name: str) -> ResourceConflictException:
        return ResourceConflictException(
            "The operation cannot be performed at this time. An update is in progress for "
            f"resource: {self.scope.function_arn(name)}"
        )


def _snapshots(stored: StoredFunction) -> bool:
    """A published version of a SnapStart function whose runtime lambdaplane snapshots."""
    return (
        stored.version != LATEST
        and (stored.config.get("SnapStart") or {}).get("OptimizationStatus") == "On"
        and str(stored.config.get("Runtime", "")).startswith("python")
    )


def is_alias(qualifier: str) -> bool:
    """A qualifier names an alias unless it is $LATEST or a version number."""
    return qualifier != LATEST and not qualifier.isdigit()


def _with_config(stored: StoredFunction, config: dict[str, Any]) -> StoredFunction:
    return StoredFunction(
        name=stored.name,
        version=stored.version,
        revision_id=config["RevisionId"],
        state=stored.state,
        last_update_status=stored.last_update_status,
        code_sha256=stored.code_sha256,
        code_size=stored.code_size,
        config=config,
    )


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
