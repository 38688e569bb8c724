"""GetAccountSettings."""

from __future__ import annotations

from typing import Any

from lambdaplane.handlers.base import RequestContext
from lambdaplane.service.account import account_settings


def get_account_settings(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    count, size = ctx.services.functions.account_usage()
    concurrency = ctx.services.concurrency
    if concurrency is None:
        return account_settings(count, size)
    limit = concurrency.account_limit
    return account_settings(count, size, limit - concurrency.unreserved(), limit)
