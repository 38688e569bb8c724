"""Go on ``provided.al2023``, as AWS runs it: a static ``bootstrap`` in the function's zip
that drives the Runtime API itself (here with net/http only, no AWS library).

The binary is built once per test session with the host's ``go`` (no network, no cgo).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from typing import Any

import pytest

from lambdaplane.testing import make_zip
from tests.integration.helpers import unique_name, wait_settled

BOOTSTRAP_GO = r"""
// A custom runtime that speaks the Runtime API directly, as AWS's docs describe it.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

var api = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

// Differs per process: tells a warm environment from a cold one.
var boot = strconv.FormatInt(time.Now().UnixNano(), 36)

type event struct {
	Print []string `json:"print"`
	Sleep float64  `json:"sleep"`
	Fail  string   `json:"fail"`
}

func post(url string, errorType string, body interface{}) {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	if errorType != "" {
		req.Header.Set("Lambda-Runtime-Function-Error-Type", errorType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "post failed:", err)
		os.Exit(1)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func failure(message, errorType string) map[string]interface{} {
	return map[string]interface{}{
		"errorMessage": message,
		"errorType":    errorType,
		"stackTrace":   []string{"main.handle (bootstrap.go)"},
	}
}

func main() {
	if message := os.Getenv("FAIL_INIT"); message != "" {
		post(api+"/init/error", "Runtime.InitFailed", failure(message, "Runtime.InitFailed"))
		os.Exit(1)
	}
	fmt.Println("go runtime initialised")
	for {
		resp, err := http.Get(api + "/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next failed:", err)
			os.Exit(1)
		}
		payload, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var ev event
		json.Unmarshal(payload, &ev)
		for _, line := range ev.Print {
			fmt.Println(line)
		}
		if ev.Sleep > 0 {
			time.Sleep(time.Duration(ev.Sleep * float64(time.Second)))
		}
		if ev.Fail != "" {
			post(api+"/invocation/"+id+"/error", "Handler.Failed", failure(ev.Fail, "Handler.Failed"))
			continue
		}
		post(api+"/invocation/"+id+"/response", "", map[string]interface{}{
			"event":      json.RawMessage(payload),
			"requestId":  id,
			"deadlineMs": resp.Header.Get("Lambda-Runtime-Deadline-Ms"),
			"arn":        resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"),
			"traceId":    resp.Header.Get("Lambda-Runtime-Trace-Id"),
			"handler":    os.Getenv("_HANDLER"),
			"function":   os.Getenv("AWS_LAMBDA_FUNCTION_NAME"),
			"boot":       boot,
		})
	}
}
"""


@pytest.fixture(scope="session")
def go_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bootstrap binary, built once per session: static, linux, standard library only."""
    go = shutil.which("go") or shutil.which("/usr/bin/go")
    if go is None:
        pytest.skip("no Go toolchain (`go`) on this host: install Debian's golang-go")
    work = tmp_path_factory.mktemp("go-bootstrap")
    (work / "go.mod").write_text("module bootstrap\n\ngo 1.19\n")
    (work / "main.go").write_text(BOOTSTRAP_GO)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "GOCACHE": str(work / "cache"),
        "GOPATH": str(work / "gopath"),
        "CGO_ENABLED": "0",
        "GOOS": "linux",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
    }
    build = subprocess.run(
        [go, "build", "-trimpath", "-ldflags=-s -w", "-o", "bootstrap", "."],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    return (work / "bootstrap").read_bytes()


def deploy(lam: Any, role: str, binary: bytes, **extra: Any) -> str:
    name = unique_name("go")
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=role,
        Handler="ignored.by.the.bootstrap",
        Code={"ZipFile": make_zip({"bootstrap": binary}, mode=0o755)},
        Timeout=extra.pop("Timeout", 10),
        **extra,
    )
    wait_settled(lam, name)
    return name


def call(lam: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_echo_with_runtime_api_headers(lam: Any, role: str, go_bootstrap: bytes) -> None:
    name = deploy(lam, role, go_bootstrap, Timeout=9)
    before_ms = int(time.time() * 1000)
    response, body = call(lam, name, {"hello": "go", "n": [1, 2]})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert body["event"] == {"hello": "go", "n": [1, 2]}
    assert body["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    deadline_ms = int(body["deadlineMs"])
    assert before_ms + 8000 < deadline_ms <= int(time.time() * 1000) + 9000
    assert body["traceId"].startswith("Root=1-")
    assert body["handler"] == "ignored.by.the.bootstrap" and body["function"] == name
    _, again = call(lam, name, {"n": 2})
    assert again["boot"] == body["boot"]  # the same warm process
    assert again["requestId"] != body["requestId"]


def test_error_is_unhandled_with_posted_document(lam: Any, role: str, go_bootstrap: bytes) -> None:
    name = deploy(lam, role, go_bootstrap)
    _, first = call(lam, name)
    response, body = call(lam, name, {"fail": "no such order"})
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorMessage": "no such order",
        "errorType": "Handler.Failed",
        "stackTrace": ["main.handle (bootstrap.go)"],
    }
    _, after = call(lam, name)
    assert after["boot"] == first["boot"]  # an error the runtime reports keeps it warm


def test_init_error(lam: Any, role: str, go_bootstrap: bytes) -> None:
    name = deploy(lam, role, go_bootstrap, Environment={"Variables": {"FAIL_INIT": "no config"}})
    response, body = call(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InitFailed"
    assert body["errorMessage"] == "no config"


def test_timeout(lam: Any, role: str, go_bootstrap: bytes) -> None:
    name = deploy(lam, role, go_bootstrap, Timeout=1)
    _, first = call(lam, name)
    response, body = call(lam, name, {"sleep": 5})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    _, after = call(lam, name)
    assert after["boot"] != first["boot"]  # the timed-out environment was destroyed


def test_stdout_lines_in_tail(lam: Any, role: str, go_bootstrap: bytes) -> None:
    name = deploy(lam, role, go_bootstrap)
    response, _ = call(lam, name, {"print": ["first line", "second line"]}, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    lines = tail.splitlines()
    assert "go runtime initialised" in lines  # init output is in the first invocation's tail
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId: "))
    assert lines[start + 1 : start + 3] == ["first line", "second line"]
    assert lines[start + 3].startswith("END RequestId: ")
    report = lines[start + 4]
    assert report.startswith("REPORT RequestId: ") and "Init Duration: " in report
