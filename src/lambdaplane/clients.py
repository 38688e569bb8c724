"""botocore clients for lambdaplane's own commands (deploy-alias, logs).

Credentials are botocore's usual chain (environment, profiles) minus instance metadata,
which is never right for lambdaplane; failing that, the root key in the data directory's
credentials.json, which a local ``lambdaplane serve`` created.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from lambdaplane.auth.keys import CREDENTIALS_FILE, KeyStore, KeyStoreError


class NoCredentials(Exception):
    """Neither botocore's chain nor the data directory has a key."""


def credentials(session: Any, data_dir: Path) -> tuple[str, str, str | None]:
    """(key id, secret, session token) from ``session``'s chain, else the data dir's root key."""
    with contextlib.suppress(ValueError):  # not in this botocore's chain
        session.get_component("credential_provider").remove("iam-role")
    found = session.get_credentials()
    if found is not None:
        frozen = found.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token
    path = data_dir / CREDENTIALS_FILE
    if not path.is_file():
        raise NoCredentials(
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile), "
            f"or give the server's --data-dir (there is no {path})"
        )
    try:
        root = KeyStore.open(data_dir).root_key
    except KeyStoreError as exc:
        raise NoCredentials(f"no credentials: {exc}") from exc
    return root.access_key_id, root.secret_access_key, None


def client(
    service: str,
    endpoint: str,
    region: str | None,
    data_dir: Path,
    *,
    retries: int = 0,
    read_timeout: float = 30,
) -> Any:
    """A botocore client of ``service`` for ``endpoint``; raises NoCredentials."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    key_id, secret, token = credentials(session, data_dir)
    return session.create_client(
        service,
        region_name=region or session.get_config_variable("region") or "us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(
            connect_timeout=5, read_timeout=read_timeout, retries={"max_attempts": retries}
        ),
    )
