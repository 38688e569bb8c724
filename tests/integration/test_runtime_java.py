"""Java functions through boto3: lambdaplane's Java runtime on the host's JDKs, in real sandboxes.

The functions are compiled here, with the JDK's javac, against the runtime jar that
``lambdaplane install-runtimes`` built, and deployed as AWS documents Java packages: classes
at the root of the zip (a jar is such a zip), or jars under ``lib/``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.languages.java import RUNTIME_JAR
from lambdaplane.service.runtimes import INSTALLED_MARKER, find_javas
from lambdaplane.settings import default_runtimes_dir
from lambdaplane.testing import make_zip
from tests.integration.helpers import unique_name, wait_settled

JAVA = "java17"
INSTALLED = [
    r.id
    for r in find_javas(":".join(["/usr/bin", "/bin"]), {})
    if (default_runtimes_dir() / r.id / INSTALLED_MARKER).exists()
]
pytestmark = pytest.mark.skipif(
    JAVA not in INSTALLED, reason="java17 is not installed (lambdaplane install-runtimes)"
)

SOURCES = {
    "example/Echo.java": """
        package example;

        import com.amazonaws.services.lambda.runtime.Context;
        import com.amazonaws.services.lambda.runtime.RequestHandler;
        import java.util.LinkedHashMap;
        import java.util.Map;

        public class Echo implements RequestHandler<Map<String, Object>, Map<String, Object>> {
            // Differs per environment: tells warm from cold.
            private static final String BOOT = Long.toHexString(System.nanoTime());

            @Override
            public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
                System.out.println("stdout line from " + context.getFunctionName());
                context.getLogger().log("logger line for " + context.getAwsRequestId());
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("event", event);
                out.put("boot", BOOT);
                out.put("requestId", context.getAwsRequestId());
                out.put("functionName", context.getFunctionName());
                out.put("functionVersion", context.getFunctionVersion());
                out.put("arn", context.getInvokedFunctionArn());
                out.put("memory", context.getMemoryLimitInMB());
                out.put("logGroup", context.getLogGroupName());
                out.put("logStream", context.getLogStreamName());
                out.put("remaining", context.getRemainingTimeInMillis());
                out.put("identity", context.getIdentity());
                out.put("clientCustom",
                        context.getClientContext() == null ? null : context.getClientContext().getCustom());
                out.put("executionEnv", System.getenv("AWS_EXECUTION_ENV"));
                out.put("heapMb", Runtime.getRuntime().maxMemory() >> 20);
                out.put("javaVersion", System.getProperty("java.specification.version"));
                return out;
            }
        }
    """,
    "example/Pojo.java": """
        package example;

        import com.amazonaws.services.lambda.runtime.Context;
        import java.util.List;

        public class Pojo {
            public static class Address {
                public String city;
                public int zip;
            }

            public static class Person {
                private String name;
                private int age;
                private List<String> tags;
                public Address address;

                public void setName(String name) { this.name = name; }
                public void setAge(int age) { this.age = age; }
                public void setTags(List<String> tags) { this.tags = tags; }
            }

            public static class Greeting {
                private final String message;
                private final int tagCount;
                private final List<Address> places;
                private final String missing = null;
                private final boolean adult;

                Greeting(String message, int tagCount, List<Address> places, boolean adult) {
                    this.message = message;
                    this.tagCount = tagCount;
                    this.places = places;
                    this.adult = adult;
                }

                public String getMessage() { return message; }
                public int getTagCount() { return tagCount; }
                public List<Address> getPlaces() { return places; }
                public String getMissing() { return missing; }
                public boolean isAdult() { return adult; }
                public String getURL() { return "https://example.com/" + message.length(); }
            }

            public Greeting greet(Person person, Context context) {
                return new Greeting("Hello, " + person.name, person.tags.size(),
                        List.of(person.address), person.age >= 18);
            }
        }
    """,
    "example/Upper.java": """
        package example;

        public class Upper {
            public String upper(String input) {
                return input.toUpperCase();
            }
        }
    """,
    "example/Reverse.java": """
        package example;

        import com.amazonaws.services.lambda.runtime.Context;
        import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
        import java.io.IOException;
        import java.io.InputStream;
        import java.io.OutputStream;

        public class Reverse implements RequestStreamHandler {
            @Override
            public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
                byte[] bytes = in.readAllBytes();
                for (int i = bytes.length - 1; i >= 0; i--) {
                    out.write(bytes[i]);
                }
            }
        }
    """,
    "example/Fail.java": """
        package example;

        import com.amazonaws.services.lambda.runtime.Context;
        import com.amazonaws.services.lambda.runtime.RequestHandler;
        import java.util.Map;

        public class Fail implements RequestHandler<Map<String, String>, String> {
            @Override
            public String handleRequest(Map<String, String> event, Context context) {
                throw new IllegalStateException("boom from " + event.get("who"));
            }
        }
    """,
    "example/BadInit.java": """
        package example;

        import com.amazonaws.services.lambda.runtime.Context;
        import com.amazonaws.services.lambda.runtime.RequestHandler;

        public class BadInit implements RequestHandler<Object, Object> {
            public BadInit() {
                throw new IllegalArgumentException("no configuration");
            }

            @Override
            public Object handleRequest(Object event, Context context) {
                return event;
            }
        }
    """,
    "example/Sleep.java": """
        package example;

        public class Sleep {
            public String handleRequest(Object event) throws InterruptedException {
                System.out.println("going to sleep");
                Thread.sleep(30_000);
                return "awake";
            }
        }
    """,
}


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every class of SOURCES, compiled once by the java17 JDK's javac: path -> bytes."""
    root = tmp_path_factory.mktemp("java")
    for path, text in SOURCES.items():
        (root / "src" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / path).write_text(textwrap.dedent(text))
    java = next(r for r in find_javas("/usr/bin:/bin", {}) if r.id == JAVA)
    assert java.executable is not None
    javac = Path(java.executable).with_name("javac")
    runtime_jar = default_runtimes_dir() / JAVA / RUNTIME_JAR
    sources = [str(root / "src" / p) for p in SOURCES]
    subprocess.run(
        [str(javac), "--release", "17", "-cp", str(runtime_jar), "-d", str(root / "out"), *sources],
        check=True,
        capture_output=True,
    )
    out = root / "out"
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.class")}


