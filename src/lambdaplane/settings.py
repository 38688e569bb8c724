"""The one settings object, built from flags and environment once, then passed down.

Nothing below the app factory reads the environment or flags: it receives a
``Settings`` (or the part of it it needs) explicitly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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

    def __post_init__(self) -> None:
        if not _ACCOUNT_ID.fullmatch(self.account_id):
            raise SettingsError(f"--account-id must be 12 digits, got {self.account_id!r}")
        if not _REGION.fullmatch(self.region):
            raise SettingsError(f"--region is not a valid AWS region name: {self.region!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"--port must be 0-65535, got {self.port}")

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

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


def data_dir_default(environ: Mapping[str, str]) -> Path:
    """``$LAMBDAPLANE_DATA_DIR`` or ``./.lambdaplane``."""
    return Path(environ.get("LAMBDAPLANE_DATA_DIR") or ".lambdaplane")


def from_environ(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from environment defaults, with explicit (flag) overrides winning."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {"data_dir": data_dir_default(env)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["data_dir"] = Path(str(values["data_dir"])).absolute()
    return Settings(**values)  # type: ignore[arg-type]
