"""How pollers reach their sources: per-service endpoints, botocore clients, credentials.

- Endpoints come from configuration, one per service (``--sqs-endpoint``,
  ``--kinesis-endpoint``, ``--dynamodbstreams-endpoint`` ...): real AWS or any
  compatible server. Every source of a service goes to that one endpoint.
- Clients carry explicit dummy credentials, so botocore never searches the
  environment, a profile or instance metadata.
- Broker credentials (Secrets Manager on AWS) come from ``--esm-secret ARN=user:password``
  or ``<data-dir>/esm-secrets.json`` (``{"<secret arn>": {"username": ..., "password":
  ...}}``, or the secret string itself as a JSON string).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdaplane.esm.poller import SourceUnavailable

log = logging.getLogger("lambdaplane.esm")

DUMMY_CREDENTIALS = ("lambdaplane", "lambdaplane")
SECRETS_FILE = "esm-secrets.json"
_NO_PROFILE = {"profile": (None, None, None, None)}


class SourceClients:
    """botocore clients per service, made on first use, shared by every poller.

    ``endpoints`` maps a botocore service name to its URL. Thread-safe; ``close()``
    closes every client's connection pool.
    """

    def __init__(
        self,
        endpoints: Mapping[str, str],
        region: str,
        *,
        credentials: tuple[str, str] = DUMMY_CREDENTIALS,
        read_timeout: float = 30.0,  # longer than a 20-second long poll
        max_pool_connections: int = 50,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._region = region
        self._credentials = credentials
        self._config = Config(
            connect_timeout=2.0,
            read_timeout=read_timeout,
            retries={"max_attempts": 2},
            max_pool_connections=max_pool_connections,
        )
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    def endpoint(self, service: str) -> str | None:
        return self._endpoints.get(service)

    def client(self, service: str) -> Any:
        """The client for ``service``; SourceUnavailable when it has no endpoint."""
        endpoint = self._endpoints.get(service)
        if endpoint is None:
            raise SourceUnavailable(f"no {service} endpoint is configured")
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                if self._session is None:
                    self._session = botocore.session.Session(session_vars=_NO_PROFILE)
                key, secret = self._credentials
                client = self._session.create_client(
                    service,
                    endpoint_url=endpoint,
                    region_name=self._region,
                    aws_access_key_id=key,
                    aws_secret_access_key=secret,
                    config=self._config,
                )
                self._clients[service] = client
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()


def load_secrets(pairs: Iterable[tuple[str, str]], data_dir: Path) -> dict[str, dict[str, str]]:
    """Credentials per secret ARN: the data dir's ``esm-secrets.json``, then ``pairs``
    (``(arn, "user:password")``, from flags) over it."""
    secrets: dict[str, dict[str, str]] = {}
    path = data_dir / SECRETS_FILE
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except ValueError as err:
            log.warning("ignoring %s: not JSON (%s)", path, err)
            loaded = {}
        for arn, value in (loaded if isinstance(loaded, dict) else {}).items():
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            if isinstance(value, dict):
                secrets[str(arn)] = {str(k): str(v) for k, v in value.items()}
    for arn, text in pairs:
        user, _, password = text.partition(":")
        secrets[arn] = {"username": user, "password": password}
    return secrets


def source_problem(
    clients: SourceClients, kind: str, arn: str, function_timeout: int
) -> str | None:
    """AWS's message when the source ``arn`` does not exist (or, for SQS, when its
    visibility timeout is shorter than the function's timeout); None when it is fine,
    or cannot be checked (no endpoint for its service, endpoint down: the poller will
    say so in LastProcessingResult)."""
    try:
        if kind == "sqs":
            _, _, account, name = _arn_parts(arn)
            if clients.endpoint("sqs") is None:
                return None
            sqs = clients.client("sqs")
            try:
                url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
                answer = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["VisibilityTimeout"]
                )
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code", "")
                if "NonExistentQueue" in code or code == "QueueDoesNotExist":
                    return (
                        "Error occurred while ReceiveMessage. SQS Error Code: "
                        "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: "
                        "The specified queue does not exist."
                    )
                raise
            visibility = int(answer.get("Attributes", {}).get("VisibilityTimeout", 30))
            if visibility < function_timeout:
                return (
                    f"Queue visibility timeout: {visibility} seconds is less than Function "
                    f"timeout: {function_timeout} seconds"
                )
        elif kind == "kinesis":
            if clients.endpoint("kinesis") is None:
                return None
            name = arn.rpartition(":stream/")[2]
            try:
                clients.client("kinesis").describe_stream_summary(StreamName=name)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return f"Stream not found: {arn}"
                raise
        elif kind == "dynamodb":
            if clients.endpoint("dynamodbstreams") is None:
                return None
            try:
                clients.client("dynamodbstreams").describe_stream(StreamArn=arn, Limit=1)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return f"Stream not found: {arn}"
                raise
    except (BotoCoreError, ClientError, SourceUnavailable) as err:
        log.warning("could not check that %s exists: %s", arn, err)
    return None


def _arn_parts(arn: str) -> tuple[str, str, str, str]:
    """(service, region, account, resource) of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        raise ValueError(f"not an ARN: {arn}")
    return parts[2], parts[3], parts[4], parts[5]
