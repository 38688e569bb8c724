"""Entry point of the agent, the first process in an execution environment.

    python3 -I -S /var/lambdaplane/agent.py --fd N [--host 127.0.0.1] [--port 9001] -- ARGV...

It serves the Runtime API to the runtime it starts (``ARGV``, found on ``PATH``,
inheriting the environment and working directory) and speaks frames (``wire``) to
the host over the inherited Unix stream socket ``N``. ``-I`` keeps the function's own
PYTHON* variables (PYTHONPATH and the like) away from the agent; ``-S`` skips ``site``.
The directory is read-only in the sandbox, so ship its ``__pycache__`` compiled for
every Python the runtimes use.

The order of start-up is the cold-start budget: bind the Runtime API port first (so
the runtime never sees a refused connect), start the runtime, and only then import
the rest, whose milliseconds now overlap the runtime's own start.
Before that point only built-in modules are used. Everything is standard library and
Python 3.9 syntax, because the agent runs under the function's own interpreter.
Once the runtime is started the agent never writes to stdout or stderr: problems go
to the host as AGENT_ERROR frames.
"""

from __future__ import annotations

import _socket
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
else:
    import _signal  # the same constants, without the enum import that `signal` costs

USAGE = "usage: agent.py --fd N [--host HOST] [--port PORT] -- RUNTIME_ARGV..."
HERE = os.path.dirname(os.path.abspath(__file__))


class Options:
    __slots__ = ("argv", "fd", "host", "port")

    def __init__(self, fd: int, host: str, port: int, argv: list[str]) -> None:
        self.fd = fd
        self.host = host
        self.port = port
        self.argv = argv


def parse_args(args: list[str]) -> Options:
    """Parse the command line; raises ValueError carrying the usage."""
    fd, host, port = -1, "127.0.0.1", 9001
    argv: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            argv = args[i + 1 :]
            break
        if arg not in ("--fd", "--host", "--port") or i + 1 >= len(args):
            raise ValueError(f"unexpected argument {arg!r}; {USAGE}")
        value = args[i + 1]
        if arg == "--host":
            host = value
        elif arg == "--fd":
            fd = int(value)
        else:
            port = int(value)
        i += 2
    if fd < 0 or not argv:
        raise ValueError(USAGE)
    return Options(fd, host, port, argv)


def spawn_runtime(argv: list[str], output_fd: int) -> int:
    """Start the runtime in its own process group, stdout and stderr both on ``output_fd``.

    The runtime (and all it forks) is made the OOM killer's first choice, so a function
    that exhausts its memory loses its own processes, never the agent that reports it.
    """
    pid = os.posix_spawnp(
        argv[0],
        argv,
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, output_fd, 1),
            (os.POSIX_SPAWN_DUP2, output_fd, 2),
        ],
        setpgroup=0,
        # Python ignores these two; an exec'd runtime expects the defaults.
        setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ),
    )
    try:
        fd = os.open("/proc/" + str(pid) + "/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)
    except OSError:
        pass  # Raising one's own child's score needs no privilege; if /proc refuses, go on.
    return pid


def start(options: Options) -> tuple[_socket.socket, int, int]:
    """Bind the Runtime API port, then start the runtime: (listener, pid, output fd).

    Raises OSError (port taken, runtime not found or not executable, ...).
    """
    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        listener.bind((options.host, options.port))
        listener.listen(64)
        read_fd, write_fd = os.pipe()
        try:
            pid = spawn_runtime(options.argv, write_fd)
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
    except OSError:
        listener.close()
        raise
    return listener, pid, read_fd


def main(args: list[str]) -> int:
    try:
        options = parse_args(args)
        host_sock = _socket.socket(fileno=options.fd)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"lambdaplane agent: {exc}\n")
        return 2
    os.set_inheritable(options.fd, False)  # the runtime must not reach the host
    sys.path.insert(0, HERE)  # our modules are siblings, not a package, in the sandbox
    try:
        listener, pid, output_fd = start(options)
    except OSError as exc:
        if TYPE_CHECKING:
            from lambdaplane.agent import wire
        else:
            import wire
        meta = {"message": f"cannot start the runtime: {exc}", "errno": exc.errno}
        host_sock.sendall(wire.encode(wire.AGENT_ERROR, meta))
        return 1

    # The runtime is starting: only now import the rest, overlapping its start.
    if TYPE_CHECKING:
        from lambdaplane.agent.supervisor import Supervisor
    else:
        from supervisor import Supervisor

    with open(options.fd, "rb", buffering=65536, closefd=False) as host_reader:
        Supervisor(host_sock, pid, output_fd).run(listener, host_reader)
    return 1  # not reached: the supervisor leaves with os._exit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
