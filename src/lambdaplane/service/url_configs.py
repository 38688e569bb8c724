"""Function URL configs: Create, Get, Update, Delete and ListFunctionUrlConfigs.

A URL belongs to a function's ``$LATEST`` (no qualifier) or to one of its aliases; the
model's qualifier pattern already refuses versions and ``$LATEST`` at the edge. Each
config gets a url id at creation that never changes: the URL's host label, as on AWS.

AWS words "not found" differently per operation: Create, Update and List say
"Function does not exist" when the function or alias is missing, Get and Delete always
say "The resource you requested does not exist." The data plane reads configs by url id
through a short cache (``resolve``) that local writes invalidate.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lambdaplane.errors import ResourceConflictException, ResourceNotFoundException
from lambdaplane.service.functions import is_alias
from lambdaplane.service.names import MAX_NAME_LENGTH, Scope
from lambdaplane.store import AliasRepository, FunctionRepository
from lambdaplane.store.functions import LATEST
from lambdaplane.store.url_configs import StoredUrlConfig, UrlConfigExists, UrlConfigRepository

NO_FUNCTION = "Function does not exist"
NO_RESOURCE = "The resource you requested does not exist."
BUFFERED = "BUFFERED"
MAX_PAGE = 50
RESOLVE_CACHE_SECONDS = 1.0
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_url_id() -> str:
    """32 lowercase alphanumerics, as AWS's url ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))


