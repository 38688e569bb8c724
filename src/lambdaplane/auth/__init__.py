"""Authentication: SigV4 request verification and the store of access keys."""

from lambdaplane.auth.keys import (
    AccessKey,
    ForeignKey,
    Identity,
    KeyStore,
    KeyStoreError,
    new_access_key,
)
from lambdaplane.auth.sigv4 import (
    DEFAULT_SERVICES,
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    KeyLookup,
    SignedRequest,
    body_sha256,
    verify,
)

__all__ = [
    "DEFAULT_SERVICES",
    "EMPTY_SHA256",
    "UNSIGNED_PAYLOAD",
    "AccessKey",
    "ForeignKey",
    "Identity",
    "KeyLookup",
    "KeyStore",
    "KeyStoreError",
    "SignedRequest",
    "body_sha256",
    "new_access_key",
    "verify",
]
