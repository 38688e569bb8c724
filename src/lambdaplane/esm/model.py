"""An event source mapping as pollers see it: ``MappingConfig``.

A mapping is stored as the configuration the API returns (AWS's member names:
``BatchSize``, ``EventSourceArn``, ``FilterCriteria``, ``DestinationConfig`` ...) with
every default already filled in for its source, plus the few fields the server keeps
beside it (UUID, function name and qualifier, source kind). ``MappingConfig`` wraps that
dict with typed accessors so pollers never parse the wire shape themselves.

Source kinds (the keys of ``lambdaplane.esm.manager.POLLERS``):

==============  ===============================================  ======================
kind            event source                                     event ``eventSource``
==============  ===============================================  ======================
``sqs``         ``arn:aws:sqs:region:account:queue``             ``aws:sqs``
``kinesis``     ``arn:aws:kinesis:region:account:stream/name``   ``aws:kinesis``
``dynamodb``    ``arn:aws:dynamodb:…:table/T/stream/label``      ``aws:dynamodb``
``mq``          ``arn:aws:mq:…:broker:name:id`` (ActiveMQ)       ``aws:mq``
``rabbitmq``    ``arn:aws:mq:…:broker:name:id`` (RabbitMQ)       ``aws:rmq``
``kafka``       ``SelfManagedEventSource`` (bootstrap servers)   ``SelfManagedKafka``
==============  ===============================================  ======================

An Amazon MQ ARN does not say which engine the broker runs; the server knows its
brokers from configuration (``--mq-broker ARN=URL``: an ``amqp://``/``amqps://`` URL
is RabbitMQ, anything else ActiveMQ), and the kind is fixed when the mapping is created.

Credentials. AWS reads BASIC_AUTH credentials from Secrets Manager; lambdaplane reads
them from configuration instead: ``--esm-secret ARN=user:password`` (repeatable), or a
JSON file ``<data-dir>/esm-secrets.json`` mapping a secret ARN to the secret string
Secrets Manager would hold (``{"username": "...", "password": "..."}``). A poller asks
``PollerContext.secret(arn)``; ``MappingConfig.basic_auth_secret`` names the ARN.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdaplane.esm.filtering import EventSourceKind, Matcher, compile_criteria

SQS = "sqs"
KINESIS = "kinesis"
DYNAMODB = "dynamodb"
ACTIVEMQ = "mq"
RABBITMQ = "rabbitmq"
KAFKA = "kafka"
SOURCE_KINDS = (SQS, KINESIS, DYNAMODB, ACTIVEMQ, RABBITMQ, KAFKA)
STREAM_KINDS = frozenset({KINESIS, DYNAMODB})

# What each kind's filters see (None: plain EventBridge patterns over the record).
_FILTER_SOURCE: dict[str, EventSourceKind | None] = {
    SQS: EventSourceKind.SQS,
    KINESIS: EventSourceKind.KINESIS,
    DYNAMODB: EventSourceKind.DYNAMODB,
}

# The 6 MB synchronous invoke payload limit: no batch may pass it.
MAX_BATCH_PAYLOAD_BYTES = 6_291_456


def filter_source(kind: str) -> EventSourceKind | None:
    """The filtering rules of a source kind (its data key), None for plain patterns."""
    return _FILTER_SOURCE.get(kind)


@dataclass(frozen=True)
class MappingConfig:
    """One mapping, immutable: a changed mapping is a new ``MappingConfig`` (the manager
    restarts its poller with it).

    ``config`` is the stored configuration in the API's shape, defaults filled in;
    ``qualifier`` is the version or alias the mapping invokes, None for unqualified
    (``$LATEST``).
    """

    uuid: str
    function_name: str
    qualifier: str | None
    source_kind: str
    config: Mapping[str, Any]
    region: str = "us-east-1"
    account_id: str = "000000000000"

    # -- identity ----------------------------------------------------------------------

    @property
    def function_arn(self) -> str:
        return str(self.config.get("FunctionArn", ""))

    @property
    def mapping_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:event-source-mapping:{self.uuid}"

    @property
    def event_source_arn(self) -> str | None:
        """The queue, stream, broker or cluster ARN; None for self-managed Kafka."""
        value = self.config.get("EventSourceArn")
        return str(value) if value else None

    # -- batching ----------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return int(self.config.get("BatchSize") or 1)

    @property
    def maximum_batching_window(self) -> float:
        """``MaximumBatchingWindowInSeconds``, 0 when not set."""
        return float(self.config.get("MaximumBatchingWindowInSeconds") or 0)

    # -- where a stream starts -----------------------------------------------------------

    @property
    def starting_position(self) -> str | None:
        """TRIM_HORIZON, LATEST or AT_TIMESTAMP (streams and Kafka); None for queues."""
        value = self.config.get("StartingPosition")
        return str(value) if value else None

    @property
    def starting_position_timestamp(self) -> float | None:
        """Epoch seconds, for AT_TIMESTAMP."""
        value = self.config.get("StartingPositionTimestamp")
        return None if value is None else float(value)

    # -- filtering and responses ---------------------------------------------------------

    @property
    def filter_criteria(self) -> Mapping[str, Any] | None:
        value = self.config.get("FilterCriteria")
        return value if isinstance(value, Mapping) else None

    @functools.cached_property
    def matcher(self) -> Matcher:
        """The compiled FilterCriteria (validated when the mapping was saved)."""
        return compile_criteria(self.filter_criteria, filter_source(self.source_kind))

    @property
    def function_response_types(self) -> tuple[str, ...]:
        return tuple(self.config.get("FunctionResponseTypes") or ())

    @property
    def report_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types

    # -- failures (streams, Kafka) -------------------------------------------------------

    @property
    def destination_config(self) -> Mapping[str, Any]:
        value = self.config.get("DestinationConfig")
        return value if isinstance(value, Mapping) else {}

    @property
    def on_failure_destination(self) -> str | None:
        """``DestinationConfig.OnFailure.Destination``: an SQS queue, SNS topic (or S3) ARN."""
        on_failure = self.destination_config.get("OnFailure") or {}
        value = on_failure.get("Destination") if isinstance(on_failure, Mapping) else None
        return str(value) if value else None

    @property
    def maximum_retry_attempts(self) -> int:
        """Retries of a failed batch; -1 means until the record expires (AWS's default)."""
        value = self.config.get("MaximumRetryAttempts")
        return -1 if value is None else int(value)

    @property
    def bisect_batch_on_function_error(self) -> bool:
        return bool(self.config.get("BisectBatchOnFunctionError"))

    @property
    def maximum_record_age(self) -> int:
        """``MaximumRecordAgeInSeconds``; -1 means infinite (AWS's default)."""
        value = self.config.get("MaximumRecordAgeInSeconds")
        return -1 if value is None else int(value)

    @property
    def parallelization_factor(self) -> int:
        return int(self.config.get("ParallelizationFactor") or 1)

    @property
    def tumbling_window(self) -> int:
        """``TumblingWindowInSeconds``; 0 when not set."""
        return int(self.config.get("TumblingWindowInSeconds") or 0)

    # -- scaling -----------------------------------------------------------------------

    @property
    def maximum_concurrency(self) -> int | None:
        """``ScalingConfig.MaximumConcurrency`` (SQS, 2-1000); None when not set."""
        scaling = self.config.get("ScalingConfig") or {}
        value = scaling.get("MaximumConcurrency") if isinstance(scaling, Mapping) else None
        return None if value is None else int(value)

    # -- brokers -----------------------------------------------------------------------

    @property
    def source_access_configurations(self) -> tuple[Mapping[str, str], ...]:
        """``[{"Type": "BASIC_AUTH", "URI": secret ARN}, {"Type": "VIRTUAL_HOST", ...}]``."""
        return tuple(self.config.get("SourceAccessConfigurations") or ())

    def access_uri(self, kind: str) -> str | None:
        """The ``URI`` of the first source access configuration of ``kind`` (e.g. BASIC_AUTH)."""
        for entry in self.source_access_configurations:
            if entry.get("Type") == kind:
                return str(entry.get("URI"))
        return None

    @property
    def basic_auth_secret(self) -> str | None:
        """The secret ARN whose credentials the poller logs in with (BASIC_AUTH or SASL)."""
        for kind in ("BASIC_AUTH", "SASL_SCRAM_512_AUTH", "SASL_SCRAM_256_AUTH"):
            uri = self.access_uri(kind)
            if uri is not None:
                return uri
        return None

    @property
    def virtual_host(self) -> str | None:
        """RabbitMQ's ``VIRTUAL_HOST`` access configuration, None for the default vhost."""
        return self.access_uri("VIRTUAL_HOST")

    @property
    def queues(self) -> tuple[str, ...]:
        """Amazon MQ: the queue(s) to consume (AWS allows exactly one)."""
        return tuple(self.config.get("Queues") or ())

    @property
    def topics(self) -> tuple[str, ...]:
        """Kafka: the topic(s) to consume (AWS allows exactly one)."""
        return tuple(self.config.get("Topics") or ())

    @property
    def kafka_bootstrap_servers(self) -> tuple[str, ...]:
        endpoints = (self.config.get("SelfManagedEventSource") or {}).get("Endpoints") or {}
        return tuple(endpoints.get("KAFKA_BOOTSTRAP_SERVERS") or ())

    @property
    def kafka_consumer_group_id(self) -> str:
        """The consumer group: as configured, else the mapping's UUID (AWS's default)."""
        for key in ("SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig"):
            section = self.config.get(key) or {}
            if isinstance(section, Mapping) and section.get("ConsumerGroupId"):
                return str(section["ConsumerGroupId"])
        return self.uuid
