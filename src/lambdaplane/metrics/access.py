"""Who may read the metrics: nobody is asked on loopback; elsewhere a signature or a token.

Modes (``--metrics-auth``):

- ``none``: anyone who reaches the port (the default on a loopback address);
- ``sigv4``: a request signed with one of the server's access keys, as any Lambda API
  request is (the default on any other address; ``lambdaplane deploy-alias`` signs);
- ``token``: ``Authorization: Bearer <token>`` with the token in the data directory's
  ``metrics-token`` file (or ``--metrics-token-file``), for scrapers that cannot sign,
  such as Prometheus (``authorization: {credentials_file: …}``); a SigV4 signature is
  accepted too.

``MetricsAccess.check`` is pure but for the injected clock: it returns None when the
request may read the metrics, else the refusal to send.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lambdaplane.auth.sigv4 import KeyLookup, SignedRequest, body_sha256, verify
from lambdaplane.errors import LambdaError

__all__ = ["MODES", "TOKEN_FILE", "MetricsAccess", "Refusal", "open_token"]

MODES = ("none", "sigv4", "token")
TOKEN_FILE = "metrics-token"


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    challenge: str | None = None  # a WWW-Authenticate header value


class MetricsAccess:
    def __init__(
        self,
        mode: str,
        *,
        keys: KeyLookup,
        region: str,
        token: str | None = None,
        any_credentials: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"metrics auth must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == "token" and not token:
            raise ValueError("metrics auth 'token' needs a token")
        self.mode = mode
        self._keys = keys
        self._region = region
        self._token = token
        self._any_credentials = any_credentials
        self._clock = clock

    def check(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str]
    ) -> Refusal | None:
        """None when the request may read the metrics; ``headers`` have lower-case names."""
        if self.mode == "none":
            return None
        authorization = headers.get("authorization", "")
        if self.mode == "token" and authorization[:7].lower() == "bearer ":
            assert self._token is not None
            given = authorization[7:].strip().encode()
            if hmac.compare_digest(given, self._token.encode()):
                return None
            return Refusal(403, "The bearer token is not the metrics token.")
        signed = authorization.startswith("AWS4-") or "X-Amz-Signature=" in raw_query
        if not signed:
            return Refusal(
                401,
                "The metrics need a SigV4 signature"
                + (" or a bearer token." if self.mode == "token" else "."),
                'Bearer realm="lambdaplane metrics"' if self.mode == "token" else None,
            )
        try:
            verify(
                SignedRequest(method, raw_path, raw_query, headers, body_sha256(b"")),
                self._keys,
                self._clock(),
                region=self._region,
                any_credentials=self._any_credentials,
            )
        except LambdaError as err:
            return Refusal(403, err.message or err.code)
        return None


def open_token(path: Path) -> str:
    """The token in ``path``; a new random one is written there (mode 0600) if it is missing."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token
    if not token:
        raise ValueError(f"the metrics token file {path} is empty")
    return token
