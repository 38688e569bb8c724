"""Presigned, expiring download URLs for function code (GetFunction's Code.Location).

A URL names the content hash and an expiry, and carries an HMAC over both with a
key kept in the data directory; anyone holding the URL may download until it expires,
as with S3's presigned URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlencode

PATH_PREFIX = "/_lambdaplane/code/"


class CodeUrlSigner:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self._ttl = ttl_seconds

    @classmethod
    def open(cls, data_dir: Path, ttl_seconds: int) -> CodeUrlSigner:
        """Load the signing key from ``data_dir``, creating it (mode 0600) on first start."""
        path = data_dir / "url-signing.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            os.replace(tmp, path)
        return cls(bytes.fromhex(path.read_text().strip()), ttl_seconds)

    def _signature(self, sha256_hex: str, expires: int) -> str:
        return hmac.new(self._key, f"{sha256_hex}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, sha256_hex: str, now: float) -> str:
        expires = int(now) + self._ttl
        query = urlencode({"Expires": expires, "Signature": self._signature(sha256_hex, expires)})
        return f"{base_url}{PATH_PREFIX}{sha256_hex}.zip?{query}"

    def check(self, sha256_hex: str, expires: str, signature: str, now: float) -> str | None:
        """None when the URL is valid now, else the reason (S3-style) it is refused."""
        try:
            expiry = int(expires)
        except ValueError:
            return "Query-string authentication requires the Signature and Expires parameters"
        if not hmac.compare_digest(self._signature(sha256_hex, expiry), signature):
            return "The request signature we calculated does not match the signature you provided."
        if now > expiry:
            return "Request has expired"
        return None
