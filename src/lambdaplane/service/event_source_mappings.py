"""Create/Get/Update/Delete/ListEventSourceMappings: validation, defaults and shapes.

The API only writes rows with a transient state and nudges the manager
(``lambdaplane.esm.manager``), which runs the pollers and settles the state. Shapes,
defaults and messages follow the recordings in ``../shared/aws-reference/lambda/``
(``esm_*.snapshot.json`` and ``test_lambda_api.snapshot.json``): SQS answers without
``LastProcessingResult`` and with ``StateTransitionReason: USER_INITIATED``; streams
with their retry settings, ``DestinationConfig: {"OnFailure": {}}`` and ``User action``.
Mappings outlive their function, as on AWS: they stay, and their pollers fail to
invoke until a function of that name exists again.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lambdaplane.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.esm.filtering import FilterError, compile_criteria
from lambdaplane.esm.model import (
    ACTIVEMQ,
    DYNAMODB,
    KAFKA,
    KINESIS,
    RABBITMQ,
    SQS,
    STREAM_KINDS,
    filter_source,
)
from lambdaplane.esm.states import USER_ACTION, USER_INITIATED, State, after_update
from lambdaplane.service.functions import FunctionService
from lambdaplane.service.names import Scope
from lambdaplane.store.event_source_mappings import (
    EventSourceMappingRepository,
    StoredMapping,
    new_revision,
)
from lambdaplane.store.tags import TagRepository

NOT_FOUND = "The resource you requested does not exist."
UNRECOGNIZED = "Unrecognized event source."
NO_FUNCTION = "Function does not exist"
WINDOW_REQUIRED = "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
STARTING_POSITION_NULL = (
    "1 validation error detected: Value null at 'startingPosition' failed to satisfy "
    "constraint: Member must not be null."
)
NO_PROCESSING = "No records processed"
DEFAULT_PAGE = 100

# BatchSize default and maximum per kind (SQS FIFO queues: at most 10).
_BATCH = {SQS: (10, 10_000), KINESIS: (100, 10_000), DYNAMODB: (100, 10_000)}
_BATCH |= {ACTIVEMQ: (100, 10_000), RABBITMQ: (100, 10_000), KAFKA: (100, 10_000)}
_FIFO_MAX_BATCH = 10

# Members only some kinds take; any other kind refuses them with AWS's message.
_STREAM_ONLY = (
    "ParallelizationFactor",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
)
_SUPPORTED: dict[str, frozenset[str]] = {
    SQS: frozenset({"ScalingConfig", "FunctionResponseTypes"}),
    KINESIS: frozenset({*_STREAM_ONLY, "DestinationConfig", "FunctionResponseTypes"}),
    DYNAMODB: frozenset({*_STREAM_ONLY, "DestinationConfig", "FunctionResponseTypes"}),
    ACTIVEMQ: frozenset({"Queues", "SourceAccessConfigurations"}),
    RABBITMQ: frozenset({"Queues", "SourceAccessConfigurations"}),
    KAFKA: frozenset(
        {
            "Topics",
            "SourceAccessConfigurations",
            "SelfManagedEventSource",
            "SelfManagedKafkaEventSourceConfig",
            "AmazonManagedKafkaEventSourceConfig",
            "DestinationConfig",
        }
    ),
}
_KIND_SPECIFIC = frozenset().union(*_SUPPORTED.values()) - {"FunctionResponseTypes"}
# Copied from the request into the stored configuration when given.
_PASSTHROUGH = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "FilterCriteria",
    "ScalingConfig",
    "FunctionResponseTypes",
    "DestinationConfig",
    "ParallelizationFactor",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
    "Queues",
    "Topics",
    "SourceAccessConfigurations",
    "SelfManagedEventSource",
    "SelfManagedKafkaEventSourceConfig",
    "AmazonManagedKafkaEventSourceConfig",
    "KMSKeyArn",
    "MetricsConfig",
    "LoggingConfig",
)

SourceProblem = Callable[[str, str, int], str | None]  # (kind, arn, timeout) -> message


def classify(arn: str | None, request: Mapping[str, Any], brokers: Mapping[str, str]) -> str:
    """The source kind of a mapping, or InvalidParameterValueException (Unrecognized)."""
    if not arn:
        if request.get("SelfManagedEventSource"):
            return KAFKA
        raise InvalidParameterValueException(UNRECOGNIZED)
    parts = arn.split(":", 5)
    service = parts[2] if len(parts) == 6 else ""
    resource = parts[5] if len(parts) == 6 else ""
    if service == "sqs" and resource:
        return SQS
    if service == "kinesis" and resource.startswith("stream/"):
        return KINESIS
    if service == "dynamodb" and "/stream/" in resource:
        return DYNAMODB
    if service == "mq" and resource.startswith("broker:"):
        url = brokers.get(arn, "")
        return RABBITMQ if url.startswith(("amqp://", "amqps://")) else ACTIVEMQ
    if service == "kafka":
        return KAFKA
    raise InvalidParameterValueException(UNRECOGNIZED)


class EventSourceMappingService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionService,
        repo: EventSourceMappingRepository,
        tags: TagRepository,
        *,
        notify: Callable[[], None] = lambda: None,
        source_problem: SourceProblem = lambda kind, arn, timeout: None,
        brokers: Mapping[str, str] | None = None,
    ) -> None:
        self._scope = scope
        self._functions = functions
        self._repo = repo
        self._tags = tags
        self._notify = notify
        self._source_problem = source_problem
        self._brokers = dict(brokers or {})

    # -- operations --------------------------------------------------------------------

    def create(self, req: Mapping[str, Any], now: float) -> dict[str, Any]:
        arn = req.get("EventSourceArn") or None
        kind = classify(arn, req, self._brokers)
        name, qualifier, function_arn, timeout = self._function(req["FunctionName"])
        _refuse_unsupported(kind, req)
        config: dict[str, Any] = {key: req[key] for key in _PASSTHROUGH if req.get(key) is not None}
        if arn:
            config["EventSourceArn"] = arn
        config["FunctionArn"] = function_arn
        _starting_position(kind, arn, req, config)
        _defaults(kind, config)
        _check(kind, arn, config)
        source_key = _source_key(kind, arn, config)
        self._refuse_duplicate(kind, arn, config, source_key, name, function_arn, None)
        if arn:
            problem = self._source_problem(kind, arn, timeout)
            if problem is not None:
                raise InvalidParameterValueException(problem)
        uuid = str(uuidlib.uuid4())
        if kind == KAFKA:
            section = "SelfManagedKafkaEventSourceConfig"
            if "SelfManagedEventSource" not in config:
                section = "AmazonManagedKafkaEventSourceConfig"
            group = dict(config.get(section) or {})
            group.setdefault("ConsumerGroupId", uuid)
            config[section] = group
        enabled = req.get("Enabled", True) is not False
        stored = StoredMapping(
            uuid=uuid,
            function_name=name,
            qualifier=qualifier,
            source_kind=kind,
            source_key=source_key,
            config=config,
            enabled=enabled,
            state=(State.CREATING if enabled else State.DISABLED).value,
            state_reason=_reason(kind),
            last_processing_result=NO_PROCESSING,
            last_modified=now,
            created_at=now,
            revision=new_revision(),
        )
        self._repo.insert(stored)
        if req.get("Tags"):
            self._tags.put(self.arn(uuid), dict(req["Tags"]))
        self._notify()
        return self.shape(stored)

    def get(self, uuid: str) -> dict[str, Any]:
        return self.shape(self._load(uuid))

    def update(self, uuid: str, req: Mapping[str, Any], now: float) -> dict[str, Any]:
        for _ in range(5):  # compare-and-swap against the manager settling a state
            stored = self._load(uuid)
            if stored.state == State.DELETING:
                raise ResourceConflictException(
                    "The operation cannot be performed at this time. The event source mapping "
                    "is currently in Deleting state."
                )
            kind = stored.source_kind
            _refuse_unsupported(kind, req)
            config = dict(stored.config)
            name, qualifier = stored.function_name, stored.qualifier
            if req.get("FunctionName"):
                name, qualifier, config["FunctionArn"], _ = self._function(req["FunctionName"])
            for key in _PASSTHROUGH:
                if key in req and req[key] is not None:
                    config[key] = req[key]
            arn = config.get("EventSourceArn")
            _check(kind, arn, config)
            if (name, qualifier) != (stored.function_name, stored.qualifier):
                self._refuse_duplicate(
                    kind, arn, config, stored.source_key, name, config["FunctionArn"], uuid
                )
            enabled = stored.enabled if req.get("Enabled") is None else bool(req["Enabled"])
            changed = config != stored.config or (name, qualifier) != (
                stored.function_name,
                stored.qualifier,
            )
            state = after_update(stored.state, enabled, changed)
            updated = stored.with_changes(
                function_name=name,
                qualifier=qualifier,
                config=config,
                enabled=enabled,
                state=state.value,
                state_reason=_reason(kind),
                last_modified=now if changed or enabled != stored.enabled else stored.last_modified,
                revision=new_revision(),
            )
            if self._repo.replace(updated, stored.revision):
                self._notify()
                return self.shape(updated)
        raise ResourceConflictException(
            "The operation cannot be performed at this time. Please try again."
        )

    def delete(self, uuid: str) -> dict[str, Any]:
        for _ in range(5):
            stored = self._load(uuid)
            if stored.state == State.DELETING:
                return self.shape(stored)
            deleting = stored.with_changes(state=State.DELETING.value, revision=new_revision())
            if self._repo.replace(deleting, stored.revision):
                self._notify()
                return self.shape(deleting)
        raise ResourceConflictException(
            "The operation cannot be performed at this time. Please try again."
        )

    def list(
        self,
        function_name: str | None,
        event_source_arn: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> dict[str, Any]:
        name = qualifier = None
        if function_name:
            ref = self._scope.parse(function_name)
            name, qualifier = ref.name, ref.qualifier
        found = self._repo.find(function_name=name)
        if qualifier is not None:
            found = [m for m in found if m.qualifier == qualifier]
        if event_source_arn:
            found = [m for m in found if m.config.get("EventSourceArn") == event_source_arn]
        start = 0
        if marker:
            uuids = [m.uuid for m in found]
            if marker not in uuids:
                raise InvalidParameterValueException("Invalid marker.")  # our words
            start = uuids.index(marker) + 1
        limit = max_items or DEFAULT_PAGE
        page = found[start : start + limit]
        output: dict[str, Any] = {"EventSourceMappings": [self.shape(m) for m in page]}
        if start + limit < len(found):
            output["NextMarker"] = page[-1].uuid
        return output

    def exists(self, uuid: str) -> bool:
        """For tagging: a mapping with this UUID exists (and is not being deleted)."""
        stored = self._repo.get(uuid)
        return stored is not None and stored.state != State.DELETING

    def arn(self, uuid: str) -> str:
        scope = self._scope
        return (
            f"arn:{scope.partition}:lambda:{scope.region}:{scope.account_id}:"
            f"event-source-mapping:{uuid}"
        )

    # -- helpers -----------------------------------------------------------------------

    def _load(self, uuid: str) -> StoredMapping:
        stored = self._repo.get(uuid)
        if stored is None:
            raise ResourceNotFoundException(NOT_FOUND)
        return stored

    def _function(self, function_name: str) -> tuple[str, str | None, str, int]:
        """(name, qualifier, FunctionArn, Timeout) of an existing function, or AWS's error."""
        ref = self._scope.parse(function_name)
        try:
            stored = self._functions.load(ref.name, ref.qualifier)
        except ResourceNotFoundException:
            raise InvalidParameterValueException(NO_FUNCTION) from None
        arn = self._scope.function_arn(ref.name, ref.qualifier)
        return ref.name, ref.qualifier, arn, int(stored.config.get("Timeout") or 3)

    def _refuse_duplicate(
        self,
        kind: str,
        arn: str | None,
        config: Mapping[str, Any],
        source_key: str,
        name: str,
        function_arn: str,
        own_uuid: str | None,
    ) -> None:
        for other in self._repo.find(source_key=source_key):
            if other.uuid == own_uuid or other.state == State.DELETING:
                continue
            if other.config.get("FunctionArn") != function_arn:
                continue
            if kind == SQS:
                message = (
                    f'An event source mapping with SQS arn (" {arn} ") and function (" {name} ") '
                    "already exists. Please update or delete the existing mapping with UUID "
                    f"{other.uuid}"
                )
            elif kind == KAFKA:
                servers = ",".join(_servers(config))
                topics = ",".join(config.get("Topics") or ())
                message = (
                    f'An event source mapping with event source ("{servers or arn}"), function '
                    f'("{function_arn}"), topics ("{topics}") already exists. Please update or '
                    f"delete the existing mapping with UUID {other.uuid}"
                )
            else:
                message = (
                    f'The event source arn (" {arn} ") and function (" {name} ") provided '
                    "mapping already exists. Please update or delete the existing mapping with "
                    f"UUID {other.uuid}"
                )
            raise ResourceConflictException(message)

    def shape(self, stored: StoredMapping) -> dict[str, Any]:
        """The API's EventSourceMappingConfiguration of a stored mapping."""
        kind = stored.source_kind
        out: dict[str, Any] = {"UUID": stored.uuid}
        config = dict(stored.config)
        timestamp = config.pop("StartingPositionTimestamp", None)
        criteria = config.get("FilterCriteria")
        if not (criteria or {}).get("Filters"):
            config.pop("FilterCriteria", None)
        out.update(config)
        if timestamp is not None:
            out["StartingPositionTimestamp"] = datetime.fromtimestamp(float(timestamp), UTC)
        out["LastModified"] = datetime.fromtimestamp(stored.last_modified, UTC)
        out["State"] = stored.state
        out["StateTransitionReason"] = stored.state_reason
        if kind != SQS:
            out["LastProcessingResult"] = stored.last_processing_result or NO_PROCESSING
        out["EventSourceMappingArn"] = self.arn(stored.uuid)
        return out


