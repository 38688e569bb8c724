"""Test helpers shared by the test suite and the benchmarks (public fakes live here)."""

from lambdaplane.testing.server import (
    ServerProcess,
    free_port,
    make_zip,
    signed_request,
    start_server,
)

__all__ = ["ServerProcess", "free_port", "make_zip", "signed_request", "start_server"]
