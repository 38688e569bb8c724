"""Table definitions. Migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

functions = sa.Table(
    "functions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # The last published version number: versions are never renumbered or reused.
    sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_functions_name"),
)

# One row per published version and one for $LATEST. ``config`` is the function's
# configuration in the API's own shape; the columns beside it are the parts that
# are queried or compared-and-swapped.
function_versions = sa.Table(
    "function_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "function_id",
        sa.Integer,
        sa.ForeignKey("functions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("revision_id", sa.String(36), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("last_update_status", sa.String(16), nullable=True),
    sa.Column("code_sha256", sa.String(64), nullable=False),
    sa.Column("code_size", sa.BigInteger, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.UniqueConstraint("function_id", "version", name="uq_function_versions"),
)

# An alias names one version, and optionally a second one that takes ``routing``'s share
# of invocations ({version: weight}, at most one entry, as AWS allows).
function_aliases = sa.Table(
    "function_aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "function_id",
        sa.Integer,
        sa.ForeignKey("functions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("function_version", sa.String(32), nullable=False),
    sa.Column("description", sa.String(256), nullable=False),
    sa.Column("routing", sa.JSON, nullable=False),
    sa.Column("revision_id", sa.String(36), nullable=False),
    sa.UniqueConstraint("function_id", "name", name="uq_function_aliases"),
)

# A function's resource-based policy per qualifier ("$LATEST" stands for the unqualified
# function, else a version number or an alias name): its statements in the order they
# were added, in the API's shape. ``revision_id`` is what GetPolicy reports; each write
# also gives the function version or alias it belongs to that same new RevisionId.
function_policies = sa.Table(
    "function_policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "function_id",
        sa.Integer,
        sa.ForeignKey("functions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("qualifier", sa.String(128), nullable=False),
    sa.Column("statements", sa.JSON, nullable=False),
    sa.Column("revision_id", sa.String(36), nullable=False),
    sa.UniqueConstraint("function_id", "qualifier", name="uq_function_policies"),
)

resource_tags = sa.Table(
    "resource_tags",
    metadata,
    sa.Column("resource_arn", sa.String(512), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

log_events = sa.Table(
    "log_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("log_group", sa.String(512), nullable=False),
    sa.Column("log_stream", sa.String(512), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),  # ms since the epoch
    sa.Column("ingestion_time", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_log_events_stream", "log_group", "log_stream", "timestamp"),
)

# Accepted asynchronous invocations. A row is deleted only after its outcome (and any
# destination) has been handled, so a crash loses nothing: an expired lease makes the
# event due again (at-least-once delivery).
async_events = sa.Table(
    "async_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("function_name", sa.String(64), nullable=False),
    sa.Column("qualifier", sa.String(128), nullable=False),
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),  # epoch seconds
    sa.Column("attempts", sa.Integer, nullable=False),  # function invocations made so far
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=True),  # a worker owns it until then
    sa.Column("last_error", sa.Text, nullable=True),
    # The caller's X-Amzn-Trace-Id: every attempt continues that trace (migration 0009).
    sa.Column("trace_header", sa.String(512), nullable=True),
    sa.Index("ix_async_events_due", "next_attempt_at"),
)

event_invoke_configs = sa.Table(
    "event_invoke_configs",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("qualifier", sa.String(128), primary_key=True),
    sa.Column("config", sa.JSON, nullable=False),  # the API's FunctionEventInvokeConfig shape
    sa.Column("last_modified", sa.Float, nullable=False),
)

# Layers of an account and region. ``last_version`` counts published versions: numbers
# are never reused, even after every version of the layer has been deleted.
layers = sa.Table(
    "layers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(140), nullable=False),
    sa.Column("last_version", sa.Integer, nullable=False),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_layers_name"),
)

# One row per published layer version. A deleted version keeps its row (``deleted``):
# functions that use it still resolve its code, as on AWS, while Get/List no longer
# see it. ``policy`` is the version's permission statements, in the API's shape.
layer_versions = sa.Table(
    "layer_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "layer_id",
        sa.Integer,
        sa.ForeignKey("layers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("code_sha256", sa.String(64), nullable=False),  # hex
    sa.Column("code_size", sa.BigInteger, nullable=False),  # zipped
    sa.Column("unzipped_size", sa.BigInteger, nullable=False),
    sa.Column("description", sa.String(256), nullable=False),
    sa.Column("license_info", sa.String(512), nullable=True),
    sa.Column("compatible_runtimes", sa.JSON, nullable=True),  # None: not given
    sa.Column("compatible_architectures", sa.JSON, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),  # epoch seconds
    sa.Column("policy", sa.JSON, nullable=False),  # list of statements
    sa.Column("policy_revision", sa.String(36), nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.UniqueConstraint("layer_id", "version", name="uq_layer_versions"),
)

# Log groups of the CloudWatch Logs API. A function's group is created by the first
# batch of its events (as AWS creates it on first write), or by CreateLogGroup.
# ``stored_bytes`` counts the characters of the group's stored messages.
log_groups = sa.Table(
    "log_groups",
    metadata,
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),  # ms since the epoch
    sa.Column("retention_days", sa.Integer, nullable=True),  # None: never expire
    sa.Column("log_group_class", sa.String(32), nullable=False),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False),
)

# Log streams, with the summary DescribeLogStreams reports, kept up to date by each
# batch of events the log sink writes (ms since the epoch; None before the first event).
log_streams = sa.Table(
    "log_streams",
    metadata,
    sa.Column("log_group", sa.String(512), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("first_event", sa.BigInteger, nullable=True),
    sa.Column("last_event", sa.BigInteger, nullable=True),
    sa.Column("last_ingestion", sa.BigInteger, nullable=True),
)

# FilterLogEvents and retention read a group's events in time order, across streams.
sa.Index("ix_log_events_group_time", log_events.c.log_group, log_events.c.timestamp)

# Usage: one row per invocation (what Lambda bills: a request and its billed duration at
# 1 ms granularity, with the memory, architecture and ephemeral storage it was billed at).
# Written in batches off the invoke path; read by `lambdaplane usage`.
usage_records = sa.Table(
    "usage_records",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("function_name", sa.String(64), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),  # the version that ran
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),  # ms since the epoch, at the end
    sa.Column("billed_ms", sa.Integer, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("architecture", sa.String(16), nullable=False),
    sa.Column("ephemeral_mb", sa.Integer, nullable=False),
    # Ran on a provisioned environment: billed at the provisioned duration price.
    sa.Column("provisioned", sa.Boolean, nullable=False, server_default=sa.false()),
    # The first invocation of an environment restored from a SnapStart snapshot.
    sa.Column("restored", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_usage_records_time", "timestamp"),
)

# What is billed by time rather than by invocation, one period each: ``kind`` "provisioned"
# for a provisioned concurrency configuration of a version or alias (from the Put that set
# it until the Put that changed it or the delete of the config, the alias, the version or
# the function), "snapstart" for a SnapStart version's cached snapshot (from the snapshot
# until the version is deleted); ``end_ms`` is NULL while it lasts. Kept apart from what
# it bills, like usage_records, so a bill outlives the function.
provisioned_usage = sa.Table(
    "provisioned_usage",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("function_name", sa.String(64), nullable=False),
    sa.Column("qualifier", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="provisioned"),
    sa.Column("concurrency", sa.Integer, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("architecture", sa.String(16), nullable=False),
    sa.Column("start_ms", sa.BigInteger, nullable=False),
    sa.Column("end_ms", sa.BigInteger, nullable=True),
    sa.Index("ix_provisioned_usage_function", "account_id", "region", "function_name"),
)

# Event source mappings (docs/esm.md). ``config`` is the mapping in the API's shape with
# its defaults filled in; ``source_key`` is what makes two mappings duplicates of one
# another (the source ARN, or a Kafka mapping's servers and topics); ``revision``
# changes with every write, for compare-and-swap between the API and the manager.
event_source_mappings = sa.Table(
    "event_source_mappings",
    metadata,
    sa.Column("uuid", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("function_name", sa.String(64), nullable=False),
    sa.Column("qualifier", sa.String(128), nullable=True),  # None: unqualified
    sa.Column("source_kind", sa.String(16), nullable=False),
    sa.Column("source_key", sa.String(2048), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),  # what the user asked for
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("state_reason", sa.String(256), nullable=False),
    sa.Column("last_processing_result", sa.String(1024), nullable=True),
    sa.Column("last_modified", sa.Float, nullable=False),  # epoch seconds
    sa.Column("created_at", sa.Float, nullable=False),  # orders ListEventSourceMappings
    sa.Column("revision", sa.String(36), nullable=False),
    sa.Index("ix_esm_function", "account_id", "region", "function_name"),
    sa.Index("ix_esm_source", "account_id", "region", "source_key"),
)

# A poller's durable position per key (shard, partition ...), deleted with its mapping.
esm_checkpoints = sa.Table(
    "esm_checkpoints",
    metadata,
    sa.Column("mapping_uuid", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# A function URL per function ($LATEST) or alias. ``url_id`` is the URL's host label,
# fixed at creation; ``invoke_mode`` is None until a request sets it (AWS then omits it
# from CreateFunctionUrlConfig's answer but reports BUFFERED elsewhere).
function_url_configs = sa.Table(
    "function_url_configs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "function_id",
        sa.Integer,
        sa.ForeignKey("functions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("qualifier", sa.String(128), nullable=False),
    sa.Column("url_id", sa.String(32), nullable=False),
    sa.Column("auth_type", sa.String(16), nullable=False),
    sa.Column("invoke_mode", sa.String(16), nullable=True),
    sa.Column("cors", sa.JSON, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.UniqueConstraint("function_id", "qualifier", name="uq_function_url_configs"),
    sa.UniqueConstraint("url_id", name="uq_function_url_configs_url_id"),
)

# Provisioned concurrency per published version or alias (never $LATEST): how many
# environments are asked for. What is allocated is live state, kept by the node.
provisioned_concurrency_configs = sa.Table(
    "provisioned_concurrency_configs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "function_id",
        sa.Integer,
        sa.ForeignKey("functions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("qualifier", sa.String(128), nullable=False),
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.UniqueConstraint("function_id", "qualifier", name="uq_provisioned_concurrency_configs"),
)

# A function's reserved concurrency (PutFunctionConcurrency): one row per function that
# has a reservation, deleted with the function.
function_concurrency = sa.Table(
    "function_concurrency",
    metadata,
    sa.Column(
        "function_id",
        sa.Integer,
        sa.ForeignKey("functions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("reserved", sa.Integer, nullable=False),
)
