"""The ASGI application and its factory: the one place where everything is wired.

A request to the Lambda API goes: route (method + path from the model) → size limit →
read body → SigV4 → parse + validate into a typed dict → handler → serialise. Any
``LambdaError`` on the way is rendered once, by ``render_error``. Plain ASGI, no
framework: this path is the control plane's whole latency budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import lambdaplane.agent
from lambdaplane import ids
from lambdaplane.api.edge_rules import LAYER_VERSION_ARN_PATTERN, per_operation
from lambdaplane.api.model import load_service_model
from lambdaplane.api.protocol import parse_request, render_error, serialize_response, validate
from lambdaplane.api.routing import Router
from lambdaplane.asgi import Receive, Send, read_body
from lambdaplane.asgi import Scope as Scope_
from lambdaplane.asyncinvoke.destinations import DestinationRouter
from lambdaplane.asyncinvoke.queue import AsyncQueue
from lambdaplane.asyncinvoke.workers import AsyncDelivery, DeliverySettings
from lambdaplane.auth import KeyStore, SignedRequest, verify
from lambdaplane.auth.keys import Identity
from lambdaplane.code import CodeStore
from lambdaplane.code.layers import LayerTrees
from lambdaplane.errors import (
    AccessDeniedException,
    LambdaError,
    NotImplementedYet,
    RequestEntityTooLargeException,
)
from lambdaplane.esm.access import SourceClients, load_secrets, source_problem
from lambdaplane.esm.manager import EsmManager
from lambdaplane.esm.metrics import EsmMetrics
from lambdaplane.handlers import HANDLERS, RequestContext, Services
from lambdaplane.invoke.burst import BurstLimiter
from lambdaplane.invoke.environment import AgentLaunch
from lambdaplane.invoke.logsink import LogSink
from lambdaplane.invoke.mounts import Mounts
from lambdaplane.invoke.otlp import SpanExport
from lambdaplane.invoke.pools import EnvironmentPools
from lambdaplane.invoke.prewarm import Prewarmer
from lambdaplane.invoke.provisioned import Provisioner
from lambdaplane.invoke.scheduler import Limits
from lambdaplane.invoke.service import InvokeService
from lambdaplane.invoke.snapstart import SnapStarts
from lambdaplane.logsapi.retention import RetentionSweeper
from lambdaplane.logsapi.server import LogsApi, logs_target
from lambdaplane.logsapi.service import LogsService
from lambdaplane.metrics import LambdaMetrics
from lambdaplane.metrics.access import MetricsAccess, open_token
from lambdaplane.sandbox import BubblewrapSandbox, CpuPolicy
from lambdaplane.server.background import Settler
from lambdaplane.service.aliases import AliasService
from lambdaplane.service.code_urls import PATH_PREFIX, CodeUrlSigner
from lambdaplane.service.concurrency import ConcurrencyService
from lambdaplane.service.event_configs import EventInvokeConfigService
from lambdaplane.service.event_source_mappings import EventSourceMappingService
from lambdaplane.service.functions import FunctionService
from lambdaplane.service.layers import LayerService
from lambdaplane.service.names import Scope
from lambdaplane.service.permissions import PermissionService
from lambdaplane.service.provisioned import ProvisionedConcurrencyService
from lambdaplane.service.runtimes import Runtime, RuntimeCatalog, discover
from lambdaplane.service.tagging import TagService
from lambdaplane.service.url_configs import UrlConfigService
from lambdaplane.settings import Settings
from lambdaplane.store import (
    AliasRepository,
    FunctionRepository,
    TagRepository,
    open_engine,
    upgrade,
)
from lambdaplane.store.concurrency import ConcurrencyRepository
from lambdaplane.store.event_configs import EventInvokeConfigRepository
from lambdaplane.store.event_source_mappings import EventSourceMappingRepository
from lambdaplane.store.layers import LayerRepository
from lambdaplane.store.log_groups import LogGroupRepository
from lambdaplane.store.logs import LogRepository
from lambdaplane.store.policies import PolicyRepository
from lambdaplane.store.provisioned import ProvisionedConfigRepository
from lambdaplane.store.url_configs import UrlConfigRepository
from lambdaplane.store.usage import UsageRepository
from lambdaplane.urls.server import FunctionUrls, url_target
from lambdaplane.usage.recorder import UsageRecorder

log = logging.getLogger("lambdaplane")

HEALTH_PATH = "/_lambdaplane/health"
ECHO_PATH = "/_lambdaplane/echo"
METRICS_PATH = "/metrics"
LEGACY_METRICS_PATH = "/_lambdaplane/metrics"  # the first name of the same exposition
_PROMETHEUS = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
# AWS's front door refuses bodies over this many bytes (base64 of a 50 MB zip plus JSON).
MAX_REQUEST_BYTES = 70_167_211
# Lambda's service-side limits, where botocore's newer model allows more.
CONSTRAINT_OVERRIDES: dict[str, dict[str, Any]] = {
    "MemorySize": {"max": 10240},
    "Timeout": {"max": 900},
    "EphemeralStorageSize": {"max": 10240},
    # AWS prints the layer version ARN pattern without the model's outer parentheses.
    "LayerVersionArn": {"pattern": LAYER_VERSION_ARN_PATTERN},
}
SERVICE_CHECKED_ENUMS = frozenset({"Runtime"})
OPERATION_RULES = per_operation(CONSTRAINT_OVERRIDES, SERVICE_CHECKED_ENUMS)
_JSON = [(b"content-type", b"application/json")]
LAMBDA_SERVICE = frozenset({"lambda"})  # the SigV4 scope of Lambda requests
# What another account's key may call, each when the function's policy allows it.
FOREIGN_INVOKES = frozenset({"Invoke", "InvokeAsync", "InvokeWithResponseStream"})


@dataclass
class Components:
    """What ``build`` wires; the app and the CLI use it, tests may inspect it."""

    settings: Settings
    services: Services
    keys: KeyStore
    router: Router
    settler: Settler
    code: CodeStore
    runtimes: RuntimeCatalog
    pools: EnvironmentPools
    sink: LogSink
    logs: LogRepository
    delivery: AsyncDelivery
    queue: AsyncQueue
    metrics: LambdaMetrics
    usage: UsageRecorder
    metrics_access: MetricsAccess
    spans: SpanExport | None = None  # OTLP export of invocations, when configured
    logs_api: LogsApi | None = None  # the CloudWatch Logs API on the same endpoint
    retention: RetentionSweeper | None = None
    esm: EsmManager | None = None  # the event source mappings' pollers
    urls: FunctionUrls | None = None  # the function URLs' front door
    provisioner: Provisioner | None = None  # keeps provisioned concurrency's environments


def build(settings: Settings, runtimes: RuntimeCatalog | None = None) -> Components:
    """Open the store (migrating it), the key store and the code store; wire the services."""
    # The store holds environment variables, which often carry secrets: owner only.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = open_engine(settings.database_url)
    upgrade(engine)
    keys = KeyStore.open(settings.data_dir, account_id=settings.account_id)
    code = CodeStore(settings.data_dir / "code")
    scope = Scope(region=settings.region, account_id=settings.account_id)
    functions_repo = FunctionRepository(engine, settings.account_id, settings.region)
    tags_repo = TagRepository(engine)
    catalog = runtimes or discover(runtimes_dir=settings.runtimes_dir)
    settler = Settler()
    layers = LayerService(
        scope,
        LayerRepository(engine, settings.account_id, settings.region),
        code,
        LayerTrees(settings.data_dir / "code" / "opt", code.unpacked),
    )
    aliases_repo = AliasRepository(engine, settings.account_id, settings.region)
    provisioned_repo = ProvisionedConfigRepository(engine, settings.account_id, settings.region)
    concurrency = ConcurrencyService(
        scope,
        functions_repo,
        ConcurrencyRepository(engine, settings.account_id, settings.region),
        settings.account_concurrency,
        provisioned_total=lambda name: provisioned_repo.totals().get(name, 0),
    )
    functions = FunctionService(
        scope,
        functions_repo,
        tags_repo,
        code,
        catalog,
        settler.schedule,
        aliases=aliases_repo,
        layers=layers,
        concurrency=concurrency,
    )
    settler.bind(functions.settle)
    logs = LogRepository(engine)
    sink = LogSink(logs)
    sandbox = BubblewrapSandbox()
    mounts = Mounts.open(settings.data_dir / "mounts") if settings.prewarm_per_kind > 0 else None
    prewarmer = (
        Prewarmer(
            sandbox=sandbox,
            mounts=mounts,
            agent_dir=AGENT_DIR,
            cpu=CpuPolicy(settings.cpu_mode),
            per_key=settings.prewarm_per_kind,
            max_idle=settings.keep_alive_seconds,
        )
        if mounts is not None
        else None
    )
    pools = EnvironmentPools(
        sandbox=sandbox,
        agent=AgentLaunch(AGENT_DIR, _agent_interpreter(catalog)),
        sink=sink,
        region=settings.region,
        limits=Limits(
            account_concurrency=settings.account_concurrency,
            memory_budget_mb=int(_host_memory_mb() * settings.memory_share),
        ),
        keep_alive=settings.keep_alive_seconds,
        init_timeout=settings.init_timeout_seconds,
        cpu=CpuPolicy(settings.cpu_mode),
        max_parallel_starts=settings.max_parallel_cold_starts,
        prewarmer=prewarmer,
        reservations=concurrency.current,
        burst=BurstLimiter(settings.burst_limit),
    )
    if os.geteuid() == 0:  # SnapStart templates need mounts and an unprivileged uid
        pools.snapstarts = SnapStarts(
            sandbox=sandbox,
            agent_dir=AGENT_DIR,
            region=settings.region,
            sink=sink,
            cpu=CpuPolicy(settings.cpu_mode),
            exists=lambda name, version: functions_repo.get(name, version) is not None,
        )
    metrics = LambdaMetrics()
    usage = UsageRecorder(UsageRepository(engine, settings.account_id, settings.region))
    spans = (
        SpanExport(
            settings.otlp_traces_url,
            {
                "service.name": "lambdaplane",
                "cloud.provider": "lambdaplane",
                "cloud.region": settings.region,
                "cloud.account.id": settings.account_id,
            },
        )
        if settings.otlp_traces_url
        else None
    )
    invoke = InvokeService(
        functions,
        pools,
        catalog,
        code.unpacked,
        metrics,
        opt_dir=layers.opt_dir,
        spans=spans,
        usage=usage,
        stream_rate=settings.stream_bandwidth_mb * (1 << 20),
    )
    if pools.snapstarts is not None:  # publishing a SnapStart version makes its snapshot
        functions.snapshotter = pools.snapstarts.snapshotter(invoke.image, functions.snapshot_done)
    provisioner = Provisioner(pools, lambda: provisioned.targets(), invoke.image)
    provisioned = ProvisionedConcurrencyService(
        scope, functions_repo, aliases_repo, provisioned_repo, provisioner, concurrency
    )
    event_configs = EventInvokeConfigService(
        scope,
        functions_repo,
        EventInvokeConfigRepository(engine, settings.account_id, settings.region),
        aliases_repo,
    )
    queue = AsyncQueue(engine, settings.account_id, settings.region)

    def enqueue(
        name: str, qualifier: str, request_id: str, payload: bytes, trace_header: str | None
    ) -> None:
        queue.enqueue(name, qualifier, request_id, payload, time.time(), trace_header)
        metrics.event_received(name, qualifier)
        delivery.notify()

    async def invoke_async(function_arn: str, payload: bytes) -> None:
        ref = scope.parse(function_arn)
        await asyncio.to_thread(
            enqueue, ref.name, ref.qualifier or "$LATEST", ids.request_id(), payload, None
        )

    async def recorded() -> None:
        """An async event's logs and usage are stored before the event is deleted."""
        await sink.flush()
        await usage.flush()

    router = DestinationRouter(
        endpoints=dict(settings.destination_endpoints),
        region=settings.region,
        invoke_async=invoke_async,
    )
    delivery = AsyncDelivery(
        queue=queue,
        invoke=invoke,
        configs=event_configs,
        router=router,
        settings=DeliverySettings(
            workers=settings.async_workers,
            retry_delays=settings.async_retry_delays,
            throttle_backoff=settings.async_throttle_backoff,
        ),
        recorded=recorded,
        metrics=metrics,
    )
    invoke.accept_events_with(enqueue)
    esm_repo = EventSourceMappingRepository(engine, settings.account_id, settings.region)
    source_endpoints = dict(settings.esm_endpoints)
    if "sqs" in dict(settings.destination_endpoints):  # --sqs-endpoint serves both
        source_endpoints["sqs"] = dict(settings.destination_endpoints)["sqs"]
    if "sns" in dict(settings.destination_endpoints):
        source_endpoints["sns"] = dict(settings.destination_endpoints)["sns"]
    source_clients = SourceClients(source_endpoints, settings.region)
    esm = EsmManager(
        repo=esm_repo,
        invoke=invoke,
        clients=source_clients,
        metrics=EsmMetrics(metrics.registry),
        region=settings.region,
        account_id=settings.account_id,
        deliver=router.deliver,
        secrets=load_secrets(settings.esm_secrets, settings.data_dir),
        brokers=dict(settings.mq_brokers),
        forget=tags_repo.drop,
    )
    esm_service = EventSourceMappingService(
        scope,
        functions,
        esm_repo,
        tags_repo,
        notify=esm.notify,
        source_problem=lambda kind, arn, timeout: source_problem(
            source_clients, kind, arn, timeout
        ),
        brokers=dict(settings.mq_brokers),
    )
    services = Services(
        functions=functions,
        tags=TagService(scope, functions_repo, tags_repo, esm_service.exists),
        aliases=AliasService(scope, functions_repo, aliases_repo, functions),
        invoke=invoke,
        event_configs=event_configs,
        layers=layers,
        code_urls=CodeUrlSigner.open(settings.data_dir, settings.code_url_ttl_seconds),
        clock=time.time,
        event_source_mappings=esm_service,
        permissions=PermissionService(
            scope,
            functions_repo,
            aliases_repo,
            PolicyRepository(engine, settings.account_id, settings.region),
            alias_changed=functions.alias_changed,
        ),
        url_configs=UrlConfigService(
            scope,
            functions_repo,
            aliases_repo,
            UrlConfigRepository(engine, settings.account_id, settings.region),
            url_for=function_url_template(settings),
        ),
        concurrency=concurrency,
        provisioned=provisioned,
    )
    api_router = Router(load_service_model())
    log_groups = LogGroupRepository(engine)
    retention = RetentionSweeper(log_groups, time.time)
    logs_api = LogsApi(
        LogsService(
            log_groups,
            region=settings.region,
            account_id=settings.account_id,
            clock=time.time,
            retention_changed=retention.nudge,
        ),
        keys.own_secret_for,  # foreign keys may invoke (by policy), nothing more
        region=settings.region,
        any_credentials=settings.insecure_any_credentials,
    )
    return Components(
        settings,
        services,
        keys,
        api_router,
        settler,
        code,
        catalog,
        pools,
        sink,
        logs,
        delivery,
        queue,
        metrics,
        usage,
        MetricsAccess(
            settings.metrics_access,
            keys=keys.own_secret_for,
            region=settings.region,
            token=(
                open_token(settings.metrics_token_path)
                if settings.metrics_access == "token"
                else None
            ),
            any_credentials=settings.insecure_any_credentials,
        ),
        spans=spans,
        logs_api=logs_api,
        retention=retention,
        esm=esm,
        urls=FunctionUrls(
            services.url_configs,
            invoke,
            keys,
            region=settings.region,
            account_id=settings.account_id,
            permissions=services.permissions,
            any_credentials=settings.insecure_any_credentials,
        )
        if services.url_configs is not None
        else None,
        provisioner=provisioner,
    )


