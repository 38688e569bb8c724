"""Node.js functions through boto3, on the host's node with lambdaplane's Node.js runtime."""

from __future__ import annotations

import base64
import json
import re
import textwrap
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.service.runtimes import find_interpreters
from lambdaplane.testing import make_zip
from tests.integration.helpers import unique_name, wait_settled

_NODES = sorted(r.id for r in find_interpreters() if r.family == "nodejs")
NODE = "nodejs20.x" if "nodejs20.x" in _NODES else next(iter(_NODES), None)
pytestmark = pytest.mark.skipif(NODE is None, reason="no `node` on this host")

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

ECHO = """
const BOOT = Math.random().toString(36).slice(2);  // differs per environment
console.log('init of', __filename);

exports.handler = async (event, context) => ({
  event,
  boot: BOOT,
  requestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  arn: context.invokedFunctionArn,
  memory: context.memoryLimitInMB,
  logGroup: context.logGroupName,
  logStream: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  clientContext: context.clientContext ?? null,
  identity: context.identity ?? null,
  waits: context.callbackWaitsForEmptyEventLoop,
  legacy: [typeof context.done, typeof context.succeed, typeof context.fail],
  execArgv: process.execArgv,
  gc: typeof gc,
  uid: process.getuid(),
  cwd: process.cwd(),
  env: {
    AWS_EXECUTION_ENV: process.env.AWS_EXECUTION_ENV,
    NODE_PATH: process.env.NODE_PATH,
    _HANDLER: process.env._HANDLER,
    _X_AMZN_TRACE_ID: process.env._X_AMZN_TRACE_ID,
  },
});
"""


def deploy(lam: Any, role: str, files: dict[str, str], handler: str, **extra: Any) -> str:
    name = unique_name("node")
    lam.create_function(
        FunctionName=name,
        Runtime=NODE,
        Role=role,
        Handler=handler,
        Code={"ZipFile": make_zip({k: textwrap.dedent(v).lstrip() for k, v in files.items()})},
        Timeout=extra.pop("Timeout", 10),
        **extra,
    )
    wait_settled(lam, name)
    return name


