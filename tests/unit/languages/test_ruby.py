"""The Ruby language: its variables and command, its install, and its runtime interface
client driven through the real agent (no sandbox; the test plays the host)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lambdaplane.agent import wire
from lambdaplane.languages import registry, ruby
from lambdaplane.service.runtimes import Runtime
from tests.unit.agent.harness import AGENT, Host, free_port

RUBY = shutil.which("ruby")
needs_ruby = pytest.mark.skipif(RUBY is None, reason="no `ruby` on this host")


def test_registered_as_the_ruby_family() -> None:
    assert registry()["ruby"] is ruby.LANGUAGE
    assert ruby.LANGUAGE.needs_runtime_dir


def test_environment_is_aws_ruby_runtimes() -> None:
    env = ruby.LANGUAGE.environment(Runtime("ruby3.3", "/usr/bin/ruby"))
    assert env == {
        "AWS_EXECUTION_ENV": "AWS_Lambda_ruby3.3",
        "GEM_HOME": "/var/runtime",
        "GEM_PATH": "/var/task/vendor/bundle/ruby/3.3.0:/opt/ruby/gems/3.3.0:/var/runtime:/var/runtime/ruby/3.3.0",
        "RUBYLIB": "/var/task:/var/runtime/lib:/opt/ruby/lib",
    }


def test_argv_starts_the_client_without_rubygems(tmp_path: Path) -> None:
    argv = ruby.LANGUAGE.argv(Runtime("ruby3.1", "/usr/bin/ruby"), "function.handler", tmp_path)
    assert argv == ["/usr/bin/ruby", "--disable-gems", "/var/runtime/bootstrap.rb"]


@needs_ruby
def test_install_copies_the_client(tmp_path: Path) -> None:
    assert RUBY is not None
    runtime = Runtime(f"ruby{_ruby_version()}", RUBY)
    said: list[str] = []
    assert ruby.LANGUAGE.install(runtime, tmp_path, said.append)
    assert (tmp_path / "bootstrap.rb").read_bytes() == (
        ruby.CLIENT_DIR / "bootstrap.rb"
    ).read_bytes()
    installed = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.rb"))
    assert installed == sorted(
        p.relative_to(ruby.CLIENT_DIR) for p in ruby.CLIENT_DIR.rglob("*.rb")
    )
    assert said == [
        f"installing {runtime.id} runtime (lambdaplane's Ruby runtime interface client)"
    ]


@needs_ruby
def test_install_refuses_an_interpreter_of_another_version(tmp_path: Path) -> None:
    said: list[str] = []
    assert not ruby.LANGUAGE.install(Runtime("ruby2.0", RUBY), tmp_path, said.append)
    assert "could not install ruby2.0" in said[-1]
    assert not list(tmp_path.iterdir())


def _ruby_version() -> str:
    assert RUBY is not None
    out = subprocess.run(
        [RUBY, "--disable-gems", "-e", "print RUBY_VERSION"], capture_output=True, text=True
    )
    return ".".join(out.stdout.split(".")[:2])


# -- the runtime interface client, under the real agent ---------------------------------

StartClient = Callable[..., Host]

FUNCTION = """
require "logger"
LOGGER = Logger.new($stdout)
puts "init output"

class OrderNotFound < StandardError; end

module Shop
  class Orders
    def self.process(event:, context:)
      "#{name}: #{event}"
    end
  end
end

def echo(event:, context:)
  {
    "event" => event,
    "request_id" => context.aws_request_id,
    "arn" => context.invoked_function_arn,
    "deadline_ms" => context.deadline_ms,
    "remaining" => context.get_remaining_time_in_millis,
    "function_name" => context.function_name,
    "memory" => context.memory_limit_in_mb,
    "client_context" => context.client_context,
    "identity" => context.identity,
    "tenant_id" => context.tenant_id,
    "trace" => ENV["_X_AMZN_TRACE_ID"],
    "rubygems_loaded" => $LOADED_FEATURES.any? { |f| f.end_with?("/rubygems.rb") },
  }
end

def fails(event:, context:)
  raise OrderNotFound, "order #{event["order"]}" if event["order"]
  Integer("not a number")
end

