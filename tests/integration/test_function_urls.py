"""Function URLs served by a real server, called with curl and httpx: the event a real
Python function sees, response mapping, both routing forms, auth, CORS and errors."""

from __future__ import annotations

import base64
import json
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.conftest import ROLE
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

# One function does it all, by path: echo its event, return what the body says, raise,
# sleep past its timeout, answer with binary data and cookies, or answer big.
HANDLER = textwrap.dedent(
    """
    import base64, json, time

    def handler(event, context):
        path = event["rawPath"]
        if path.startswith("/return"):
            return json.loads(event["body"])
        if path.startswith("/raise"):
            raise ValueError("boom")
        if path.startswith("/sleep"):
            time.sleep(float(event.get("queryStringParameters", {}).get("s", "5")))
            return "slept"
        if path.startswith("/binary"):
            return {"statusCode": 200, "headers": {"content-type": "image/png"},
                    "body": base64.b64encode(bytes(range(256))).decode(),
                    "isBase64Encoded": True}
        if path.startswith("/cookies"):
            return {"statusCode": 201, "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
                    "headers": {"x-one": "1"}, "body": "made"}
        if path.startswith("/big"):
            return "x" * (7 * 1024 * 1024)
        return {"statusCode": 200, "headers": {"content-type": "application/json",
                                               "access-control-allow-origin": "http://fn.example"},
                "body": json.dumps(event)}
    """
)


def deploy(lam: Any, timeout: int = 3) -> str:
    name = unique_name("url")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": HANDLER})},
        Timeout=timeout,
    )
    wait_settled(lam, name)
    return name


def public(lam: Any, name: str, qualifier: str | None = None, **config: Any) -> str:
    """A NONE URL with the policy statement AWS requires for it; its FunctionUrl."""
    extra = {"Qualifier": qualifier} if qualifier else {}
    url: str = lam.create_function_url_config(
        FunctionName=name, AuthType="NONE", **extra, **config
    )["FunctionUrl"]
    lam.add_permission(
        FunctionName=name,
        StatementId="FunctionURLAllowPublicAccess",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
        **extra,
    )
    return url


@pytest.fixture(scope="module")
def fn(server: ServerProcess) -> str:
    lam = server.client()
    name = deploy(lam)
    lam.close()
    return name


@pytest.fixture(scope="module")
def url(server: ServerProcess, fn: str) -> str:
    lam = server.client()
    created = public(lam, fn)
    lam.close()
    return created


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # httpx resolves *.localhost through the system resolver, which may not: send to
    # 127.0.0.1 with the URL's Host instead, exactly what a browser puts on the wire.
    with httpx.Client(timeout=30) as client:
        yield client


def direct(url: str, path: str = "") -> tuple[str, str]:
    """(the loopback URL to send to, the Host header) for a function URL plus ``path``."""
    host = url.split("//", 1)[1].split("/", 1)[0]
    port = host.rsplit(":", 1)[1]
    return f"http://127.0.0.1:{port}/{path.lstrip('/')}", host


def call(
    http: httpx.Client, url: str, path: str = "", method: str = "GET", **kw: Any
) -> httpx.Response:
    target, host = direct(url, path)
    extra = kw.pop("headers", {})
    headers = [("host", host), *(extra.items() if isinstance(extra, dict) else extra)]
    return http.request(method, target, headers=headers, **kw)