def call(lam: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    payload = json.dumps(event if event is not None else {}).encode()
    response = lam.invoke(FunctionName=name, Payload=payload, **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def tail(response: dict[str, Any]) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def request_id(log: str) -> str:
    """The request id on the START line (or platform.start record) of a Tail log."""
    match = re.search(r"^START RequestId: (\S+) ", log, re.M) or re.search(
        r'^\{"time":"[^"]+","type":"platform\.start","record":\{"requestId":"([^"]+)"', log, re.M
    )
    assert match, log
    return match.group(1)


def function_lines(log: str) -> list[str]:
    """The function's own lines of a Tail log: the platform's lines and records dropped.

    Split on "\n" only: a "\r" is part of a line (multi-line messages, as on AWS)."""
    return [
        line
        for line in log.split("\n")
        if re.match(ISO, line) or (line.startswith("{") and not line.startswith('{"time":'))
    ]


# -- module formats and the context --------------------------------------------------------


def test_commonjs_handler_sees_event_context_and_aws_variables(lam: Any, role: str) -> None:
    name = deploy(lam, role, {"index.js": ECHO}, "index.handler", MemorySize=256, Timeout=7)
    client_context = {"custom": {"k": "v"}, "env": {}, "client": {}}
    response, body = call(
        lam,
        name,
        {"x": 1},
        ClientContext=base64.b64encode(json.dumps(client_context).encode()).decode(),
    )
    assert "FunctionError" not in response, body
    assert body["event"] == {"x": 1}
    assert len(body["requestId"]) == 36
    assert body["functionName"] == name and body["functionVersion"] == "$LATEST"
    assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert body["memory"] == "256"  # a string, as AWS's runtime gives it
    assert body["logGroup"] == f"/aws/lambda/{name}"
    assert "[$LATEST]" in body["logStream"]
    assert 0 < body["remaining"] <= 7000
    assert body["clientContext"] == client_context
    assert body["identity"] is None
    assert body["waits"] is True
    assert body["legacy"] == ["function", "function", "function"]
    # AWS's bootstrap: --expose-gc, 80 KB headers, 5% of memory as new space, the rest old.
    assert body["execArgv"] == [
        "--expose-gc",
        "--max-http-header-size",
        "81920",
        "--max-semi-space-size=6",
        "--max-old-space-size=244",
    ]
    assert body["gc"] == "function"
    assert body["uid"] == 993 and body["cwd"] == "/var/task"
    major = NODE.removeprefix("nodejs").removesuffix(".x") if NODE else ""
    assert body["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{NODE}"
    assert body["env"]["NODE_PATH"] == (
        f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
        "/var/runtime/node_modules:/var/runtime:/var/task"
    )
    assert body["env"]["_HANDLER"] == "index.handler"
    assert body["env"]["_X_AMZN_TRACE_ID"].startswith("Root=1-")

    _, again = call(lam, name, {"x": 2})
    assert again["boot"] == body["boot"]  # the same warm environment
    assert again["requestId"] != body["requestId"]
    assert again["env"]["_X_AMZN_TRACE_ID"] != body["env"]["_X_AMZN_TRACE_ID"]


def test_esm_mjs_handler(lam: Any, role: str) -> None:
    source = """
    import { hostname } from 'node:os';
    const top = await Promise.resolve('top-level await');
    export const handler = async (event) => ({ event, top, esm: typeof require });
    """
    name = deploy(lam, role, {"index.mjs": source}, "index.handler")
    _, body = call(lam, name, {"a": [1, 2]})
    assert body == {"event": {"a": [1, 2]}, "top": "top-level await", "esm": "undefined"}


def test_js_is_esm_under_a_type_module_package(lam: Any, role: str) -> None:
    files = {
        "package.json": '{"type": "module"}',
        "src/app.js": "export const handler = async () => ({ esm: typeof require });",
    }
    name = deploy(lam, role, files, "src/app.handler")
    assert call(lam, name)[1] == {"esm": "undefined"}


def test_cjs_file_and_nested_handler_path(lam: Any, role: str) -> None:
    source = "module.exports.api = { orders: { get: async (e) => `order ${e.id}` } };"
    name = deploy(lam, role, {"lib/app.cjs": source}, "lib/app.api.orders.get")
    assert call(lam, name, {"id": 7})[1] == "order 7"


# -- how a handler's outcome is reported ---------------------------------------------------

HANDLERS = """
exports.callback = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  const result = { timerFired: false };
  setTimeout(() => { result.timerFired = true; }, 300);
  callback(null, result);  // serialised when it is posted
};
exports.asyncWithTimer = async () => {
  setTimeout(() => {}, 5000);
  return 'did not wait';
};
exports.sync = () => ({ returned: 'but ignored' });
exports.syncWithTimer = (event) => {
  setTimeout(() => { globalThis.late = true; }, 200);
};
exports.undefinedResult = async () => undefined;
exports.succeed = (event, context) => { context.succeed({ legacy: 'succeed' }); };
exports.done = (event, context) => { setTimeout(() => {}, 5000); context.done(null, 'done now'); };
"""


@pytest.mark.parametrize(("wait", "fired"), [(True, True), (False, False)])
def test_callback_waits_for_the_empty_event_loop_unless_told_not_to(
    lam: Any, role: str, wait: bool, fired: bool
) -> None:
    name = deploy(lam, role, {"index.js": HANDLERS}, "index.callback")
    started = time.monotonic()
    response, body = call(lam, name, {"wait": wait})
    elapsed = time.monotonic() - started
    assert "FunctionError" not in response
    assert body == {"timerFired": fired}
    if not wait:
        _, body = call(lam, name, {"wait": False})  # still warm, still answering
        assert body == {"timerFired": False}
    else:
        assert elapsed >= 0.3


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("index.asyncWithTimer", "did not wait"),
        ("index.sync", None),  # a sync handler's return value is not the result, on AWS too
        ("index.syncWithTimer", None),
        ("index.undefinedResult", None),
        ("index.succeed", {"legacy": "succeed"}),
        ("index.done", "done now"),
    ],
)
def test_results(lam: Any, role: str, handler: str, expected: Any) -> None:
    name = deploy(lam, role, {"index.js": HANDLERS}, handler, Timeout=3)
    started = time.monotonic()
    response, body = call(lam, name)
    assert "FunctionError" not in response, body
    assert body == expected
    assert time.monotonic() - started < 2.5  # no one waited for a 5 s timer


# -- errors --------------------------------------------------------------------------------

FAILING = """
class OrderNotFound extends Error {
  constructor(message) { super(message); this.name = 'OrderNotFound'; }
}
exports.asyncThrow = async () => { throw new OrderNotFound('order 7'); };
exports.syncThrow = () => { null.field; };
exports.callbackError = (event, context, callback) => callback(new RangeError('too far'));
exports.callbackString = (event, context, callback) => callback('plain string');
exports.fail = (event, context) => context.fail(new Error('legacy fail'));
exports.unhandledRejection = async () => {
  Promise.reject(new Error('nobody caught me'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  return 'never';
};
exports.uncaughtException = (event, context, callback) => {
  setTimeout(() => { throw new TypeError('thrown from a timer'); }, 10);
};
"""


@pytest.mark.parametrize(
    ("handler", "error_type", "message", "first_frame"),
    [
        ("index.asyncThrow", "OrderNotFound", "order 7", "OrderNotFound: order 7"),
        (
            "index.syncThrow",
            "TypeError",
            "Cannot read properties of null (reading 'field')",
            "TypeError: Cannot read properties of null (reading 'field')",
        ),
        ("index.callbackError", "RangeError", "too far", "RangeError: too far"),
        ("index.fail", "Error", "legacy fail", "Error: legacy fail"),
    ],
)
def test_handler_errors(
    lam: Any, role: str, handler: str, error_type: str, message: str, first_frame: str
) -> None:
    name = deploy(lam, role, {"index.js": FAILING}, handler)
    response, body = call(lam, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == error_type
    assert body["errorMessage"] == message
    assert body["trace"][0] == first_frame
    assert any("/var/task/index.js" in frame for frame in body["trace"])
    log = tail(response)
    logged = next(line for line in function_lines(log) if "Invoke Error" in line)
    prefix = rf"{ISO}\t{request_id(log)}\tERROR\tInvoke Error \t"
    assert re.match(prefix, logged), logged
    document = json.loads(re.sub(prefix, "", logged))
    assert document["errorType"] == error_type and document["errorMessage"] == message
    assert document["stack"] == body["trace"]
    # A reported error leaves the environment warm and answering.
    response, _ = call(lam, name)
    assert response["FunctionError"] == "Unhandled"


def test_callback_with_a_non_error(lam: Any, role: str) -> None:
    name = deploy(lam, role, {"index.js": FAILING}, "index.callbackString")
    response, body = call(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorType": "string", "errorMessage": "plain string", "trace": []}


def test_unhandled_rejection_fails_the_invocation(lam: Any, role: str) -> None:
    name = deploy(lam, role, {"index.js": FAILING}, "index.unhandledRejection")
    response, body = call(lam, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert body["errorMessage"] == "Error: nobody caught me"
    assert body["trace"][0] == "Runtime.UnhandledPromiseRejection: Error: nobody caught me"
    logged = next(line for line in function_lines(tail(response)) if "Unhandled" in line)
    assert "\tERROR\tUnhandled Promise Rejection \t{" in logged
    assert '"reason":"Error: nobody caught me","promise":{}' in logged


def test_uncaught_exception_fails_the_invocation(lam: Any, role: str) -> None:
    name = deploy(lam, role, {"index.js": FAILING}, "index.uncaughtException")
    response, body = call(lam, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "thrown from a timer"
    assert "\tERROR\tUncaught Exception \t{" in tail(response)


def test_the_next_invocation_after_a_crash_starts_cold(lam: Any, role: str) -> None:
    source = """
    exports.handler = async (event) => {
      if (event.crash) Promise.reject(new Error('crash'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      return 'fresh';
    };
    """
    name = deploy(lam, role, {"index.js": source}, "index.handler", Timeout=3)
    assert call(lam, name, {"crash": True})[0]["FunctionError"] == "Unhandled"
    time.sleep(0.5)
    try:
        response, body = call(lam, name)
    except ClientError as exc:
        pytest.fail(f"the next invocation failed: {exc}")
    assert "FunctionError" not in response, body
    assert body == "fresh"


INIT_ERRORS = [
    pytest.param(
        {"index.js": "exports.handler = async () => 1;"},
        "missing.handler",
        "Runtime.ImportModuleError",
        "Error: Cannot find module 'missing'\nRequire stack:\n- /var/runtime/index.mjs",
        id="no-such-module",
    ),
    pytest.param(
        {"index.js": "require('left-pad');\nexports.handler = async () => 1;"},
        "index.handler",
        "Runtime.ImportModuleError",
        "Error: Cannot find module 'left-pad'\nRequire stack:\n- /var/task/index.js\n"
        "- /var/runtime/index.mjs",
        id="missing-dependency",
    ),
    pytest.param(
        {"index.mjs": "import pad from 'left-pad';\nexport const handler = async () => pad;"},
        "index.handler",
        "Error",
        "Cannot find package 'left-pad' imported from /var/task/index.mjs",
        id="esm-missing-package",
    ),
    pytest.param(
        {"index.js": "exports.other = async () => 1;"},
        "index.handler",
        "Runtime.HandlerNotFound",
        "index.handler is undefined or not exported",
        id="handler-not-found",
    ),
    pytest.param(
        {"index.js": "exports.handler = 'a string';"},
        "index.handler",
        "Runtime.HandlerNotFound",
        "index.handler is not a function",
        id="not-a-function",
    ),
    pytest.param(
        {"index.js": "exports.handler = async () => { return (; };"},
        "index.handler",
        "Runtime.UserCodeSyntaxError",
        "SyntaxError: Unexpected token ';'",
        id="syntax-error",
    ),
    pytest.param(
        {"index.mjs": "export const handler = async () => { return (; };"},
        "index.handler",
        "Runtime.UserCodeSyntaxError",
        "SyntaxError: Unexpected token ';'",
        id="esm-syntax-error",
    ),
    pytest.param(
        {"index.js": "throw new Error('config missing');"},
        "index.handler",
        "Error",
        "config missing",
        id="init-throws",
    ),
    pytest.param(
        {"index.js": "exports.handler = async () => 1;"},
        "index",
        "Runtime.MalformedHandlerName",
        "Bad handler",
        id="malformed-handler",
    ),
]


@pytest.mark.parametrize(("files", "handler", "error_type", "message"), INIT_ERRORS)
def test_init_errors(
    lam: Any, role: str, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    name = deploy(lam, role, files, handler)
    for _ in range(2):  # every invocation retries the init, and fails it again
        response, body = call(lam, name, LogType="Tail")
        assert response["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type, body
        assert body["errorMessage"] == message
        assert body["trace"][0].startswith(error_type)
    log = tail(response)
    assert re.search(rf"^{ISO}\tundefined\tERROR\tUncaught Exception \t\{{", log, re.M), log
    fixed: dict[str, str | bytes] = {"fixed.js": "exports.handler = async () => 'fixed';"}
    lam.update_function_code(FunctionName=name, ZipFile=make_zip(fixed))
    wait_settled(lam, name)
    lam.update_function_configuration(FunctionName=name, Handler="fixed.handler")
    wait_settled(lam, name)
    assert call(lam, name)[1] == "fixed"


def test_timeout(lam: Any, role: str) -> None:
    source = """
    const BOOT = Math.random();
    exports.handler = async (event) => {
      if (event.hang) await new Promise(() => setInterval(() => {}, 1000));
      return BOOT;
    };
    """
    name = deploy(lam, role, {"index.js": source}, "index.handler", Timeout=1)
    _, boot = call(lam, name)
    response, body = call(lam, name, {"hang": True})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    _, after = call(lam, name)
    assert after != boot  # the timed-out environment was destroyed: this one started cold


# -- logs ----------------------------------------------------------------------------------

LOGGING = """
console.log('loading');
exports.handler = async () => {
  console.log('hello', { n: 1 });
  console.info('info');
  console.warn('warn');
  console.error('error');
  console.debug('debug');
  console.trace('trace');
  console.log('two\\nlines');
  console.error(new Error('logged, not thrown'));
  return 'ok';
};
"""


def test_console_lines_in_aws_text_format(lam: Any, role: str) -> None:
    name = deploy(lam, role, {"index.js": LOGGING}, "index.handler")
    response, _ = call(lam, name, LogType="Tail")
    log = tail(response)
    rid = request_id(log)
    lines = function_lines(log)
    fields = [line.split("\t", 3) for line in lines]
    assert all(re.fullmatch(ISO, f[0]) for f in fields), lines
    assert [f[1:] for f in fields[:9]] == [
        ["undefined", "INFO", "loading"],  # init: no request yet
        [rid, "INFO", "hello { n: 1 }"],
        [rid, "INFO", "info"],
        [rid, "WARN", "warn"],
        [rid, "ERROR", "error"],
        [rid, "DEBUG", "debug"],
        [rid, "TRACE", "trace"],
        [rid, "INFO", "two\rlines"],  # one event: "\n" becomes "\r", as on AWS
        [rid, "ERROR", fields[8][3]],
    ]
    assert fields[8][3].startswith("Error: logged, not thrown\r    at ")


def test_console_records_in_aws_json_format(lam: Any, role: str) -> None:
    name = deploy(
        lam, role, {"index.js": LOGGING}, "index.handler", LoggingConfig={"LogFormat": "JSON"}
    )
    response, _ = call(lam, name, LogType="Tail")
    log = tail(response)
    rid = request_id(log)
    records = [json.loads(line) for line in function_lines(log)]
    assert all(re.fullmatch(ISO, r.pop("timestamp")) for r in records)
    error = records[-1]["message"]
    assert error["errorType"] == "Error" and error["errorMessage"] == "logged, not thrown"
    assert error["stackTrace"][0] == "Error: logged, not thrown"
    assert records[:-1] == [
        {"level": "INFO", "message": "loading"},  # init: no requestId
        {"level": "INFO", "requestId": rid, "message": "hello { n: 1 }"},
        {"level": "INFO", "requestId": rid, "message": "info"},
        {"level": "WARN", "requestId": rid, "message": "warn"},
        {"level": "ERROR", "requestId": rid, "message": "error"},
        # DEBUG and TRACE are below the default application log level, INFO.
        {"level": "INFO", "requestId": rid, "message": "two\nlines"},
    ]


def test_json_log_level_filter(lam: Any, role: str) -> None:
    name = deploy(
        lam,
        role,
        {"index.js": LOGGING},
        "index.handler",
        LoggingConfig={"LogFormat": "JSON"},
        Environment={"Variables": {"AWS_LAMBDA_LOG_LEVEL": "WARN"}},
    )
    response, _ = call(lam, name, LogType="Tail")
    levels = [json.loads(line)["level"] for line in function_lines(tail(response))]
    assert levels == ["WARN", "ERROR", "ERROR"]
