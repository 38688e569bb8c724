"""Ruby functions through boto3, on the host's Ruby with lambdaplane's runtime interface client."""

from __future__ import annotations

import base64
import json
import re
import textwrap
import time
from typing import Any

import pytest

from lambdaplane.languages.ruby import abi_version
from lambdaplane.service.runtimes import find_interpreters
from lambdaplane.testing import make_zip
from tests.integration.helpers import unique_name, wait_settled

RUBY = next((r.id for r in find_interpreters() if r.family == "ruby"), None)
pytestmark = pytest.mark.skipif(RUBY is None, reason="no `ruby` on this host")

ECHO = """
BOOT = Random.new_seed.to_s  # differs per environment: tells warm from cold
puts "init of #{__FILE__}"

def handler(event:, context:)
  {
    "event" => event,
    "boot" => BOOT,
    "request_id" => context.aws_request_id,
    "function_name" => context.function_name,
    "function_version" => context.function_version,
    "arn" => context.invoked_function_arn,
    "memory" => context.memory_limit_in_mb,
    "log_group" => context.log_group_name,
    "log_stream" => context.log_stream_name,
    "deadline_ms" => context.deadline_ms,
    "remaining" => context.get_remaining_time_in_millis,
    "client_context" => context.client_context,
    "identity" => context.identity,
    "env" => ENV.to_h.slice("AWS_EXECUTION_ENV", "GEM_HOME", "GEM_PATH", "RUBYLIB",
                            "AWS_LAMBDA_LOG_STREAM_NAME", "_HANDLER", "_X_AMZN_TRACE_ID"),
  }
end
"""


def deploy(lam: Any, role: str, files: dict[str, str], handler: str, **extra: Any) -> str:
    name = unique_name("rb")
    lam.create_function(
        FunctionName=name,
        Runtime=RUBY,
        Role=role,
        Handler=handler,
        Code={"ZipFile": make_zip({k: textwrap.dedent(v).lstrip() for k, v in files.items()})},
        Timeout=extra.pop("Timeout", 10),
        **extra,
    )
    wait_settled(lam, name)
    return name