def test_event_seen_by_the_function(http: httpx.Client, url: str, server: ServerProcess) -> None:
    response = call(
        http,
        url,
        "/some/path?b=2&a=1&a=x%20y",
        "POST",
        content=b'{"k": "v"}',
        headers=[
            ("content-type", "application/json"),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("cookie", "c1=v1; c2=v2"),
            ("user-agent", "test/echo"),
        ],
    )
    assert response.status_code == 200, response.text
    event = response.json()
    url_id = url.split("//")[1].split(".")[0]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == ("/some/path", "b=2&a=1&a=x%20y")
    assert event["queryStringParameters"] == {"a": "1,x y", "b": "2"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert (event["body"], event["isBase64Encoded"]) == ('{"k": "v"}', False)
    ctx = event["requestContext"]
    assert (ctx["apiId"], ctx["domainPrefix"]) == (url_id, url_id)
    assert ctx["domainName"] == f"{url_id}.lambda-url.us-east-1.localhost"
    assert ctx["http"] == {
        "method": "POST",
        "path": "/some/path",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "test/echo",
    }
    assert (ctx["stage"], ctx["routeKey"], ctx["accountId"]) == (
        "$default",
        "$default",
        "anonymous",
    )
    assert ctx["requestId"] == response.headers["x-amzn-requestid"]
    assert isinstance(ctx["timeEpoch"], int) and ctx["time"].endswith(" +0000")
    assert "authorizer" not in ctx


def test_binary_request_body_is_base64(http: httpx.Client, url: str) -> None:
    data = bytes(range(256))
    event = call(
        http, url, "/", "PUT", content=data, headers={"content-type": "application/octet-stream"}
    ).json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == data
    form = call(
        http,
        url,
        "/",
        "POST",
        content=b"--x\r\n",
        headers={"content-type": "multipart/form-data; boundary=x"},
    ).json()
    assert form["isBase64Encoded"] is True
    empty = call(http, url, "/").json()
    assert "body" not in empty and empty["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("returned", "body"),
    [
        ({"hello": "world"}, '{"hello":"world"}'),
        ("hello", "hello"),
        (["hello", 3, True], '["hello",3,true]'),
        (3, "3"),
        (3.1, "3.1"),
        (True, "true"),
        ({"statusCode": 200, "body": "body123"}, "body123"),
        ({"statusCode": 200, "body": '{"hello": "world"}'}, '{"hello": "world"}'),
    ],
)
def test_plain_and_structured_results(
    http: httpx.Client, url: str, returned: Any, body: str
) -> None:
    """As AWS answered for each in TestLambdaURL::test_lambda_url_invocation."""
    response = call(http, url, "/return", "POST", content=json.dumps(returned).encode(),
                    headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == body
    assert response.headers["content-length"] == str(len(body.encode()))


def test_structured_status_headers_and_string_status(http: httpx.Client, url: str) -> None:
    answer = {"statusCode": 201, "headers": {"Content-Type": "application/json", "My-Custom-Header": "Custom Value"},
              "body": json.dumps({"message": "hello-world"})}  # fmt: skip
    response = call(http, url, "/return", "POST", content=json.dumps(answer).encode(),
                    headers={"content-type": "application/json"})  # fmt: skip
    assert (response.status_code, response.json()) == (201, {"message": "hello-world"})
    assert response.headers["my-custom-header"] == "Custom Value"
    teapot = {"statusCode": "418", "body": "i'm a teapot"}
    response = call(http, url, "/return", "POST", content=json.dumps(teapot).encode(),
                    headers={"content-type": "application/json"})  # fmt: skip
    assert (response.status_code, response.text) == (418, "i'm a teapot")


def test_binary_response_and_cookies(http: httpx.Client, url: str) -> None:
    response = call(http, url, "/binary")
    assert response.headers["content-type"] == "image/png"
    assert response.content == bytes(range(256))
    response = call(http, url, "/cookies")
    assert (response.status_code, response.text, response.headers["x-one"]) == (201, "made", "1")
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]


def test_path_form_and_curl(url: str, server: ServerProcess) -> None:
    url_id = url.split("//")[1].split(".")[0]
    path_form = f"{server.endpoint}/lambda-url/{url_id}/deep/er?q=1"
    out = subprocess.run(["curl", "-sS", "-H", "x-from: curl", path_form], capture_output=True,
                         text=True, timeout=30, check=True)  # fmt: skip
    event = json.loads(out.stdout)
    assert (event["rawPath"], event["rawQueryString"]) == ("/deep/er", "q=1")
    assert event["headers"]["x-from"] == "curl"
    # curl resolves *.localhost to loopback itself: the URL exactly as returned.
    out = subprocess.run(["curl", "-sS", f"{url}hosted"], capture_output=True, text=True,
                         timeout=30, check=True)  # fmt: skip
    assert json.loads(out.stdout)["rawPath"] == "/hosted"


def test_no_such_url(http: httpx.Client, url: str) -> None:
    other = url.replace(url.split("//")[1].split(".")[0], "0123456789abcdefghijklmnopqrstuv")
    response = call(http, other)
    assert (response.status_code, response.text) == (403, '{"Message":null}')
    assert response.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert response.headers["content-type"] == "application/json"


def test_none_auth_needs_the_public_statement(
    http: httpx.Client, server: ServerProcess, fn: str
) -> None:
    lam = server.client()
    name = deploy(lam)
    created = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    refused = call(http, created)
    assert refused.status_code == 403
    assert refused.json() == {
        "Message": "Forbidden. For troubleshooting Function URL authorization issues, "
        "see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
    }
    assert refused.headers["x-amzn-errortype"] == "AccessDeniedException"
    lam.add_permission(FunctionName=name, StatementId="pub", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")  # fmt: skip
    assert call(http, created).status_code == 200
    lam.close()


def test_alias_url_invokes_the_alias_and_goes_with_it(
    http: httpx.Client, server: ServerProcess, fn: str
) -> None:
    lam = server.client()
    lam.publish_version(FunctionName=fn)
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    aliased = public(lam, fn, "live")
    assert call(http, aliased).status_code == 200
    lam.delete_alias(FunctionName=fn, Name="live")
    # The config went with the alias; the cached copy lives at most a second.
    deadline = threading.Event()
    for _ in range(40):
        if call(http, aliased).status_code == 403:
            break
        deadline.wait(0.1)
    assert call(http, aliased).status_code == 403
    lam.close()


def _signed(
    url: str, path: str, access_key: str, secret: str, method: str = "GET", body: bytes = b""
) -> httpx.Request:
    request = AWSRequest(method=method, url=url.rstrip("/") + path, data=body)
    SigV4Auth(Credentials(access_key, secret), "lambda", "us-east-1").add_auth(request)
    target, host = direct(url, path)
    headers = dict(request.headers.items())
    headers["host"] = host
    return httpx.Request(method, target, headers=headers, content=body)


def test_aws_iam_signed_unsigned_and_foreign(http: httpx.Client, server: ServerProcess) -> None:
    lam = server.client()
    name = deploy(lam)
    iam = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    assert call(http, iam).status_code == 403  # unsigned
    bad = _signed(iam, "/x", server.access_key_id, "wrong-secret")
    assert http.send(bad).status_code == 403
    own = http.send(
        _signed(iam, "/x?y=1", server.access_key_id, server.secret_access_key, "POST", b"hi")
    )
    assert own.status_code == 200, own.text
    event = own.json()
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == server.access_key_id
    assert event["requestContext"]["authorizer"]["iam"]["accountId"] == "000000000000"
    assert event["requestContext"]["accountId"] == "000000000000"

    added = subprocess.run(
        [".venv/bin/lambdaplane", "keys", "add", "--account-id", "111122223333", "--user", "bob",
         "--json", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    key = json.loads(added.stdout)
    foreign = _signed(iam, "/f", key["AccessKeyId"], key["SecretAccessKey"])
    assert http.send(foreign).status_code == 403  # no statement grants it yet
    lam.add_permission(FunctionName=name, StatementId="bob", Action="lambda:InvokeFunctionUrl",
                       Principal="111122223333", FunctionUrlAuthType="AWS_IAM")  # fmt: skip
    allowed = http.send(_signed(iam, "/f", key["AccessKeyId"], key["SecretAccessKey"]))
    assert allowed.status_code == 200, allowed.text
    caller = allowed.json()["requestContext"]["authorizer"]["iam"]
    assert caller["userArn"] == "arn:aws:iam::111122223333:user/bob"
    assert caller["accountId"] == "111122223333"
    assert allowed.json()["requestContext"]["accountId"] == "000000000000"
    lam.close()


def test_cors_preflight_and_actual(http: httpx.Client, server: ServerProcess) -> None:
    lam = server.client()
    name = deploy(lam)
    cors = {"AllowOrigins": ["http://app.example"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-custom"], "ExposeHeaders": ["x-one"], "MaxAge": 300,
            "AllowCredentials": True}  # fmt: skip
    with_cors = public(lam, name, Cors=cors)
    pre = call(http, with_cors, "/", "OPTIONS", headers={
        "origin": "http://app.example", "access-control-request-method": "POST",
        "access-control-request-headers": "x-custom"})  # fmt: skip
    assert pre.status_code == 200 and pre.content == b""
    assert pre.headers["access-control-allow-origin"] == "http://app.example"
    assert pre.headers["access-control-allow-methods"] == "GET,POST"
    assert pre.headers["access-control-allow-headers"] == "x-custom"
    assert pre.headers["access-control-max-age"] == "300"
    assert pre.headers["access-control-allow-credentials"] == "true"
    stranger = call(http, with_cors, "/", "OPTIONS", headers={
        "origin": "http://evil.example", "access-control-request-method": "POST"})  # fmt: skip
    assert stranger.status_code == 200
    assert "access-control-allow-origin" not in stranger.headers
    actual = call(http, with_cors, "/", headers={"origin": "http://app.example"})
    assert (
        actual.headers["access-control-allow-origin"] == "http://app.example"
    )  # not the function's
    assert actual.headers["access-control-expose-headers"] == "x-one"
    # Without CORS config, OPTIONS reaches the function, and its own headers stand.
    plain = public(lam, deploy(lam))
    reached = call(http, plain, "/", "OPTIONS", headers={
        "origin": "http://app.example", "access-control-request-method": "POST"})  # fmt: skip
    assert reached.json()["requestContext"]["http"]["method"] == "OPTIONS"
    assert reached.headers["access-control-allow-origin"] == "http://fn.example"
    lam.close()


def test_function_error_timeout_and_oversize(http: httpx.Client, url: str) -> None:
    raised = call(http, url, "/raise")
    assert (raised.status_code, raised.text) == (502, "Internal Server Error")
    timed_out = call(http, url, "/sleep?s=10")
    assert (timed_out.status_code, timed_out.text) == (502, "Internal Server Error")
    too_big = call(http, url, "/", "POST", content=b"x" * (6 * 1024 * 1024 + 1),
                   headers={"content-type": "text/plain"})  # fmt: skip
    assert too_big.status_code == 413
    big_answer = call(http, url, "/big")
    assert (big_answer.status_code, big_answer.text) == (502, "Internal Server Error")


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("tight"), "--account-concurrency", "1")
    yield srv
    assert srv.stop() == 0, srv.log()


def test_throttled_while_the_only_slot_is_held(http: httpx.Client, tight: ServerProcess) -> None:
    lam = tight.client()
    held_url = public(lam, deploy(lam, timeout=30))
    quick = {"content": b'"quick"', "headers": {"content-type": "application/json"}}
    assert call(http, held_url, "/return", "POST", **quick).status_code == 200  # warm
    held_status: list[int] = []

    def hold() -> None:
        with httpx.Client(timeout=60) as client:
            held_status.append(call(client, held_url, "/sleep?s=3").status_code)

    throttled = None
    while throttled is None and len(held_status) < 5:
        holder = threading.Thread(target=hold)
        holder.start()
        while holder.is_alive():  # until one lands while the slow call holds the only slot
            response = call(http, held_url, "/return", "POST", **quick)
            if response.status_code == 429:
                throttled = response
                break
        holder.join()
    assert throttled is not None, held_status
    assert throttled.json() == {"Message": "Rate Exceeded."}
    assert throttled.headers["x-amzn-errortype"] == "TooManyRequestsException"
    lam.close()


def test_dedicated_url_port(tmp_path_factory: pytest.TempPathFactory, http: httpx.Client) -> None:
    from lambdaplane.testing.server import free_port

    port = free_port()
    srv = start_server(tmp_path_factory.mktemp("urlport"), "--url-port", str(port))
    try:
        lam = srv.client()
        created = public(lam, deploy(lam))
        assert created.endswith(f".localhost:{port}/")
        assert call(http, created, "/via-url-port").json()["rawPath"] == "/via-url-port"
        # The API port serves the same URL by Host too.
        on_api = created.replace(f":{port}/", f":{srv.port}/")
        assert call(http, on_api, "/via-api").json()["rawPath"] == "/via-api"
        lam.close()
    finally:
        assert srv.stop() == 0, srv.log()


# -- RESPONSE_STREAM ---------------------------------------------------------------------

NODE_STREAM = """
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  if (event.rawPath === '/fail') {
    throw new Error('failed before any byte');
  }
  if (event.rawPath === '/raw') {
    responseStream.setContentType('text/plain');
    responseStream.write('raw ');
    responseStream.end('body');
    return;
  }
  const http = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: {'content-type': 'text/plain', 'x-custom': 'yes'},
    cookies: ['a=1', 'b=2'],
  });
  for (const word of ['one ', 'two ', 'three']) {
    http.write(word);
    await pause(50);
  }
  http.end();
});
"""


@pytest.fixture(scope="module")
def node_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose Node.js runtime is built from this checkout (with streaming)."""
    import os

    from lambdaplane.service.runtime_install import install_runtime
    from lambdaplane.service.runtimes import find_interpreters
    from lambdaplane.settings import default_runtimes_dir

    nodes = [r for r in find_interpreters() if r.family == "nodejs"]
    if not nodes:
        pytest.skip("no `node` on this host")
    runtimes = tmp_path_factory.mktemp("runtimes")
    installed = default_runtimes_dir()
    for tree in installed.iterdir() if installed.is_dir() else ():
        if not tree.name.startswith(("nodejs", ".")):
            (runtimes / tree.name).symlink_to(tree)
    for runtime in nodes:
        install_runtime(runtime, runtimes, lambda _line: None)
    before = os.environ.get("LAMBDAPLANE_RUNTIMES_DIR")
    os.environ["LAMBDAPLANE_RUNTIMES_DIR"] = str(runtimes)
    try:
        srv = start_server(tmp_path_factory.mktemp("node"))
    finally:
        if before is None:
            del os.environ["LAMBDAPLANE_RUNTIMES_DIR"]
        else:
            os.environ["LAMBDAPLANE_RUNTIMES_DIR"] = before
    srv.node_runtime = sorted(r.id for r in nodes)[-1]  # type: ignore[attr-defined]
    yield srv
    assert srv.stop() == 0, srv.log()


def test_response_stream_url(http: httpx.Client, node_server: ServerProcess) -> None:
    lam = node_server.client()
    name = unique_name("urlstream")
    lam.create_function(
        FunctionName=name,
        Runtime=node_server.node_runtime,  # type: ignore[attr-defined]
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": NODE_STREAM})},
        Timeout=10,
    )
    wait_settled(lam, name)
    streaming = public(lam, name, InvokeMode="RESPONSE_STREAM")
    target, host = direct(streaming, "/")
    with http.stream("GET", target, headers={"host": host}) as response:
        assert response.status_code == 201
        assert response.headers["x-custom"] == "yes"
        assert response.headers["content-type"] == "text/plain"
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert response.headers.get("transfer-encoding") == "chunked"
        pieces = [piece for piece in response.iter_raw() if piece]
    assert b"".join(pieces) == b"one two three"
    raw = call(http, streaming, "/raw")
    assert (raw.status_code, raw.text) == (200, "raw body")
    assert raw.headers["content-type"].startswith("text/plain")
    failed = call(http, streaming, "/fail")
    assert (failed.status_code, failed.text) == (502, "Internal Server Error")
    lam.close()


def test_buffered_function_on_a_streaming_url(http: httpx.Client, server: ServerProcess) -> None:
    """Without the HTTP integration prelude the function's JSON is the body, as on AWS."""
    lam = server.client()
    name = deploy(lam)
    streaming = public(lam, name, InvokeMode="RESPONSE_STREAM")
    response = call(http, streaming, "/echo-path")
    assert response.status_code == 200
    assert json.loads(json.loads(response.text)["body"])["rawPath"] == "/echo-path"
    lam.close()
