"""Botocore's ``lambda`` service model (rest-json, API 2015-03-31), loaded once.

Contract: ``load_service_model()`` returns the same ``botocore.model.ServiceModel`` on
every call. Its ``operation_model(name)`` is itself cached by botocore, so operation and
shape objects are stable for the life of the process; the API layer relies on that to
cache per-operation compiled data keyed by object identity.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.loaders import Loader
from botocore.model import ServiceModel

SERVICE_NAME = "lambda"


@functools.cache
def load_service_model() -> Any:
    """The Lambda ``ServiceModel`` (typed ``Any``: botocore ships no type stubs)."""
    return ServiceModel(Loader().load_service_model(SERVICE_NAME, "service-2"), SERVICE_NAME)
