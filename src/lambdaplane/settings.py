"""The one settings object, built from flags and environment once, then passed down.

Nothing below the app factory reads the environment or flags: it receives a
``Settings`` (or the part of it it needs) explicitly.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

_ACCOUNT_ID = re.compile(r"\d{12}")
_REGION = re.compile(r"(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class SettingsError(ValueError):
    """A flag or environment variable has a value we cannot run with."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9000
    data_dir: Path = field(default_factory=lambda: Path(".lambdaplane"))
    region: str = "us-east-1"
    account_id: str = "000000000000"
    insecure_any_credentials: bool = False
    # How long a GetFunction Code.Location URL stays valid (AWS: 10 minutes).
    code_url_ttl_seconds: int = 600
    # Public base URL used in Code.Location; derived from host/port when empty.
    public_url: str = ""
    # Where `lambdaplane install-runtimes` put each runtime's /var/runtime tree.
    runtimes_dir: Path = field(default_factory=lambda: default_runtimes_dir())
    # Execution environments.
    keep_alive_seconds: float = 600.0  # idle environments are reaped after this
    account_concurrency: int = 1000  # concurrent executions, AWS's default account limit
    burst_limit: int = 1000  # new environments per function per 10 s (AWS's scaling rate)
    # A streamed response's rate after its first 6 MB, in MB (MiB) per second; 0: no cap.
    stream_bandwidth_mb: float = 2.0
    memory_share: float = (
        0.8  # the sum of live environments' MemorySize stays under this share of RAM
    )
    cpu_mode: Literal["shares", "quota"] = "shares"  # see docs/sandbox.md
    init_timeout_seconds: float = 10.0  # AWS's init phase limit
    max_parallel_cold_starts: int = 4  # sandbox creations in flight at once (2 cores)
    prewarm_per_kind: int = 2  # pre-initialised sandboxes kept per recently cold-started kind
    # Asynchronous invocation.
    async_workers: int = 4
    async_retry_delays: tuple[float, ...] = (60.0, 120.0)  # AWS: about 1 then 2 minutes
    async_throttle_backoff: tuple[float, float] = (1.0, 300.0)  # AWS: 1 s up to 5 minutes
    # Endpoints for SQS, SNS and EventBridge destinations and DLQs ("sqs" -> URL, …).
    destination_endpoints: tuple[tuple[str, str], ...] = ()
    # Event source mappings: endpoints of the source services besides SQS ("kinesis",
    # "dynamodbstreams", "dynamodb" -> URL), Amazon MQ brokers (ARN -> URL) and broker
    # credentials in place of Secrets Manager (secret ARN -> "user:password").
    esm_endpoints: tuple[tuple[str, str], ...] = ()
    mq_brokers: tuple[tuple[str, str], ...] = ()
    esm_secrets: tuple[tuple[str, str], ...] = ()
    # An OTLP/HTTP collector: a span per invocation goes to <otlp_endpoint>/v1/traces.
    otlp_endpoint: str = ""
    # Who may read /metrics: "none", "sigv4" or "token"; "" picks by address (none on
    # loopback, sigv4 elsewhere). The token is in <data-dir>/metrics-token unless given.
    metrics_auth: str = ""
    metrics_token_file: Path | None = None
    # Function URLs are served on the API port, and on this one too when set.
    url_port: int | None = None

    def __post_init__(self) -> None:
        if not _ACCOUNT_ID.fullmatch(self.account_id):
            raise SettingsError(f"--account-id must be 12 digits, got {self.account_id!r}")
        if not _REGION.fullmatch(self.region):
            raise SettingsError(f"--region is not a valid AWS region name: {self.region!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"--port must be 0-65535, got {self.port}")
        if self.url_port is not None and not 0 < self.url_port <= 65535:
            raise SettingsError(f"--url-port must be 1-65535, got {self.url_port}")
        if self.cpu_mode not in ("shares", "quota"):
            raise SettingsError(f"--cpu-mode must be shares or quota, got {self.cpu_mode!r}")
        if self.account_concurrency < 1:
            raise SettingsError(
                f"--account-concurrency must be at least 1, got {self.account_concurrency}"
            )
        if self.burst_limit < 1:
            raise SettingsError(f"--burst-limit must be at least 1, got {self.burst_limit}")
        if not self.stream_bandwidth_mb >= 0:
            raise SettingsError(
                f"--stream-bandwidth must be 0 (no cap) or more, got {self.stream_bandwidth_mb}"
            )
        if not 0 < self.memory_share <= 1:
            raise SettingsError(f"--memory-share must be in (0, 1], got {self.memory_share}")
        if self.metrics_auth not in ("", "none", "sigv4", "token"):
            raise SettingsError(
                f"--metrics-auth must be none, sigv4 or token, got {self.metrics_auth!r}"
            )
        if self.otlp_endpoint and not self.otlp_endpoint.startswith(("http://", "https://")):
            raise SettingsError(
                f"--otlp-endpoint must be an http:// or https:// URL, got {self.otlp_endpoint!r}"
            )

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def metrics_access(self) -> str:
        """How /metrics is protected: as asked, else none on loopback and sigv4 elsewhere."""
        return self.metrics_auth or ("none" if self.is_loopback else "sigv4")

    @property
    def metrics_token_path(self) -> Path:
        return self.metrics_token_file or self.data_dir / "metrics-token"

    @property
    def otlp_traces_url(self) -> str:
        """Where spans are posted (OTLP/HTTP's traces path under the endpoint); "" for none."""
        if not self.otlp_endpoint:
            return ""
        base = self.otlp_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else f"{base}/v1/traces"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'lambdaplane.db'}"

    def endpoint_url(self, port: int | None = None) -> str:
        """The URL clients use; ``port`` overrides when the server bound port 0."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port if port is None else port}"


def default_runtimes_dir() -> Path:
    """Runtimes live with the installation (the virtualenv), not with the data."""
    return Path(sys.prefix) / "share" / "lambdaplane" / "runtimes"


def data_dir_default(environ: Mapping[str, str]) -> Path:
    """``$LAMBDAPLANE_DATA_DIR`` or ``./.lambdaplane``."""
    return Path(environ.get("LAMBDAPLANE_DATA_DIR") or ".lambdaplane")


def from_environ(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from environment defaults, with explicit (flag) overrides winning."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {"data_dir": data_dir_default(env)}
    if env.get("LAMBDAPLANE_RUNTIMES_DIR"):
        values["runtimes_dir"] = Path(env["LAMBDAPLANE_RUNTIMES_DIR"])
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):  # OpenTelemetry's standard variable
        values["otlp_endpoint"] = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["data_dir"] = Path(str(values["data_dir"])).absolute()
    return Settings(**values)  # type: ignore[arg-type]
