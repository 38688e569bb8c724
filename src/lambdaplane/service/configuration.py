"""A function's configuration in the API's own shape: defaults, checks and updates.

These are pure functions over dicts shaped like botocore's ``FunctionConfiguration``;
the service stores the result as is and renders it back with ``for_listing``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lambdaplane.errors import InvalidParameterValueException

ENV_LIMIT_BYTES = 4096
MAX_TAGS = 50

# Keys Lambda sets itself; AWS refuses them in Environment.Variables.
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

CREATING_REASON = "The function is being created."
CREATING_CODE = "Creating"

# Fields AWS leaves out of ListFunctions items.
_NOT_LISTED = (
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
    "RuntimeVersionConfig",
)


def last_modified(now: datetime | None = None) -> str:
    """AWS's LastModified format: ``2024-01-31T12:34:56.789+0000``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def check_environment(environment: dict[str, Any] | None) -> None:
    """Refuse reserved keys and a serialised size over 4 KB, with AWS's messages."""
    variables = (environment or {}).get("Variables") or {}
    reserved = sorted(k for k in variables if k in RESERVED_ENV_KEYS)
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not supported "
            f"for modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > ENV_LIMIT_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: " + measured
        )


def check_layers(layers: list[str] | None) -> None:
    """At most 5 layers (AWS's first check); the layer service resolves the versions."""
    if layers and len(layers) > 5:
        raise InvalidParameterValueException("Cannot reference more than 5 layers.")


def with_layers(config: dict[str, Any], layers: list[dict[str, Any]]) -> dict[str, Any]:
    """``config`` with its ``Layers`` ([{"Arn", "CodeSize"}], as AWS shows them); none
    removes the key, as AWS omits it for a function without layers."""
    config = {k: v for k, v in config.items() if k != "Layers"}
    if layers:
        config["Layers"] = [dict(layer) for layer in layers]
    return dict(sorted(config.items()))


def check_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")