# -- pure rules ------------------------------------------------------------------------


def _reason(kind: str) -> str:
    return USER_ACTION if kind in STREAM_KINDS else USER_INITIATED


def _refuse_unsupported(kind: str, req: Mapping[str, Any]) -> None:
    for key in sorted(
        _KIND_SPECIFIC - _SUPPORTED[kind], key=lambda k: _PASSTHROUGH_ORDER.get(k, 99)
    ):
        if req.get(key) is not None:
            raise InvalidParameterValueException(
                f"Unsupported {key} parameter for given event source mapping type."
            )


_PASSTHROUGH_ORDER = {key: i for i, key in enumerate(_PASSTHROUGH)}


def _starting_position(
    kind: str, arn: str | None, req: Mapping[str, Any], config: dict[str, Any]
) -> None:
    position = req.get("StartingPosition")
    if kind in STREAM_KINDS or kind == KAFKA:
        if position is None:
            if kind == KAFKA:
                position = "TRIM_HORIZON"
            else:
                raise InvalidParameterValueException(STARTING_POSITION_NULL)
        if position == "AT_TIMESTAMP" and kind != KINESIS:
            raise InvalidParameterValueException(
                f"Unsupported starting position for arn type: {arn or 'kafka'}"
            )
        config["StartingPosition"] = position
        if position == "AT_TIMESTAMP":
            stamp = req.get("StartingPositionTimestamp")
            if stamp is None:
                raise InvalidParameterValueException(
                    "StartingPositionTimestamp must be provided with AT_TIMESTAMP starting position."
                )
            config["StartingPositionTimestamp"] = (
                stamp.timestamp() if isinstance(stamp, datetime) else float(stamp)
            )
    elif position is not None or req.get("StartingPositionTimestamp") is not None:
        raise InvalidParameterValueException(f"Unsupported starting position for arn type: {arn}")


