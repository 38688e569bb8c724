"""The direct path for managed Python runtimes: awslambdaric, talking frames to the host.

AWS's managed Python runtime is the official ``awslambdaric``; this entry point runs
exactly its machinery (``bootstrap.run``: handler import, the context object, error
shapes, logging) but hands it a runtime client that exchanges the agent's frames with
the host over an inherited socket, instead of HTTP to an agent in between. That
removes a process, a thread hop and an HTTP round trip from every invocation
(DESIGN §5: the fewer hops the better). Custom runtimes keep the real HTTP Runtime API.

    python3.X /var/lambdaplane/pyruntime.py <socket fd> <log fd> <handler>
    python3.X /var/lambdaplane/pyruntime.py <socket fd> <log fd> --prewarm
    python3.X /var/lambdaplane/pyruntime.py <socket fd> <log fd> <handler> --template <ctl fd>

With ``--prewarm`` the interpreter and awslambdaric are loaded ahead of demand, before
the function is known; an ASSIGN frame then brings the function's environment and
handler (and the host has mounted its code at /var/task), and the init phase starts.

With ``--template`` (SnapStart) the init phase runs once; awslambdaric's
``restore_next()`` then turns this process into a template that forks one restored
environment per request of the host (``agent/snapstart.py``).

stdout and stderr are moved onto the log fd (a pipe the host reads); before every
frame that ends a phase, the host drains that pipe, so output written before a
response is stored before it. Runs on Python 3.9-3.13, standard library and
awslambdaric only.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_RESPONSE_BYTES = 6291556


def main(argv: list[str]) -> None:
    sock_fd, log_fd, handler = int(argv[1]), int(argv[2]), argv[3]
    ctl_fd = int(argv[5]) if len(argv) > 5 and argv[4] == "--template" else -1
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sock = os.fdopen(sock_fd, "r+b", buffering=0)
    link = [sock]  # the host socket; a restored environment gets its own
    # sys.path[0] is this script's directory; a function's modules must win, as with
    # AWS's bootstrap, so /var/task takes its place and wire loads under a private name.
    # (With PYTHONSAFEPATH there is no script entry: /var/task goes in front of
    # PYTHONPATH's, which stay.)
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] == here:
        sys.path[0] = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    else:
        sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))
    wire = _load_private("_lambdaplane_wire", os.path.join(here, "wire.py"))
    from awslambdaric import bootstrap
    from awslambdaric.lambda_runtime_client import InvocationRequest
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller, to_json

    if handler == "--prewarm":
        frame = wire.read_frame(sock)
        if frame is None or frame.type != wire.ASSIGN:
            os._exit(0)  # Retired before it was used.
        os.environ.clear()
        os.environ.update(frame.meta["env"])
        handler = frame.meta["handler"]
        import time

        time.tzset()
        task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
        os.chdir(task_root)
        sys.path[0] = task_root
        # The layers at /opt were mounted after this interpreter started: forget that
        # PYTHONPATH's /opt directories were missing when it first looked.
        sys.path_importer_cache.clear()
        if "AWS_LAMBDA_LOG_FORMAT" in os.environ or "AWS_LAMBDA_LOG_LEVEL" in os.environ:
            # bootstrap read its log format and level when it was imported, before the
            # function was known: read them again (~0.3 ms, JSON functions only).
            import importlib

            bootstrap = importlib.reload(bootstrap)

    class FrameRuntimeClient:
        """The subset of awslambdaric's LambdaRuntimeClient that ``bootstrap.run`` calls."""

        def __init__(self) -> None:
            self.marshaller = LambdaMarshaller()  # Reads AWS_EXECUTION_ENV: build it now.

        def _send(self, kind: int, meta: dict[str, object] | None, body: bytes = b"") -> None:
            sys.stdout.flush()
            sys.stderr.flush()
            link[0].write(wire.encode(kind, meta, body))

        def wait_next_invocation(self) -> object:
            self._send(wire.NEXT, None)
            frame = wire.read_frame(link[0])
            while frame is not None and frame.type != wire.INVOKE:
                if frame.type == wire.SHUTDOWN:
                    os._exit(0)
                frame = wire.read_frame(link[0])
            if frame is None:  # The host hung up: nothing left to do.
                os._exit(0)
            meta = frame.meta
            return InvocationRequest(
                invoke_id=meta.get("request_id"),
                x_amzn_trace_id=meta.get("trace_id"),
                invoked_function_arn=meta.get("invoked_function_arn"),
                deadline_time_in_ms=int(meta.get("deadline_ms") or 0),
                client_context=meta.get("client_context"),
                cognito_identity=meta.get("cognito_identity"),
                tenant_id=meta.get("tenant_id"),
                content_type="application/json",
                event_body=frame.body,
                invocation_id=None,
            )

        def post_invocation_result(
            self,
            invoke_id: str,
            result_data: bytes | str,
            content_type: str = "application/json",
            invocation_id: object = None,
        ) -> None:
            data = result_data if isinstance(result_data, bytes) else result_data.encode("utf-8")
            if len(data) > MAX_RESPONSE_BYTES:
                self._send(wire.RESPONSE_TOO_LARGE, {"request_id": invoke_id, "size": len(data)})
                # As with the HTTP Runtime API's 413: awslambdaric's client raises and the
                # runtime exits, so the next invocation starts a fresh environment.
                raise RuntimeError(
                    "Request to Lambda Runtime 'invocation/response' endpoint failed. "
                    "Reason: '413'. Exceeded maximum allowed payload size (6291556 bytes)."
                )
            self._send(wire.RESPONSE, {"request_id": invoke_id}, data)

        def post_invocation_error(
            self,
            invoke_id: str,
            error_response_data: str,
            xray_fault: str,
            invocation_id: object = None,
        ) -> None:
            body = (
                error_response_data.encode("utf-8")
                if isinstance(error_response_data, str)
                else error_response_data
            )
            self._send(wire.ERROR, {"request_id": invoke_id}, body)

        def post_init_error(
            self, error_response_data: dict[str, object], error_type_override: object = None
        ) -> None:
            error_type = error_type_override or error_response_data.get("errorType")
            self._send(
                wire.INIT_ERROR,
                {"error_type": error_type},
                to_json(error_response_data).encode("utf-8"),
            )

        def restore_next(self) -> None:
            """SnapStart: init is done; in a template, fork restored environments."""
            if ctl_fd < 0:
                return  # Not a template: carry on as an ordinary environment.
            import socket

            snapstart = _load_private("_lambdaplane_snapstart", os.path.join(here, "snapstart.py"))
            ctl = socket.socket(fileno=ctl_fd)

            def adopt(fd: int) -> None:
                old, link[0] = link[0], os.fdopen(fd, "r+b", buffering=0)
                old.close()
                # Restored ahead of demand, possibly: wait until the host assigns it.
                frame = wire.read_frame(link[0])
                while frame is not None and frame.type != wire.ASSIGN:
                    if frame.type == wire.SHUTDOWN:
                        os._exit(0)
                    frame = wire.read_frame(link[0])
                if frame is None:
                    os._exit(0)

            snapstart.serve(ctl, adopt, (link[0].fileno(),))

        def report_restore_error(self, restore_error_data: object) -> None:
            body = to_json(restore_error_data).encode("utf-8")
            self._send(wire.INIT_ERROR, {"error_type": "Runtime.AfterRestoreError"}, body)

    bootstrap.run(handler, FrameRuntimeClient())


def _load_private(name: str, path: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main(sys.argv)
