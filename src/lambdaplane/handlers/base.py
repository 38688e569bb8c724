"""What a handler receives: the wired services and the request's own context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lambdaplane.auth.keys import Identity
from lambdaplane.invoke.service import InvokeService
from lambdaplane.service.aliases import AliasService
from lambdaplane.service.code_urls import CodeUrlSigner
from lambdaplane.service.concurrency import ConcurrencyService
from lambdaplane.service.event_configs import EventInvokeConfigService
from lambdaplane.service.event_source_mappings import EventSourceMappingService
from lambdaplane.service.functions import FunctionService
from lambdaplane.service.layers import LayerService
from lambdaplane.service.permissions import PermissionService
from lambdaplane.service.provisioned import ProvisionedConcurrencyService
from lambdaplane.service.tagging import TagService
from lambdaplane.service.url_configs import UrlConfigService


@dataclass(frozen=True)
class Services:
    """Everything handlers may call, built once by the app factory."""

    functions: FunctionService
    tags: TagService
    aliases: AliasService
    invoke: InvokeService
    event_configs: EventInvokeConfigService
    layers: LayerService
    code_urls: CodeUrlSigner
    clock: Callable[[], float]
    event_source_mappings: EventSourceMappingService | None = None
    permissions: PermissionService | None = None
    url_configs: UrlConfigService | None = None
    concurrency: ConcurrencyService | None = None  # reserved concurrency
    provisioned: ProvisionedConcurrencyService | None = None  # provisioned concurrency


@dataclass(frozen=True)
class RequestContext:
    services: Services
    request_id: str
    base_url: str  # scheme://host[:port] the client used, for URLs we hand back
    access_key_id: str
    trace_header: str | None = None  # the caller's X-Amzn-Trace-Id
    caller: Identity | None = None  # who signed the request (None: unknown, e.g. any-credentials)


Output = dict[str, Any]


@dataclass(frozen=True)
class Handler:
    """An operation's implementation: plain, ``blocking`` (run in a worker thread) or async."""

    call: Callable[[RequestContext, dict[str, Any]], Output] | None = None
    blocking: bool = False
    coroutine: Callable[[RequestContext, dict[str, Any]], Awaitable[Output]] | None = None