AGENT_DIR = Path(lambdaplane.agent.__file__).parent


def function_url_template(settings: Settings) -> Callable[[str], str]:
    """url id -> ``http://<url-id>.lambda-url.<region>.localhost:<port>/`` (the URL port)."""
    port = settings.url_port or settings.port
    suffix = f".lambda-url.{settings.region}.localhost:{port}/"
    return lambda url_id: f"http://{url_id}{suffix}"


def _agent_interpreter(catalog: RuntimeCatalog) -> Runtime:
    """The agent runs on a Python the sandbox can see: this one's version if offered."""
    preferred = f"python{sys.version_info.major}.{sys.version_info.minor}"
    pythons = [catalog.get(i) for i in catalog.ids if i.startswith("python")]
    offered = [r for r in pythons if r is not None]
    for runtime in offered:
        if runtime.id == preferred:
            return runtime
    if offered:
        return offered[-1]
    return Runtime(preferred, os.path.realpath(sys.executable))


def _host_memory_mb() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1024 * 1024))


class LambdaplaneApp:
    """The ASGI callable."""

    def __init__(self, components: Components) -> None:
        self.c = components
        self._settings = components.settings
        self._ready = False

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.c.settler.start(self.c.services.functions.unsettled())
                    await self.c.sink.start()
                    await self.c.usage.start()
                    if self.c.retention is not None:
                        await self.c.retention.start()
                    await self.c.pools.start()
                    if self.c.provisioner is not None:
                        await self.c.provisioner.start()
                    await self.c.delivery.start()
                    if self.c.esm is not None:
                        await self.c.esm.start()
                except Exception as exc:  # Report, so uvicorn exits instead of hanging.
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                self._ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._ready = False
                if self.c.esm is not None:  # pollers invoke: stop them first
                    await self.c.esm.stop()
                await self.c.delivery.stop()
                if self.c.provisioner is not None:
                    await self.c.provisioner.stop()
                await self.c.pools.shutdown()
                if self.c.retention is not None:
                    await self.c.retention.stop()
                await self.c.sink.stop()
                await self.c.usage.stop()
                if self.c.spans is not None:
                    await asyncio.to_thread(self.c.spans.shutdown)
                await self.c.settler.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if self.c.urls is not None:
            target = url_target(scope)
            if target is not None:
                await self.c.urls.serve(scope, receive, send, target)
                return
        path: str = scope["path"]
        if path.startswith("/_lambdaplane/") or path == METRICS_PATH:
            await self._internal(scope, receive, send, path)
            return
        request_id = ids.request_id()
        operation = logs_target(scope["headers"]) if path == "/" else None
        if operation is not None and self.c.logs_api is not None:
            status, headers, logs_body = await self.c.logs_api.handle(
                scope, receive, operation, request_id
            )
            headers = [*headers, (b"x-amzn-requestid", request_id.encode())]
            await _respond(send, status, headers, logs_body)
            return
        body: bytes | AsyncIterator[bytes]
        try:
            status, headers, body = await self._api(scope, receive, request_id)
        except LambdaError as err:
            status, headers, body = render_error(err, request_id)
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            status, headers, body = render_error(LambdaError("Internal error"), request_id)
        headers = [*headers, (b"x-amzn-requestid", request_id.encode())]
        if isinstance(body, bytes):
            await _respond(send, status, headers, body)
        else:
            await _send_streamed(send, status, headers, body, request_id)

    async def _api(
        self, scope: Scope_, receive: Receive, request_id: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes | AsyncIterator[bytes]]:
        method: str = scope["method"]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        raw_path_str = raw_path.decode("latin-1")
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = parse_qs(raw_query, keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        operation, uri_params = self.c.router.match(method, raw_path_str, query)

        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
            raise _too_large(operation.name)
        body = await _read_body(receive, operation.name)

        access_key = verify(
            SignedRequest(
                method=method,
                raw_path=raw_path_str,
                raw_query=raw_query,
                headers=headers,
                body_sha256=hashlib.sha256(body).hexdigest(),
            ),
            self.c.keys.secret_for,
            datetime.now(UTC),
            region=self._settings.region,
            services=LAMBDA_SERVICE,
            any_credentials=self._settings.insecure_any_credentials,
        )

        params = parse_request(operation, uri_params, query, headers, body)
        overrides, skip_enum = OPERATION_RULES.get(
            operation.name, (CONSTRAINT_OVERRIDES, SERVICE_CHECKED_ENUMS)
        )
        validate(operation, params, overrides=overrides, skip_enum=skip_enum)
        caller = self.c.keys.identity_for(access_key)
        if caller is not None and caller.account_id != self._settings.account_id:
            self._authorize_foreign(operation.name, params, caller)
        handler = HANDLERS.get(operation.name)
        if handler is None:
            raise NotImplementedYet(
                f"lambdaplane does not implement the {operation.name} operation yet."
            )
        ctx = RequestContext(
            services=self.c.services,
            request_id=request_id,
            base_url=_base_url(scope, headers),
            access_key_id=access_key,
            trace_header=headers.get("x-amzn-trace-id"),
            caller=caller,
        )
        if handler.coroutine is not None:
            output = await handler.coroutine(ctx, params)
        elif handler.blocking:
            assert handler.call is not None
            output = await asyncio.to_thread(handler.call, ctx, params)
        else:
            assert handler.call is not None
            output = handler.call(ctx, params)
        streamed = output.get("__stream__")
        if streamed is not None:  # a body sent as it is produced (InvokeWithResponseStream)
            return streamed.status, streamed.headers, streamed.body
        return serialize_response(operation, output)

    def _authorize_foreign(self, operation: str, params: dict[str, Any], caller: Identity) -> None:
        """Another account's key may invoke what a resource-based policy lets it; nothing
        else (the account's own keys are its administrators and are not checked)."""
        functions = self.c.services.functions
        name = params.get("FunctionName")
        action, resource = f"lambda:{operation}", f"{functions.scope.function_arn('*')}"
        if isinstance(name, str):
            ref = functions.scope.parse(name, params.get("Qualifier"))
            resource = functions.scope.function_arn(ref.name, ref.qualifier)
            permissions = self.c.services.permissions
            if operation in FOREIGN_INVOKES:
                action = "lambda:InvokeFunction"
                if permissions is not None and permissions.allows(
                    ref.name, ref.qualifier, action=action, caller=caller
                ):
                    return
        raise AccessDeniedException(
            f"User: {caller.arn} is not authorized to perform: {action} on resource: "
            f"{resource} because no resource-based policy allows the {action} action"
        )

    async def _internal(self, scope: Scope_, receive: Receive, send: Send, path: str) -> None:
        if path == HEALTH_PATH:
            ok = self._ready
            body = json.dumps({"status": "ok" if ok else "starting"}).encode()
            await _respond(send, 200 if ok else 503, _JSON, body)
        elif path in (METRICS_PATH, LEGACY_METRICS_PATH):
            await self._serve_metrics(scope, send)
        elif path == ECHO_PATH:
            # A bare echo on the same stack: the floor that benchmarks compare invokes with.
            body = await _read_body(receive, "Echo")
            await _respond(send, 200, _JSON, body)
        elif path.startswith(PATH_PREFIX) and scope["method"] in ("GET", "HEAD"):
            await self._download_code(scope, send, path[len(PATH_PREFIX) :])
        else:
            await _respond(send, 404, _JSON, b'{"message":"Not Found"}')

    async def _serve_metrics(self, scope: Scope_, send: Send) -> None:
        """The Prometheus exposition, for whoever ``--metrics-auth`` lets in."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        refusal = self.c.metrics_access.check(
            scope["method"], raw_path, scope.get("query_string", b"").decode("latin-1"), headers
        )
        if refusal is not None:
            extra = [(b"www-authenticate", refusal.challenge.encode())] if refusal.challenge else []
            body = json.dumps({"message": refusal.message}).encode()
            await _respond(send, refusal.status, [*_JSON, *extra], body)
            return
        # What runs now is read here, on the loop that owns the pools; the rest off it.
        self.c.metrics.observe_environments(self.c.pools.census())
        body = (await asyncio.to_thread(self._exposition)).encode()
        await _respond(send, 200, _PROMETHEUS, body)

    def _exposition(self) -> str:
        self.c.metrics.observe_queue(self.c.queue.depth())
        return self.c.metrics.render()

    async def _download_code(self, scope: Scope_, send: Send, name: str) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sha256_hex = name.removesuffix(".zip")
        reason = self.c.services.code_urls.check(
            sha256_hex,
            (query.get("Expires") or [""])[0],
            (query.get("Signature") or [""])[0],
            self.c.services.clock(),
        )
        if reason is not None or not self.c.code.exists(sha256_hex):
            reason = reason or "The specified key does not exist."
            code = "NoSuchKey" if reason.startswith("The specified key") else "AccessDenied"
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{reason}</Message></Error>"
            ).encode()
            status = 404 if code == "NoSuchKey" else 403
            await _respond(send, status, [(b"content-type", b"application/xml")], body)
            return
        data = await asyncio.to_thread(self.c.code.read, sha256_hex)
        headers = [(b"content-type", b"application/zip")]
        await _respond(send, 200, headers, b"" if scope["method"] == "HEAD" else data, len(data))


def _too_large(operation: str) -> RequestEntityTooLargeException:
    return RequestEntityTooLargeException(
        f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the {operation} operation"
    )


async def _read_body(receive: Receive, operation: str) -> bytes:
    body = await read_body(receive, MAX_REQUEST_BYTES)
    if body is None:
        raise _too_large(operation)
    return body


def _base_url(scope: Scope_, headers: dict[str, str]) -> str:
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


async def _respond(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    length: int | None = None,
) -> None:
    all_headers = [
        *headers,
        (b"content-length", str(len(body) if length is None else length).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _send_streamed(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: AsyncIterator[bytes],
    request_id: str,
) -> None:
    """Send a body as it is produced (chunked): each piece as soon as it exists."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    try:
        async for piece in body:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    except Exception:  # the status is sent: all that is left is to end the body
        log.exception("streamed response of request %s failed", request_id)
    await send({"type": "http.response.body", "body": b""})


def create_app(settings: Settings) -> LambdaplaneApp:
    return LambdaplaneApp(build(settings))