def iso_time(epoch: float) -> str:
    """AWS's rendering of URL config times: ISO-8601 with microseconds, UTC, ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class UrlConfigService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        aliases: AliasRepository,
        urls: UrlConfigRepository,
        url_for: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        new_id: Callable[[], str] = new_url_id,
    ) -> None:
        self.scope = scope
        self._functions = functions
        self._aliases = aliases
        self._urls = urls
        self._url_for = url_for  # url id -> the FunctionUrl clients use
        self._clock = clock
        self._monotonic = monotonic
        self._new_id = new_id
        self._resolved: dict[str, tuple[float, StoredUrlConfig | None]] = {}

    # -- the data plane ----------------------------------------------------------------

    def resolve(self, url_id: str) -> StoredUrlConfig | None:
        """The config serving ``url_id``, from a copy at most a second old."""
        now = self._monotonic()
        hit = self._resolved.get(url_id)
        if hit is not None and now - hit[0] < RESOLVE_CACHE_SECONDS:
            return hit[1]
        stored = self._urls.by_url_id(url_id)
        if len(self._resolved) > 10_000:  # unknown ids are cached too: bound the memory
            self._resolved.clear()
        self._resolved[url_id] = (now, stored)
        return stored

    def url_of(self, stored: StoredUrlConfig) -> str:
        return self._url_for(stored.url_id)

    def _forget(self, url_id: str) -> None:
        self._resolved.pop(url_id, None)

    # -- the API -----------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(request["FunctionName"], request.get("Qualifier"))
        self._require_target(name, qualifier)
        now = self._clock()
        stored = StoredUrlConfig(
            function_name=name,
            qualifier=qualifier,
            url_id=self._new_id(),
            auth_type=request["AuthType"],
            invoke_mode=request.get("InvokeMode"),
            cors=request.get("Cors"),
            created_at=now,
            last_modified=now,
        )
        try:
            created = self._urls.create(stored)
        except UrlConfigExists:
            raise ResourceConflictException(
                "Failed to create function url config for [functionArn = "
                f"{self._arn(name, qualifier)}]. Error message:  "
                "FunctionUrlConfig exists for this Lambda function"
            ) from None
        if not created:
            raise ResourceNotFoundException(NO_FUNCTION)
        self._forget(stored.url_id)
        rendered = self._rendered(stored, with_modified=False)
        if stored.invoke_mode is not None:
            rendered["InvokeMode"] = stored.invoke_mode
        return rendered

    def get(self, function_name: str, qualifier: str | None) -> dict[str, Any]:
        stored = self._existing(function_name, qualifier)
        return self._listed(stored)

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(request["FunctionName"], request.get("Qualifier"))
        self._require_target(name, qualifier)
        current = self._urls.get(name, qualifier)
        if current is None:
            raise ResourceNotFoundException(NO_RESOURCE)
        updated = StoredUrlConfig(
            function_name=name,
            qualifier=qualifier,
            url_id=current.url_id,
            auth_type=request.get("AuthType") or current.auth_type,
            invoke_mode=request.get("InvokeMode") or current.invoke_mode,
            cors=request.get("Cors", current.cors),
            created_at=current.created_at,
            last_modified=self._clock(),
        )
        if not self._urls.replace(updated):
            raise ResourceNotFoundException(NO_RESOURCE)
        self._forget(updated.url_id)
        rendered = self._rendered(updated, with_modified=True)
        if updated.invoke_mode is not None:
            rendered["InvokeMode"] = updated.invoke_mode
        return rendered

    def delete(self, function_name: str, qualifier: str | None) -> None:
        stored = self._existing(function_name, qualifier)
        self._urls.delete(stored.function_name, stored.qualifier)
        self._forget(stored.url_id)

    def list(self, function_name: str, marker: str | None, max_items: int | None) -> dict[str, Any]:
        name, _ = self._target(function_name, None)
        if len(name) > MAX_NAME_LENGTH or self._functions.get(name) is None:
            raise ResourceNotFoundException(NO_FUNCTION)
        limit = min(max_items or MAX_PAGE, MAX_PAGE)
        after = int(marker) if marker and marker.isdigit() else None
        page = self._urls.of_function(name, after, limit + 1)
        result: dict[str, Any] = {"FunctionUrlConfigs": [self._listed(s) for s in page[:limit]]}
        if len(page) > limit:
            result["NextMarker"] = str(page[limit - 1].position)
        return result

    # -- helpers -----------------------------------------------------------------------

    def _target(self, function_name: str, qualifier: str | None) -> tuple[str, str]:
        ref = self.scope.parse(function_name, qualifier)
        return ref.name, ref.qualifier or LATEST

    def _require_target(self, name: str, qualifier: str) -> None:
        """The function, and the alias when one is named, exist (Create and Update)."""
        if len(name) > MAX_NAME_LENGTH or self._functions.get(name) is None:
            raise ResourceNotFoundException(NO_FUNCTION)
        if qualifier != LATEST and (
            not is_alias(qualifier) or self._aliases.get(name, qualifier) is None
        ):
            raise ResourceNotFoundException(NO_FUNCTION)

    def _existing(self, function_name: str, qualifier: str | None) -> StoredUrlConfig:
        name, qualifier = self._target(function_name, qualifier)
        stored = self._urls.get(name, qualifier) if len(name) <= MAX_NAME_LENGTH else None
        if stored is None:
            raise ResourceNotFoundException(NO_RESOURCE)
        return stored

    def _arn(self, name: str, qualifier: str) -> str:
        return self.scope.function_arn(name, None if qualifier == LATEST else qualifier)

    def _rendered(self, stored: StoredUrlConfig, *, with_modified: bool) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "FunctionUrl": self._url_for(stored.url_id),
            "FunctionArn": self._arn(stored.function_name, stored.qualifier),
            "AuthType": stored.auth_type,
            "CreationTime": iso_time(stored.created_at),
        }
        if stored.cors is not None:
            rendered["Cors"] = stored.cors
        if with_modified:
            rendered["LastModifiedTime"] = iso_time(stored.last_modified)
        return rendered

    def _listed(self, stored: StoredUrlConfig) -> dict[str, Any]:
        rendered = self._rendered(stored, with_modified=True)
        rendered["InvokeMode"] = stored.invoke_mode or BUFFERED
        return rendered
