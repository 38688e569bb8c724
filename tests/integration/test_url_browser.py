"""A real browser calls a function URL from another origin: CORS as Chromium enforces it.

Headless Chromium (Debian's, driven by Playwright) loads a page served from one origin
(``http://127.0.0.1:<page-port>``) whose script ``fetch()``es the function URL on
another (``http://<url-id>.lambda-url.us-east-1.localhost:<api-port>``; Chromium
resolves ``*.localhost`` to loopback itself). With CORS configured on the URL the
fetch succeeds and the script can read the body and the exposed header; without it,
or from an origin the configuration does not allow, the browser blocks the response.
"""

from __future__ import annotations

import http.server
import shutil
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import unique_name, wait_settled

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed"
)

HANDLER = textwrap.dedent(
    """
    import json

    def handler(event, context):
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json", "x-served-by": "lambdaplane"},
            "body": json.dumps({"method": event["requestContext"]["http"]["method"],
                                "custom": event["headers"].get("x-custom")}),
        }
    """
)

PAGE = "<!doctype html><html><head><title>page</title></head><body>cross-origin</body></html>"

# The page's script: the outcome of a fetch, as data (a blocked fetch is a TypeError).
FETCH = """
async ([url, init]) => {
  try {
    const response = await fetch(url, init);
    return {ok: true, status: response.status, body: await response.text(),
            servedBy: response.headers.get("x-served-by")};
  } catch (error) {
    return {ok: false, error: String(error)};
  }
}
"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """A plain web server on its own port: the origin the page comes from."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def function_url(lam: Any, role: str) -> tuple[str, str]:
    """A public (AuthType NONE) URL on a function that answers JSON; (name, url)."""
    name = unique_name("cors")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": HANDLER})},
    )
    wait_settled(lam, name)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(
        FunctionName=name,
        StatementId="public-url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    return name, url


def _fetch(browser: Any, origin: str, url: str, init: dict[str, Any] | None = None) -> Any:
    page = browser.new_page()
    try:
        page.goto(origin + "/")
        return page.evaluate(FETCH, [url, init or {}])
    finally:
        page.close()


def test_fetch_is_blocked_without_cors(
    server: ServerProcess, browser: Any, page_origin: str, function_url: tuple[str, str]
) -> None:
    _, url = function_url
    result = _fetch(browser, page_origin, url)
    assert result["ok"] is False, result
    assert "Failed to fetch" in result["error"]


def test_fetch_succeeds_with_cors(
    server: ServerProcess,
    lam: Any,
    browser: Any,
    page_origin: str,
    function_url: tuple[str, str],
) -> None:
    name, url = function_url
    lam.update_function_url_config(
        FunctionName=name,
        Cors={"AllowOrigins": [page_origin], "ExposeHeaders": ["x-served-by"]},
    )
    result = _fetch(browser, page_origin, url)
    assert result["ok"] is True, result
    assert result["status"] == 200
    assert result["body"] == '{"method": "GET", "custom": null}'
    assert result["servedBy"] == "lambdaplane"  # readable only because it is exposed


def test_preflight_allows_what_the_config_allows(
    server: ServerProcess,
    lam: Any,
    browser: Any,
    page_origin: str,
    function_url: tuple[str, str],
) -> None:
    """A PUT with a custom header needs a preflight: the platform answers it."""
    name, url = function_url
    put = {"method": "PUT", "headers": {"x-custom": "yes"}, "body": "{}"}
    lam.update_function_url_config(FunctionName=name, Cors={"AllowOrigins": [page_origin]})
    blocked = _fetch(browser, page_origin, url, put)
    assert blocked["ok"] is False, blocked  # PUT and x-custom are not allowed

    lam.update_function_url_config(
        FunctionName=name,
        Cors={
            "AllowOrigins": [page_origin],
            "AllowMethods": ["PUT"],
            "AllowHeaders": ["x-custom"],
            "MaxAge": 0,
        },
    )
    allowed = _fetch(browser, page_origin, url, put)
    assert allowed["ok"] is True, allowed
    assert allowed["body"] == '{"method": "PUT", "custom": "yes"}'


def test_another_origin_is_blocked(
    server: ServerProcess,
    lam: Any,
    browser: Any,
    page_origin: str,
    function_url: tuple[str, str],
) -> None:
    name, url = function_url
    lam.update_function_url_config(
        FunctionName=name, Cors={"AllowOrigins": ["https://elsewhere.example"]}
    )
    result = _fetch(browser, page_origin, url)
    assert result["ok"] is False, result

    lam.update_function_url_config(FunctionName=name, Cors={"AllowOrigins": ["*"]})
    assert _fetch(browser, page_origin, url)["ok"] is True