def package(classes: dict[str, bytes], *names: str) -> dict[str, str | bytes]:
    """The classes of ``names`` (and their nested classes), as files at the zip's root."""
    prefixes = tuple(f"example/{name}" for name in names)
    return {
        path: data
        for path, data in classes.items()
        if path.removesuffix(".class").split("$")[0] in prefixes
    }


def deploy(lam: Any, role: str, files: dict[str, str | bytes], handler: str, **extra: Any) -> str:
    name = unique_name("java")
    lam.create_function(
        FunctionName=name,
        Runtime=extra.pop("Runtime", JAVA),
        Role=role,
        Handler=handler,
        Code={"ZipFile": make_zip(files)},
        Timeout=extra.pop("Timeout", 10),
        **extra,
    )
    wait_settled(lam, name)
    return name


def call(lam: Any, name: str, payload: bytes = b"{}", **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=payload, **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def tail_of(response: dict[str, Any]) -> list[str]:
    lines: list[str] = base64.b64decode(response["LogResult"]).decode().splitlines()
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("runtime", INSTALLED)
def test_echo_event_context_and_logs(
    lam: Any, role: str, classes: dict[str, bytes], runtime: str
) -> None:
    # A jar is a zip: classes at the root, with the jar's manifest beside them.
    files = {"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\n\r\n", **package(classes, "Echo")}
    name = deploy(lam, role, files, "example.Echo", Runtime=runtime, MemorySize=256, Timeout=7)
    custom = base64.b64encode(json.dumps({"custom": {"k": "v"}, "client": {}, "env": {}}).encode())
    first, body = call(
        lam, name, b'{"a": [1, 2.5, "x"], "b": {"c": null}}', LogType="Tail",
        ClientContext=custom.decode(),
    )  # fmt: skip
    assert first["StatusCode"] == 200 and "FunctionError" not in first, body
    assert body["event"] == {"a": [1, 2.5, "x"], "b": {"c": None}}
    assert body["functionName"] == name and body["functionVersion"] == "$LATEST"
    assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert body["memory"] == 256
    assert body["logGroup"] == f"/aws/lambda/{name}" and "[$LATEST]" in body["logStream"]
    assert 0 < body["remaining"] <= 7000
    assert body["identity"] is None and body["clientCustom"] == {"k": "v"}
    assert body["executionEnv"] == f"AWS_Lambda_{runtime}"
    assert body["javaVersion"] == runtime.removeprefix("java")
    assert 180 <= body["heapMb"] <= 218  # 85% of 256 MB, less a survivor space
    tail = tail_of(first)
    assert f"stdout line from {name}" in tail
    assert f"logger line for {body['requestId']}" in tail
    assert any(line.startswith("REPORT") and "Init Duration" in line for line in tail)

    again, warm = call(lam, name, b'{"n": 2}')
    assert warm["boot"] == body["boot"] and warm["event"] == {"n": 2}
    assert warm["requestId"] == again["ResponseMetadata"]["RequestId"]


@pytest.mark.slow
def test_classes_in_a_lib_jar(lam: Any, role: str, classes: dict[str, bytes]) -> None:
    jar = make_zip(dict(package(classes, "Echo")))
    name = deploy(lam, role, {"lib/echo.jar": jar}, "example.Echo::handleRequest")
    response, body = call(lam, name, b'{"from": "lib"}')
    assert "FunctionError" not in response, body
    assert body["event"] == {"from": "lib"}


@pytest.mark.slow
def test_pojo_in_and_out(lam: Any, role: str, classes: dict[str, bytes]) -> None:
    name = deploy(lam, role, package(classes, "Pojo"), "example.Pojo::greet")
    event = {
        "name": "Ada",
        "age": 36,
        "tags": ["math", "engines"],
        "address": {"city": "London", "zip": 12345},
        "unknown": {"ignored": True},
    }
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    raw = response["Payload"].read()
    assert "FunctionError" not in response, raw
    # Declared fields first, then getter-only properties; null properties are left out.
    assert raw == (
        b'{"message":"Hello, Ada","tagCount":2,"places":[{"city":"London","zip":12345}],'
        b'"adult":true,"URL":"https://example.com/10"}'
    )


@pytest.mark.slow
def test_string_handler_and_stream_handler(lam: Any, role: str, classes: dict[str, bytes]) -> None:
    upper = deploy(lam, role, package(classes, "Upper"), "example.Upper::upper")
    assert call(lam, upper, b'"hello java"')[1] == "HELLO JAVA"
    reverse = deploy(lam, role, package(classes, "Reverse"), "example.Reverse")
    response = lam.invoke(FunctionName=reverse, Payload=b'"stressed"')
    assert response["Payload"].read() == b'"desserts"'


@pytest.mark.slow
def test_exception_is_an_unhandled_error(lam: Any, role: str, classes: dict[str, bytes]) -> None:
    name = deploy(lam, role, package(classes, "Fail"), "example.Fail")
    response, body = call(lam, name, b'{"who": "tests"}', LogType="Tail")
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "java.lang.IllegalStateException"
    assert body["errorMessage"] == "boom from tests"
    assert body["stackTrace"][0].startswith("example.Fail.handleRequest(Fail.java:")
    assert not any("lambdaplane" in frame for frame in body["stackTrace"])
    tail = tail_of(response)
    assert "boom from tests: java.lang.IllegalStateException" in tail
    assert "java.lang.IllegalStateException: boom from tests" in tail
    # The environment survives a handler's exception.
    again, _ = call(lam, name, b'{"who": "again"}', LogType="Tail")
    assert not any(line.startswith("INIT_START") for line in tail_of(again))


@pytest.mark.slow
def test_class_not_found(lam: Any, role: str, classes: dict[str, bytes]) -> None:
    name = deploy(lam, role, package(classes, "Echo"), "example.Missing")
    response, body = call(lam, name)
    assert response["FunctionError"] == "Unhandled"
    # As AWS's runtime reports it: no stack trace in the response, the trace in the log.
    assert body == {
        "errorMessage": "Class not found: example.Missing",
        "errorType": "java.lang.ClassNotFoundException",
    }


@pytest.mark.slow
def test_constructor_failure_is_an_init_error(
    lam: Any, role: str, classes: dict[str, bytes]
) -> None:
    name = deploy(lam, role, package(classes, "BadInit"), "example.BadInit")
    response, body = call(lam, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorMessage": "no configuration",
        "errorType": "java.lang.IllegalArgumentException",
    }
    assert "no configuration: java.lang.IllegalArgumentException" in tail_of(response)


@pytest.mark.slow
def test_timeout(lam: Any, role: str, classes: dict[str, bytes]) -> None:
    name = deploy(lam, role, package(classes, "Sleep"), "example.Sleep::handleRequest", Timeout=1)
    response, body = call(lam, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "going to sleep" in tail_of(response)
