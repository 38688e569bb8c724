"""What an execution environment is started from: one function version, fully resolved.

A ``FunctionImage`` is immutable; its ``pool_key`` changes whenever anything that
shapes the environment changes (code, runtime, handler, memory, variables, …), so an
update sends new invocations to a new pool while the old one drains.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaplane.invoke.logformat import LogFormat
from lambdaplane.service.runtimes import Runtime

# Fields that do not shape the environment: changing them keeps warm environments.
_NOT_SHAPING = frozenset(
    {
        "RevisionId", "LastModified", "State", "StateReason", "StateReasonCode",
        "LastUpdateStatus", "LastUpdateStatusReason", "LastUpdateStatusReasonCode",
        "Description", "RuntimeVersionConfig",
    }
)  # fmt: skip


def pool_key(config: dict[str, Any]) -> str:
    shaping = {k: v for k, v in config.items() if k not in _NOT_SHAPING}
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]
    return f"{config['FunctionName']}:{config['Version']}:{digest}"


@dataclass(frozen=True)
class FunctionImage:
    pool_key: str
    function_name: str
    version: str
    function_arn: str
    runtime: Runtime
    handler: str
    memory_mb: int
    timeout_s: int
    tmp_mb: int
    code_dir: Path
    log_group: str
    variables: dict[str, str] = field(default_factory=dict)
    log_format: str = "Text"
    log_level: str | None = None  # ApplicationLogLevel, with the JSON format
    opt_dir: Path | None = None  # the function's layers merged in order (/opt); None: none
    system_log_level: str | None = None  # SystemLogLevel, with the JSON format
    tracing_active: bool = False  # TracingConfig.Mode Active (else PassThrough)
    snapstart: bool = False  # SnapStart.OptimizationStatus On (a published version)

    @property
    def log_settings(self) -> LogFormat:
        """How its environments' log streams are written (format and levels)."""
        return LogFormat.of(self.log_format, self.log_level, self.system_log_level)

    @property
    def extensions(self) -> bool:
        """Whether its layers bring external extensions (``/opt/extensions``)."""
        return self.opt_dir is not None and (self.opt_dir / "extensions").is_dir()

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        runtime: Runtime,
        code_dir: Path,
        opt_dir: Path | None = None,
    ) -> FunctionImage:
        return cls(
            pool_key=pool_key(config),
            function_name=config["FunctionName"],
            version=config["Version"],
            function_arn=config["FunctionArn"],
            runtime=runtime,
            handler=config.get("Handler") or "",
            memory_mb=int(config["MemorySize"]),
            timeout_s=int(config["Timeout"]),
            tmp_mb=int(config["EphemeralStorage"]["Size"]),
            code_dir=code_dir,
            log_group=config["LoggingConfig"]["LogGroup"],
            variables=dict((config.get("Environment") or {}).get("Variables") or {}),
            log_format=config["LoggingConfig"].get("LogFormat", "Text"),
            log_level=config["LoggingConfig"].get("ApplicationLogLevel"),
            opt_dir=opt_dir,
            system_log_level=config["LoggingConfig"].get("SystemLogLevel"),
            tracing_active=(config.get("TracingConfig") or {}).get("Mode") == "Active",
            snapstart=(config.get("SnapStart") or {}).get("OptimizationStatus") == "On",
        )