def _defaults(kind: str, config: dict[str, Any]) -> None:
    config.setdefault("BatchSize", _BATCH[kind][0])
    if kind == KAFKA:
        return
    config.setdefault("MaximumBatchingWindowInSeconds", 0)
    config.setdefault("FunctionResponseTypes", [])
    if kind in STREAM_KINDS:
        config.setdefault("BisectBatchOnFunctionError", False)
        config.setdefault("DestinationConfig", {"OnFailure": {}})
        config.setdefault("MaximumRecordAgeInSeconds", -1)
        config.setdefault("MaximumRetryAttempts", -1)
        config.setdefault("ParallelizationFactor", 1)
        config.setdefault("TumblingWindowInSeconds", 0)


def _check(kind: str, arn: str | None, config: Mapping[str, Any]) -> None:
    """The rules across members, on the configuration as it will be stored."""
    batch = int(config.get("BatchSize") or 1)
    window = int(config.get("MaximumBatchingWindowInSeconds") or 0)
    if kind == SQS:
        if (arn or "").endswith(".fifo") and batch > _FIFO_MAX_BATCH:
            raise InvalidParameterValueException(
                f"Batch size must be at most {_FIFO_MAX_BATCH} for FIFO queues."
            )
        if batch > 10 and window < 1:
            raise InvalidParameterValueException(WINDOW_REQUIRED)
    maximum = _BATCH[kind][1]
    if batch > maximum:
        raise InvalidParameterValueException(
            f"BatchSize must be between 1 and {maximum} for this event source."
        )
    try:
        compile_criteria(config.get("FilterCriteria"), filter_source(kind))
    except FilterError as err:
        raise InvalidParameterValueException(err.message) from None
    if kind in (ACTIVEMQ, RABBITMQ, KAFKA) and not config.get("SourceAccessConfigurations"):
        raise InvalidParameterValueException(
            "Required 'sourceAccessConfigurations' parameter is missing."
        )
    if kind in (ACTIVEMQ, RABBITMQ) and not config.get("Queues"):
        raise InvalidParameterValueException("Required 'queues' parameter is missing.")
    if kind == KAFKA and not config.get("Topics"):
        raise InvalidParameterValueException("Required 'topics' parameter is missing.")


def _servers(config: Mapping[str, Any]) -> list[str]:
    endpoints = (config.get("SelfManagedEventSource") or {}).get("Endpoints") or {}
    return list(endpoints.get("KAFKA_BOOTSTRAP_SERVERS") or [])


def _source_key(kind: str, arn: str | None, config: Mapping[str, Any]) -> str:
    """What makes two mappings of one function duplicates."""
    if kind == KAFKA:
        topics = ",".join(config.get("Topics") or ())
        return f"kafka|{','.join(sorted(_servers(config))) or arn}|{topics}"
    if kind in (ACTIVEMQ, RABBITMQ):
        return f"{arn}|{','.join(config.get('Queues') or ())}"
    return arn or ""