def call(lam: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def tail_of(response: dict[str, Any]) -> list[str]:
    lines: list[str] = base64.b64decode(response["LogResult"]).decode().splitlines()
    return lines


def ruby31_frame(frame: str) -> str:
    """A backtrace line as Ruby before 3.4 writes it (3.4: "in 'Array#first'")."""
    return re.sub(r"in '(?:[\w:]+[#.])?([^']+)'$", r"in `\1'", frame)


def test_echo_event_and_context(lam: Any, role: str) -> None:
    name = deploy(lam, role, {"function.rb": ECHO}, "function.handler", MemorySize=256, Timeout=7)
    custom = {"custom": {"k": "v"}, "env": {}, "client": {}}
    context = base64.b64encode(json.dumps(custom).encode()).decode()
    before_ms = int(time.time() * 1000)
    response, body = call(lam, name, {"x": [1, "two"]}, ClientContext=context)
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert body["event"] == {"x": [1, "two"]}
    assert body["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == name and body["function_version"] == "$LATEST"
    assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert body["memory"] == "256"
    assert body["log_group"] == f"/aws/lambda/{name}"
    assert body["log_stream"] == body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 0 < body["remaining"] <= 7000
    assert before_ms + 6000 < body["deadline_ms"] <= int(time.time() * 1000) + 7000
    assert body["client_context"] == custom
    assert body["identity"] is None
    abi = abi_version(str(RUBY))
    assert body["env"] == {
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{RUBY}",
        "GEM_HOME": "/var/runtime",
        "GEM_PATH": f"/var/task/vendor/bundle/ruby/{abi}:/opt/ruby/gems/{abi}:/var/runtime:/var/runtime/ruby/{abi}",
        "RUBYLIB": "/var/task:/var/runtime/lib:/opt/ruby/lib",
        "AWS_LAMBDA_LOG_STREAM_NAME": body["log_stream"],
        "_HANDLER": "function.handler",
        "_X_AMZN_TRACE_ID": body["env"]["_X_AMZN_TRACE_ID"],
    }
    assert body["env"]["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    _, again = call(lam, name, "just a string")
    assert again["event"] == "just a string"
    assert again["boot"] == body["boot"]  # the same warm environment
    assert again["client_context"] is None


def test_module_class_method_handler(lam: Any, role: str) -> None:
    source = """
    module Shop
      class Orders
        def self.process(event:, context:)
          { "handled_by" => name, "total" => event["items"].sum, "id" => context.aws_request_id }
        end
      end
    end
    """
    name = deploy(lam, role, {"lib/shop.rb": source}, "lib/shop.Shop::Orders.process")
    response, body = call(lam, name, {"items": [1, 2, 3]})
    assert body == {
        "handled_by": "Shop::Orders",
        "total": 6,
        "id": response["ResponseMetadata"]["RequestId"],
    }


def test_results_are_json_generated(lam: Any, role: str) -> None:
    source = """
    def handler(event:, context:)
      case event["kind"]
      when "nil" then nil
      when "symbol" then { status: :ok, list: [1.5, true] }
      else "Success"
      end
    end
    """
    name = deploy(lam, role, {"function.rb": source}, "function.handler")
    assert call(lam, name, {"kind": "nil"})[1] is None
    assert call(lam, name, {"kind": "symbol"})[1] == {"status": "ok", "list": [1.5, True]}
    assert call(lam, name)[1] == "Success"


def test_handler_that_raises(lam: Any, role: str) -> None:
    # The example of AWS's "AWS Lambda function errors in Ruby" page.
    source = """
    BOOT = Random.new_seed
    class OrderNotFound < StandardError; end

    def handler(event:, context:)
      puts "Processing event..."
      raise OrderNotFound, "order #{event["order"]}" if event["order"]
      return BOOT if event["boot"]
      [1, 2, 3].first("two")
      "Success"
    end
    """
    name = deploy(lam, role, {"function.rb": source}, "function.handler")
    response, body = call(lam, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorMessage": "no implicit conversion of String into Integer",
        "errorType": "Function<TypeError>",
        "stackTrace": body["stackTrace"],
    }
    assert [ruby31_frame(frame) for frame in body["stackTrace"]] == [
        "/var/task/function.rb:8:in `first'",
        "/var/task/function.rb:8:in `handler'",
    ]
    lines = tail_of(response)
    at = lines.index("Error raised from handler method")
    assert lines[at - 1] == "Processing event..."
    assert json.loads("\n".join(lines[at + 1 : at + 9])) == body  # pretty-printed, as on AWS
    response, body = call(lam, name, {"order": 42})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function<OrderNotFound>"
    assert body["errorMessage"] == "order 42"
    _, boot = call(lam, name, {"boot": True})
    _, again = call(lam, name, {"boot": True})
    assert boot == again  # a StandardError leaves the environment warm


def test_missing_handler_method_is_critical(lam: Any, role: str) -> None:
    name = deploy(
        lam, role, {"function.rb": "def other(event:, context:) = 1\n"}, "function.handler"
    )
    response, body = call(lam, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function<NoMethodError>"
    assert re.match(r"undefined method [`']handler' for main", body["errorMessage"])
    assert "Critical exception from handler" in tail_of(response)


def test_after_a_critical_error_the_next_invocation_starts_cold(lam: Any, role: str) -> None:
    source = """
    BOOT = Random.new_seed
    def handler(event:, context:)
      event["typo"] ? undefined_name : BOOT
    end
    """
    name = deploy(lam, role, {"function.rb": source}, "function.handler")
    _, boot = call(lam, name)
    response, body = call(lam, name, {"typo": True})
    assert body["errorType"] == "Function<NameError>"
    time.sleep(0.5)  # the runtime has exited by now, as AWS's does after a critical error
    response, after = call(lam, name)
    assert "FunctionError" not in response
    assert after != boot


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"function.rb": "def handler(event:, context:) = 1\n"},
            "missing.handler",
            "Init<LoadError>",
            "cannot load such file -- missing",
        ),
        (
            {"function.rb": "def handler(event:, context:)\n  [1, 2\nend\n"},
            "function.handler",
            "Init<SyntaxError>",
            "/var/task/function.rb:",
        ),
        (
            {"function.rb": "require 'not_a_gem_anywhere'\ndef handler(event:, context:) = 1\n"},
            "function.handler",
            "Init<LoadError>",
            "cannot load such file -- not_a_gem_anywhere",
        ),
        (
            {"function.rb": "raise 'no configuration'\n"},
            "function.handler",
            "Init<RuntimeError>",
            "no configuration",
        ),
        (
            {"function.rb": "def handler(event:, context:) = 1\n"},
            "function",
            "Init<ArgumentError>",
            'Invalid handler "function"',
        ),
    ],
)
def test_init_errors(
    lam: Any, role: str, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    name = deploy(lam, role, files, handler)
    for _ in range(2):
        response, body = call(lam, name, LogType="Tail")
        assert response["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type, body
        assert body["errorMessage"].startswith(message), body
        assert isinstance(body["stackTrace"], list)
        assert "Init error when loading handler" in tail_of(response)
    lam.update_function_code(
        FunctionName=name,
        ZipFile=make_zip({"fixed.rb": "def handler(event:, context:) = 'fixed'\n"}),
    )
    wait_settled(lam, name)
    lam.update_function_configuration(FunctionName=name, Handler="fixed.handler")
    wait_settled(lam, name)
    assert call(lam, name)[1] == "fixed"


def test_timeout(lam: Any, role: str) -> None:
    source = """
    BOOT = Random.new_seed
    def handler(event:, context:)
      sleep(event["sleep"]) if event["sleep"]
      BOOT
    end
    """
    name = deploy(lam, role, {"function.rb": source}, "function.handler", Timeout=1)
    _, boot = call(lam, name)
    response, body = call(lam, name, {"sleep": 5})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    _, after = call(lam, name)
    assert after != boot  # the timed-out environment was destroyed


def test_puts_and_logger_lines_in_tail(lam: Any, role: str) -> None:
    source = """
    require "logger"
    LOGGER = Logger.new($stdout)
    puts "loading"

    def handler(event:, context:)
      puts "one"
      $stdout.puts "two"
      $stderr.puts "three"
      LOGGER.info("## EVENT")
      LOGGER.warn(event)
      { "ok" => true }
    end
    """
    name = deploy(lam, role, {"function.rb": source}, "function.handler")
    response, body = call(lam, name, {"key": "value"}, LogType="Tail")
    assert body == {"ok": True}
    lines = tail_of(response)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert lines[1] == "loading"  # after INIT_START: init output is in the first tail
    start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
    assert lines[start + 1 : start + 4] == ["one", "two", "three"]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(rf"\[INFO\] {stamp} {request_id} ## EVENT", lines[start + 4])
    assert re.fullmatch(rf'\[WARN\] {stamp} {request_id} {{"key"=>"value"}}', lines[start + 5])
    assert lines[start + 6] == f"END RequestId: {request_id}"


def test_gems_from_vendor_bundle(lam: Any, role: str) -> None:
    """A gem installed with `bundle install --path vendor/bundle` is found through GEM_PATH."""
    abi = abi_version(str(RUBY))
    gemspec = """
    Gem::Specification.new do |s|
      s.name = "tiny_gem"
      s.version = "1.2.3"
      s.summary = "a gem for the test"
      s.authors = ["lambdaplane"]
      s.files = ["lib/tiny_gem.rb"]
      s.require_paths = ["lib"]
    end
    """
    root = f"vendor/bundle/ruby/{abi}"
    files = {
        f"{root}/specifications/tiny_gem-1.2.3.gemspec": gemspec,
        f"{root}/gems/tiny_gem-1.2.3/lib/tiny_gem.rb": "module TinyGem\n  NAME = 'tiny'\nend\n",
        "function.rb": """
        require "tiny_gem"
        def handler(event:, context:)
          [TinyGem::NAME, Gem.loaded_specs["tiny_gem"].version.to_s]
        end
        """,
    }
    name = deploy(lam, role, files, "function.handler")
    assert call(lam, name)[1] == ["tiny", "1.2.3"]
