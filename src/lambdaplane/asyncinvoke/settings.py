"""What a function's asynchronous invocations follow: its EventInvokeConfig, or AWS's defaults."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_SECONDS = 21_600  # 6 hours


@dataclass(frozen=True)
class AsyncSettings:
    max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    max_event_age_seconds: int = DEFAULT_MAX_EVENT_AGE_SECONDS
    on_success: str | None = None  # destination ARN
    on_failure: str | None = None  # destination ARN