def logs(event:, context:)
  LOGGER.info("hello")
  LOGGER.error(event)
  nil
end

def misspelt(event:, context:)
  undefined_thing
end

def rubygems_loaded?
  $LOADED_FEATURES.any? { |f| f.end_with?("/rubygems.rb") }
end

def gems(event:, context:)
  seen = [rubygems_loaded?]
  case event
  when "constant" then Gem::Version.new("1.2")
  when "gem" then gem("json")
  when "require" then begin; require("no_such_library_anywhere"); rescue LoadError; end
  end
  seen << rubygems_loaded?
end
"""


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "function.rb").write_text(textwrap.dedent(FUNCTION))
    # A function file named like a library the client needs must not shadow it.
    (root / "json.rb").write_text("raise 'the function's json.rb was loaded'\n")
    return root


@pytest.fixture
def start_client(task_root: Path) -> Iterator[StartClient]:
    """Start the agent running the client for ``handler``; every agent is closed after."""
    if RUBY is None:
        pytest.skip("no `ruby` on this host")
    hosts: list[Host] = []

    def start(handler: str, **extra_env: str) -> Host:
        port = free_port()
        ours, theirs = socket.socketpair()
        env = dict(
            os.environ,
            AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
            _HANDLER=handler,
            LAMBDA_TASK_ROOT=str(task_root),
            RUBYLIB=str(task_root),
            AWS_LAMBDA_FUNCTION_NAME="orders",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
            **extra_env,
        )
        client = [RUBY, "--disable-gems", str(ruby.CLIENT_DIR / "bootstrap.rb")]
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(AGENT), "--fd", str(theirs.fileno()),
             "--port", str(port), "--", *client],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, cwd=task_root, env=env,
        )  # fmt: skip
        theirs.close()
        host = Host(proc, ours, port)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


def test_context_from_runtime_api_headers(start_client: StartClient) -> None:
    host = start_client("function.echo")
    _, before = host.until(wire.NEXT)
    assert host.logs(before) == b"init output\n"
    deadline = int(time.time() * 1000) + 30_000
    host.invoke(
        b'{"a": [1, 2]}',
        request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        deadline_ms=deadline,
        client_context=json.dumps({"client": {}, "custom": {"k": "v"}, "env": {}}),
        cognito_identity=json.dumps({"cognitoIdentityId": "i", "cognitoIdentityPoolId": "p"}),
        tenant_id="tenant-7",
    )
    frame, _ = host.until(wire.RESPONSE)
    assert frame.meta == {"request_id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd"}
    result = json.loads(frame.body)
    assert 25_000 < result.pop("remaining") <= 30_000
    assert result == {
        "event": {"a": [1, 2]},
        "request_id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        "arn": "arn:aws:lambda:us-east-1:111111111111:function:f",
        "deadline_ms": deadline,
        "function_name": "orders",
        "memory": "512",
        "client_context": {"client": {}, "custom": {"k": "v"}, "env": {}},
        "identity": {"cognitoIdentityId": "i", "cognitoIdentityPoolId": "p"},
        "tenant_id": "tenant-7",
        "trace": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        "rubygems_loaded": False,  # loaded only on first need
    }
    host.until(wire.NEXT)
    host.invoke(b"[]", request_id="second", trace_id="")
    frame, _ = host.until(wire.RESPONSE)
    result = json.loads(frame.body)
    assert result["event"] == [] and result["client_context"] is None and result["trace"] is None


def test_module_class_method(start_client: StartClient) -> None:
    host = start_client("function.Shop::Orders.process")
    host.until(wire.NEXT)
    host.invoke(b'"box"', request_id="r1")
    frame, _ = host.until(wire.RESPONSE)
    assert json.loads(frame.body) == "Shop::Orders: box"


def test_errors_post_aws_shape_and_keep_serving(start_client: StartClient) -> None:
    host = start_client("function.fails")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="core")
    frame, before = host.until(wire.ERROR)
    assert frame.meta == {"request_id": "core", "error_type": "Function<ArgumentError>"}
    document = json.loads(frame.body)
    assert document == {
        "errorMessage": 'invalid value for Integer(): "not a number"',
        "errorType": "Function<ArgumentError>",
        "stackTrace": document["stackTrace"],
    }
    line = textwrap.dedent(FUNCTION).splitlines().index('  Integer("not a number")') + 1
    assert re.search(rf"function.rb:{line}:in [`'](Object#)?fails'$", document["stackTrace"][-1])
    assert not any(
        "bootstrap.rb" in line or "lambda_runtime" in line for line in document["stackTrace"]
    )
    logged = host.logs(before).decode()
    assert logged.startswith("Error raised from handler method\n{\n")
    assert json.loads(logged.split("\n", 1)[1]) == document
    host.until(wire.NEXT)
    host.invoke(b'{"order": 7}', request_id="user")
    frame, _ = host.until(wire.ERROR)
    # A class of the function's own is named in the document, not in the header.
    assert frame.meta == {"request_id": "user", "error_type": "Function<UserException>"}
    assert json.loads(frame.body)["errorType"] == "Function<OrderNotFound>"
    host.until(wire.NEXT)


def test_name_error_is_critical_and_ends_the_runtime(start_client: StartClient) -> None:
    host = start_client("function.misspelt")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="r1")
    frame, before = host.until(wire.ERROR)
    assert frame.meta["error_type"] == "Function<NameError>"
    message = json.loads(frame.body)["errorMessage"]
    assert re.match(r"undefined local variable or method [`']undefined_thing'", message)
    frame, after = host.until(wire.EXIT)
    assert frame.meta["status"] == "exit status 1"
    # The client's stderr and its Runtime API call race: the line may land either side.
    assert host.logs(before + after).startswith(b"Critical exception from handler\n")


@pytest.mark.parametrize("need", ["constant", "gem", "require"])
def test_rubygems_loads_on_first_need(start_client: StartClient, need: str) -> None:
    host = start_client("function.gems")
    host.until(wire.NEXT)
    host.invoke(b'"nothing"', request_id="r0")
    frame, _ = host.until(wire.RESPONSE)
    assert json.loads(frame.body) == [False, False]
    host.until(wire.NEXT)
    host.invoke(json.dumps(need).encode(), request_id="r1")
    frame, _ = host.until(wire.RESPONSE)
    assert json.loads(frame.body) == [False, True]


def test_rubygems_loaded_before_the_client_is_left_alone(start_client: StartClient) -> None:
    host = start_client("function.gems", RUBYOPT="-rrubygems")
    host.until(wire.NEXT)
    host.invoke(b'"gem"', request_id="r1")
    frame, _ = host.until(wire.RESPONSE)
    assert json.loads(frame.body) == [True, True]


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("nothere.handler", "Init<LoadError>", "cannot load such file -- nothere"),
        ("function", "Init<ArgumentError>", 'Invalid handler "function"'),
        ("function.a.b.c", "Init<ArgumentError>", 'Invalid handler "function.a.b.c"'),
    ],
)
def test_init_errors(
    start_client: StartClient, handler: str, error_type: str, message: str
) -> None:
    host = start_client(handler)
    frame, before = host.until(wire.INIT_ERROR)
    assert frame.meta == {"error_type": error_type}
    document = json.loads(frame.body)
    assert document["errorType"] == error_type
    assert document["errorMessage"].startswith(message)
    assert host.logs(before).startswith(b"Init error when loading handler\n")
    frame, _ = host.until(wire.EXIT)
    assert frame.meta["status"] == "exit status 1"


def test_logger_lines_carry_level_time_and_request_id(start_client: StartClient) -> None:
    host = start_client("function.logs")
    host.until(wire.NEXT)
    host.invoke(b'{"k": "v"}', request_id="log-req")
    frame, before = host.until(wire.RESPONSE)
    assert frame.body == b"null"
    # Only this invocation's Logger lines (the interpreter may add a warning of its own).
    lines = [line for line in host.logs(before).decode().splitlines() if " log-req " in line]
    info, error = lines
    assert info.startswith("[INFO] ") and info.endswith(" log-req hello")
    assert error.startswith("[ERROR] ") and error.endswith(' log-req {"k"=>"v"}')
    stamp = info.split(" ")[1]
    assert time.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(stamp) == len("2020-01-31T22:12:58.534Z")
