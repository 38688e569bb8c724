"""Entry point of the agent, the first process in an execution environment.

    python3 -I -S /var/lambdaplane/agent.py --fd N [--host 127.0.0.1] [--port 9001]
        [--extensions-dir /opt/extensions] [--account-id ID] -- ARGV...

It serves the Runtime API to the runtime it starts (``ARGV``, found on ``PATH``,
inheriting the environment and working directory), and the Extensions and Telemetry
APIs to extensions, and speaks frames (``wire``) to the host over the inherited Unix
stream socket ``N``. External extensions are the files of ``--extensions-dir``; the
account id is what /extension/register reports to an extension that asks for it. ``-I`` keeps the function's own
PYTHON* variables (PYTHONPATH and the like) away from the agent; ``-S`` skips ``site``.
The directory is read-only in the sandbox, so ship its ``__pycache__`` compiled for
every Python the runtimes use.

The order of start-up is the cold-start budget: bind the Runtime API port first (so
the runtime never sees a refused connect), start the runtime, and only then import
the rest, whose milliseconds now overlap the runtime's own start. With external
extensions AWS's order holds instead: they start first, and the runtime once all of
them have registered. Looking for them costs one listdir of a directory that is
usually missing.
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

USAGE = (
    "usage: agent.py --fd N [--host HOST] [--port PORT] [--extensions-dir DIR]"
    " [--account-id ID] -- RUNTIME_ARGV..."
)
HERE = os.path.dirname(os.path.abspath(__file__))
_OPTIONS = ("--fd", "--host", "--port", "--extensions-dir", "--account-id")


class Options:
    __slots__ = ("account_id", "argv", "extensions_dir", "fd", "host", "port")

    def __init__(
        self,
        fd: int,
        host: str,
        port: int,
        argv: list[str],
        extensions_dir: str = "/opt/extensions",
        account_id: str | None = None,
    ) -> None:
        self.fd = fd
        self.host = host
        self.port = port
        self.argv = argv
        self.extensions_dir = extensions_dir
        self.account_id = account_id


def parse_args(args: list[str]) -> Options:
    """Parse the command line; raises ValueError carrying the usage."""
    options = Options(-1, "127.0.0.1", 9001, [])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            options.argv = args[i + 1 :]
            break
        if arg not in _OPTIONS or i + 1 >= len(args):
            raise ValueError(f"unexpected argument {arg!r}; {USAGE}")
        value = args[i + 1]
        if arg == "--host":
            options.host = value
        elif arg == "--fd":
            options.fd = int(value)
        elif arg == "--port":
            options.port = int(value)
        elif arg == "--extensions-dir":
            options.extensions_dir = value
        else:
            options.account_id = value
        i += 2
    if options.fd < 0 or not options.argv:
        raise ValueError(USAGE)
    return options


def find_extensions(directory: str) -> list[str]:
    """The external extensions: every entry of ``directory`` but directories, by name."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    paths = [directory + "/" + name for name in names]
    return [path for path in paths if not os.path.isdir(path)]


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


def bind(options: Options) -> _socket.socket:
    """Listen on the Runtime API port; raises OSError."""
    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        listener.bind((options.host, options.port))
        listener.listen(64)
    except OSError:
        listener.close()
        raise
    return listener


def start(options: Options) -> tuple[_socket.socket, int, int]:
    """Bind the Runtime API port, then start the runtime: (listener, pid, output fd).

    Raises OSError (port taken, runtime not found or not executable, ...).
    """
    listener = bind(options)
    try:
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
    paths = find_extensions(options.extensions_dir)
    if paths:
        return run_with_extensions(options, host_sock, paths)
    try:
        listener, pid, output_fd = start(options)
    except OSError as exc:
        return cannot_start(host_sock, exc)

    # The runtime is starting: only now import the rest, overlapping its start.
    if TYPE_CHECKING:
        from lambdaplane.agent.supervisor import Supervisor
    else:
        from supervisor import Supervisor

    with open(options.fd, "rb", buffering=65536, closefd=False) as host_reader:
        Supervisor(host_sock, pid, output_fd, options.account_id).run(listener, host_reader)
    return 1  # not reached: the supervisor leaves with os._exit


def run_with_extensions(options: Options, host_sock: _socket.socket, paths: list[str]) -> int:
    """Start the extensions, and the runtime once they have registered; never returns
    unless the port cannot be bound."""
    try:
        listener = bind(options)
    except OSError as exc:
        return cannot_start(host_sock, exc)
    if TYPE_CHECKING:
        from lambdaplane.agent.supervisor import Supervisor
    else:
        from supervisor import Supervisor

    read_fd, write_fd = os.pipe()
    supervisor = Supervisor(host_sock, 0, read_fd, options.account_id)
    supervisor.start_extensions(paths, lambda: spawn_runtime(options.argv, write_fd), write_fd)
    with open(options.fd, "rb", buffering=65536, closefd=False) as host_reader:
        supervisor.run(listener, host_reader)
    return 1  # not reached: the supervisor leaves with os._exit


def cannot_start(host_sock: _socket.socket, exc: OSError) -> int:
    """Tell the host the runtime could not be started; the agent's exit status."""
    if TYPE_CHECKING:
        from lambdaplane.agent import wire
    else:
        import wire
    meta = {"message": f"cannot start the runtime: {exc}", "errno": exc.errno}
    host_sock.sendall(wire.encode(wire.AGENT_ERROR, meta))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
