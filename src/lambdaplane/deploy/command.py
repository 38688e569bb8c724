"""``lambdaplane deploy-alias``: wire a Deployment to the Lambda API, the metrics and the terminal.

The alias is moved with the standard Lambda API (GetAlias, UpdateAlias with RoutingConfig
and RevisionId) through botocore, so the command works against any lambdaplane server it
has credentials for. Credentials are botocore's usual chain (environment, profiles), minus
instance metadata (never right for lambdaplane); failing that, the root key in the data
directory's credentials.json, which a local ``lambdaplane serve`` created.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from lambdaplane import clients
from lambdaplane.deploy.deployment import (
    AliasChanged,
    AliasError,
    AliasState,
    Deployment,
    Phase,
    Progress,
    Result,
)
from lambdaplane.deploy.health import Tally, Thresholds, read_invocations
from lambdaplane.deploy.strategy import Strategy, format_duration, plan

__all__ = ["EXIT_CODES", "DeployOptions", "LambdaAlias", "run"]

EXIT_CODES = {Phase.PROMOTED: 0, Phase.ROLLED_BACK: 1, Phase.ABORTED: 2}


@dataclass(frozen=True)
class DeployOptions:
    function: str
    alias: str
    version: str
    strategy: Strategy
    thresholds: Thresholds
    endpoint: str
    region: str | None
    poll: float
    data_dir: Path


class LambdaAlias:
    """An alias of a function behind a botocore Lambda client (an ``AliasTarget``)."""

    def __init__(self, client: Any, function: str, alias: str) -> None:
        self._client = client
        self._function = function
        self._alias = alias

    def get(self) -> AliasState:
        response = self._call("GetAlias", FunctionName=self._function, Name=self._alias)
        weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        # arn:aws:lambda:<region>:<account>:function:<name>:<alias>; metrics use the name.
        arn_parts = str(response.get("AliasArn", "")).split(":")
        name = arn_parts[6] if len(arn_parts) >= 8 else self._function
        return AliasState(
            name,
            str(response["FunctionVersion"]),
            {str(v): float(w) for v, w in weights.items()},
            str(response.get("RevisionId", "")),
        )

    def route(self, version: str, weights: dict[str, float], revision_id: str) -> str:
        response = self._call(
            "UpdateAlias",
            FunctionName=self._function,
            Name=self._alias,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights},
            RevisionId=revision_id,
        )
        return str(response.get("RevisionId", ""))

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self._client, "get_alias" if operation == "GetAlias" else "update_alias")
        try:
            response: dict[str, Any] = method(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Error"), error.get("Message", "")
            if code == "PreconditionFailedException":
                raise AliasChanged(f"{operation}: {message}") from exc
            raise AliasError(f"{operation}: {code}: {message}") from exc
        except BotoCoreError as exc:
            raise AliasError(f"{operation}: {exc}") from exc
        return response


def credentials(session: Any, data_dir: Path) -> tuple[str, str, str | None]:
    """(key id, secret, session token); raises AliasError when there are none."""
    try:
        return clients.credentials(session, data_dir)
    except clients.NoCredentials as exc:
        raise AliasError(str(exc)) from exc


def lambda_client(endpoint: str, region: str | None, data_dir: Path) -> Any:
    """A botocore Lambda client for ``endpoint``; raises AliasError without credentials.

    No retries: a retried UpdateAlias that had been applied would fail its own RevisionId
    precondition and read as someone else's change.
    """
    try:
        return clients.client("lambda", endpoint, region, data_dir, retries=0)
    except clients.NoCredentials as exc:
        raise AliasError(str(exc)) from exc


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops a deployment like Ctrl-C does: with a rollback."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(options: DeployOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Deploy; 0 promoted, 1 rolled back, 2 refused or failed (the reason on ``err``)."""
    steps = plan(options.strategy)
    target = f"{options.function}:{options.alias}"

    def say(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')}  {text}", file=out, flush=True)

    def report(progress: Progress) -> None:
        if progress.step:
            say(f"step {progress.step}/{progress.steps}  {progress.message}")
        else:
            say(f"          {progress.message}")

    try:
        # The metrics are read with a SigV4 signature too, as a server off loopback wants.
        import botocore.session

        signing = credentials(botocore.session.get_session(), options.data_dir)
        client = lambda_client(options.endpoint, options.region, options.data_dir)
    except AliasError as exc:
        print(f"lambdaplane deploy-alias: {exc}", file=err)
        return 2
    try:
        watch = (
            f"Rolls back if more than {options.thresholds.max_error_rate:.1%} of at least "
            f"{options.thresholds.min_invocations} invocations of version {options.version} "
            f"fail (read every {format_duration(options.poll)} from {options.endpoint})."
            if len(steps) > 1
            else "No traffic is split, so nothing is watched."
        )
        print(
            f"Deploying {target} to version {options.version}: {options.strategy.describe()}.",
            watch,
            sep="\n",
            file=out,
            flush=True,
        )

        def read_counts(function_name: str, version: str) -> Tally:
            counts = read_invocations(
                options.endpoint,
                function_name,
                credentials=signing,
                region=client.meta.region_name,
            )
            return counts.get(version, Tally())

        deployment = Deployment(
            LambdaAlias(client, options.function, options.alias),
            options.version,
            steps,
            options.thresholds,
            read_counts=read_counts,
            clock=time.monotonic,
            sleep=time.sleep,
            poll=options.poll,
            report=report,
        )
        with _sigterm_interrupts():
            try:
                result = deployment.run()
            except KeyboardInterrupt:  # only raised before the alias was changed
                result = Result(Phase.ABORTED, "interrupted; the alias was not changed")
    finally:
        client.close()
    if result.phase is Phase.PROMOTED:
        seen = result.observed
        watched = len(steps) > 1 and deployment.old_version != options.version
        say(
            f"done: {target}: {result.reason}"
            + (
                f" (version {options.version}: {seen.invocations} invocations, "
                f"{seen.error} errors during the deployment)"
                if watched
                else ""
            )
        )
    elif result.phase is Phase.ROLLED_BACK:
        print(f"lambdaplane deploy-alias: rolled back {target}: {result.reason}", file=err)
    else:
        print(f"lambdaplane deploy-alias: {target}: {result.reason}", file=err)
    return EXIT_CODES[result.phase]
