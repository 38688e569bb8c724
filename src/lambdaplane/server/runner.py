"""Run the app under uvicorn until SIGTERM or SIGINT, printing how to reach it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import TextIO

import uvicorn

from lambdaplane.server.app import Components, LambdaplaneApp, build
from lambdaplane.settings import Settings
from lambdaplane.urls.server import UrlListener

log = logging.getLogger("lambdaplane")


def banner(settings: Settings, access_key: str, secret_key: str, created: bool, port: int) -> str:
    endpoint = settings.endpoint_url(port)
    lines = [
        f"lambdaplane is ready at {endpoint}",
        f"  region {settings.region}, account {settings.account_id}, data in {settings.data_dir}",
        "",
        "  Credentials" + (" (created now, kept in credentials.json)" if created else "") + ":",
        f"    export AWS_ACCESS_KEY_ID={access_key}",
        f"    export AWS_SECRET_ACCESS_KEY={secret_key}",
        f"    export AWS_DEFAULT_REGION={settings.region}",
        "",
        f"  aws lambda list-functions --endpoint-url {endpoint}",
        f"  boto3.client('lambda', endpoint_url='{endpoint}')",
        "",
        f"  Prometheus metrics: {endpoint}/metrics ({_metrics_access(settings)})",
    ]
    if settings.insecure_any_credentials:
        lines.append("")
        lines.append("  --insecure-any-credentials: any well-formed signature is accepted.")
    return "\n".join(lines)


def _metrics_access(settings: Settings) -> str:
    mode = settings.metrics_access
    if mode == "token":
        return f"bearer token in {settings.metrics_token_path}, or SigV4"
    if mode == "sigv4":
        return "SigV4-signed requests only; --metrics-auth token for Prometheus"
    return "no authentication"


def insecure_warning(settings: Settings) -> str | None:
    if settings.insecure_any_credentials and not settings.is_loopback:
        return (
            "WARNING: --insecure-any-credentials on a non-loopback address "
            f"({settings.host}): ANYONE who can reach this port can manage your functions."
        )
    return None


class _Server(uvicorn.Server):
    """uvicorn's server, with our own signal handling.

    uvicorn re-raises a captured SIGTERM after shutting down, which makes the process
    die by the signal; we want a clean exit status 0 after a graceful stop instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _install_signal_handlers(server: uvicorn.Server, *others: uvicorn.Server) -> None:
    loop = asyncio.get_running_loop()

    first: list[float] = []

    def stop() -> None:
        # A second signal a while after the first stops waiting for open connections. Two
        # arriving together (a supervisor forwarding the one its child also got, as
        # `timeout` does) still mean one graceful stop, which runs the cleanups.
        if server.should_exit and first and loop.time() - first[0] > 1.0:
            server.force_exit = True
        if not first:
            first.append(loop.time())
        server.should_exit = True
        for other in others:
            other.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


async def serve(settings: Settings, out: TextIO = sys.stdout) -> None:
    components = build(settings)
    app = LambdaplaneApp(components)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    url_server = _url_server(settings, components)
    _install_signal_handlers(server, *([url_server] if url_server else []))
    warning = insecure_warning(settings)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    url_task = asyncio.create_task(url_server.serve()) if url_server and server.started else None
    while url_server and url_task and not url_server.started and not url_task.done():
        await asyncio.sleep(0.01)
    if server.started:
        port = settings.port
        for srv in server.servers:
            for sock in srv.sockets:
                port = sock.getsockname()[1]
        key = components.keys.root_key
        print(
            banner(
                settings, key.access_key_id, key.secret_access_key, components.keys.created, port
            ),
            file=out,
            flush=True,
        )
        if warning:
            print(warning, file=sys.stderr, flush=True)
    await task
    if url_task is not None and url_server is not None:
        url_server.should_exit = True
        await url_task
    if not server.started:
        raise SystemExit(1)


def _url_server(settings: Settings, components: Components) -> uvicorn.Server | None:
    """The dedicated function URL listener (``--url-port``), if asked for."""
    if settings.url_port is None or components.urls is None:
        return None
    config = uvicorn.Config(
        UrlListener(components.urls),
        host=settings.host,
        port=settings.url_port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    return _Server(config)


def run(settings: Settings) -> None:
    """Serve until a signal arrives; uvicorn turns SIGTERM/SIGINT into a graceful stop."""
    import uvloop

    from lambdaplane.invoke.mounts import enter_private_namespace

    enter_private_namespace()
    uvloop.run(serve(settings))