def logging_config(
    requested: dict[str, Any] | None, name: str, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge a (partial) LoggingConfig over the current one, filling AWS's defaults."""
    merged: dict[str, Any] = dict(
        current or {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    )
    merged.update({k: v for k, v in (requested or {}).items() if v is not None})
    if merged.get("LogFormat") == "JSON":
        merged.setdefault("ApplicationLogLevel", "INFO")
        merged.setdefault("SystemLogLevel", "INFO")
    else:
        merged.pop("ApplicationLogLevel", None)
        merged.pop("SystemLogLevel", None)
    merged.setdefault("LogGroup", f"/aws/lambda/{name}")
    return dict(sorted(merged.items()))


def vpc_config(requested: dict[str, Any] | None) -> dict[str, Any] | None:
    if not requested or not requested.get("SubnetIds"):
        return None
    return {
        "SubnetIds": list(requested.get("SubnetIds") or []),
        "SecurityGroupIds": list(requested.get("SecurityGroupIds") or []),
        "VpcId": "",
        "Ipv6AllowedForDualStack": bool(requested.get("Ipv6AllowedForDualStack", False)),
    }


# Members of CreateFunction/UpdateFunctionConfiguration copied into the configuration
# as given (after the model's validation), with the default used when absent.
_SIMPLE_DEFAULTS: dict[str, Any] = {
    "Description": "",
    "Timeout": 3,
    "MemorySize": 128,
}


def new_configuration(
    request: dict[str, Any],
    *,
    name: str,
    arn: str,
    runtime_version_arn: str | None,
    code_sha256: str,
    code_size: int,
    revision_id: str,
) -> dict[str, Any]:
    """The $LATEST configuration a CreateFunction request describes, in State Pending."""
    config: dict[str, Any] = {
        "FunctionName": name,
        "FunctionArn": arn,
        "Runtime": request.get("Runtime"),
        "Role": request["Role"],
        "Handler": request.get("Handler"),
        "CodeSize": code_size,
        "Description": request.get("Description", _SIMPLE_DEFAULTS["Description"]),
        "Timeout": request.get("Timeout", _SIMPLE_DEFAULTS["Timeout"]),
        "MemorySize": request.get("MemorySize", _SIMPLE_DEFAULTS["MemorySize"]),
        "LastModified": last_modified(),
        "CodeSha256": code_sha256,
        "Version": "$LATEST",
        "TracingConfig": {"Mode": (request.get("TracingConfig") or {}).get("Mode", "PassThrough")},
        "RevisionId": revision_id,
        "State": "Pending",
        "StateReason": CREATING_REASON,
        "StateReasonCode": CREATING_CODE,
        "PackageType": request.get("PackageType", "Zip"),
        "Architectures": list(request.get("Architectures") or ["x86_64"]),
        "EphemeralStorage": {"Size": (request.get("EphemeralStorage") or {}).get("Size", 512)},
        "SnapStart": {
            "ApplyOn": (request.get("SnapStart") or {}).get("ApplyOn", "None"),
            "OptimizationStatus": "Off",
        },
        "LoggingConfig": logging_config(request.get("LoggingConfig"), name),
    }
    if runtime_version_arn is not None:
        config["RuntimeVersionConfig"] = {"RuntimeVersionArn": runtime_version_arn}
    _apply_optional(config, request)
    return dict(sorted(config.items()))


# AWS's SnapStart runtimes (docs: Java 11+, Python 3.12+, .NET 8+); lambdaplane snapshots
# the Python ones (docs/snapstart.md), the others run as ordinary environments.
SNAPSTART_RUNTIMES = frozenset(
    {"java11", "java17", "java21", "java25", "python3.12", "python3.13", "python3.14",
     "dotnet8", "dotnet10"}
)  # fmt: skip


def check_snapstart(runtime: str | None, snap_start: dict[str, Any] | None) -> None:
    """AWS's refusal of SnapStart on a runtime that does not offer it."""
    if (snap_start or {}).get("ApplyOn") == "PublishedVersions" and runtime not in (
        SNAPSTART_RUNTIMES
    ):
        raise InvalidParameterValueException(
            f"{runtime} is not supported for SnapStart enabled functions."
        )


# Newer configuration blocks that lambdaplane does not act on yet: stored and echoed
# exactly as given, as AWS echoes them.
ECHOED = (
    "TenancyConfig",
    "CapacityProviderConfig",
    "DurableConfig",
    "RuntimeConfig",
    "AcceleratorConfig",
)


def _apply_optional(config: dict[str, Any], request: dict[str, Any]) -> None:
    for key in ECHOED:
        if key in request:
            if request[key]:
                config[key] = request[key]
            else:
                config.pop(key, None)
    if "Environment" in request:
        config["Environment"] = {
            "Variables": dict((request["Environment"] or {}).get("Variables") or {})
        }
    if "DeadLetterConfig" in request:
        target = (request["DeadLetterConfig"] or {}).get("TargetArn")
        if target:
            config["DeadLetterConfig"] = {"TargetArn": target}
        else:
            config.pop("DeadLetterConfig", None)
    if "KMSKeyArn" in request:
        if request["KMSKeyArn"]:
            config["KMSKeyArn"] = request["KMSKeyArn"]
        else:
            config.pop("KMSKeyArn", None)
    if "VpcConfig" in request:
        vpc = vpc_config(request["VpcConfig"])
        if vpc is None:
            config.pop("VpcConfig", None)
        else:
            config["VpcConfig"] = vpc
    if "FileSystemConfigs" in request:
        if request["FileSystemConfigs"]:
            config["FileSystemConfigs"] = list(request["FileSystemConfigs"])
        else:
            config.pop("FileSystemConfigs", None)


def updated_configuration(
    current: dict[str, Any],
    request: dict[str, Any],
    *,
    runtime_version_arn: str | None,
    revision_id: str,
) -> dict[str, Any]:
    """``current`` with an UpdateFunctionConfiguration applied, LastUpdateStatus InProgress."""
    config = dict(current)
    for key in ("Role", "Handler", "Description", "Timeout", "MemorySize", "Runtime"):
        if key in request:
            config[key] = request[key]
    if "TracingConfig" in request:
        config["TracingConfig"] = {
            "Mode": (request["TracingConfig"] or {}).get("Mode", "PassThrough")
        }
    if "EphemeralStorage" in request:
        config["EphemeralStorage"] = {"Size": request["EphemeralStorage"]["Size"]}
    if "SnapStart" in request:
        config["SnapStart"] = {
            "ApplyOn": (request["SnapStart"] or {}).get("ApplyOn", "None"),
            "OptimizationStatus": "Off",
        }
    if "LoggingConfig" in request:
        config["LoggingConfig"] = logging_config(
            request["LoggingConfig"], config["FunctionName"], config.get("LoggingConfig")
        )
    if runtime_version_arn is not None:
        config["RuntimeVersionConfig"] = {"RuntimeVersionArn": runtime_version_arn}
    _apply_optional(config, request)
    return in_progress(config, revision_id)


def in_progress(config: dict[str, Any], revision_id: str) -> dict[str, Any]:
    """Mark an update as started: what AWS returns from an Update* call."""
    config = dict(config)
    config.update(
        LastModified=last_modified(),
        RevisionId=revision_id,
        LastUpdateStatus="InProgress",
        LastUpdateStatusReason=CREATING_REASON,
        LastUpdateStatusReasonCode=CREATING_CODE,
    )
    return dict(sorted(config.items()))


def settled(config: dict[str, Any], revision_id: str) -> dict[str, Any]:
    """Creation or update finished: State Active, LastUpdateStatus Successful, a new revision."""
    config = {
        k: v
        for k, v in config.items()
        if k
        not in (
            "StateReason",
            "StateReasonCode",
            "LastUpdateStatusReason",
            "LastUpdateStatusReasonCode",
        )
    }
    config.update(State="Active", LastUpdateStatus="Successful", RevisionId=revision_id)
    return dict(sorted(config.items()))


def failed(config: dict[str, Any], revision_id: str, reason: str, code: str) -> dict[str, Any]:
    """Creation or update could not finish."""
    config = dict(config)
    if config.get("State") == "Pending":
        config.update(State="Failed", StateReason=reason, StateReasonCode=code)
    config.update(
        LastUpdateStatus="Failed",
        LastUpdateStatusReason=reason,
        LastUpdateStatusReasonCode=code,
        RevisionId=revision_id,
    )
    return dict(sorted(config.items()))


def for_listing(config: dict[str, Any], qualified: bool) -> dict[str, Any]:
    """A configuration as ListFunctions shows it."""
    item = {k: v for k, v in config.items() if k not in _NOT_LISTED}
    if qualified and config["Version"] == "$LATEST":  # a version's ARN is qualified already
        item["FunctionArn"] = f"{config['FunctionArn']}:{config['Version']}"
    return item
