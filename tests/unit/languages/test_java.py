"""The Java language: discovery, variables, command, install, and lambdaplane's Java runtime
driven through the real agent (no sandbox; the test plays the host)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.agent import wire
from lambdaplane.languages import java, registry
from lambdaplane.service.runtimes import Runtime, find_javas
from tests.unit.agent.harness import AGENT, Host, free_port

# A JDK of this host whose javac compiles the runtime and the test functions (17 or later:
# the functions use records).
JDK = next(
    (
        r
        for r in find_javas(os.environ.get("PATH", ""), os.environ)
        if java.major_version(r.id) >= 17 and Path(str(r.executable)).with_name("javac").exists()
    ),
    None,
)
needs_jdk = pytest.mark.skipif(JDK is None, reason="no JDK 17+ on this host")


def test_registered_as_the_java_family() -> None:
    assert registry()["java"] is java.LANGUAGE
    assert java.LANGUAGE.needs_runtime_dir


def test_environment_is_aws_java_runtimes() -> None:
    env = java.LANGUAGE.environment(Runtime("java21", "/usr/lib/jvm/jdk-21/bin/java"))
    assert env == {"AWS_EXECUTION_ENV": "AWS_Lambda_java21"}


def test_argv_starts_the_jvm_through_bootstrap(tmp_path: Path) -> None:
    host_jdk = Runtime("java25", "/usr/lib/jvm/jdk-25/bin/java", tmp_path)
    assert java.LANGUAGE.argv(host_jdk, "example.Hello::handle", tmp_path) == [
        "/bin/sh",
        "/var/runtime/bootstrap",
        "/usr/lib/jvm/jdk-25/bin/java",
        "-XX:+UseSerialGC",
        "--add-opens=java.base/java.io=ALL-UNNAMED",
        "-XX:+ErrorFileToStderr",
        "-XX:+TieredCompilation",
        "-XX:TieredStopAtLevel=1",
        "-classpath",
        "/var/runtime/lambdaplane-java-runtime.jar:/var/task:/var/task/lib/*:/opt/java/lib/*",
        "lambdaplane.runtime.Main",
        "example.Hello::handle",
    ]


def test_argv_uses_the_linked_image_and_java11_keeps_tiered_compilation(tmp_path: Path) -> None:
    (tmp_path / "jdk").mkdir()
    argv = java.LANGUAGE.argv(Runtime("java11", "/opt/jdk-11/bin/java", tmp_path), "h", tmp_path)
    assert argv[2] == "/var/runtime/jdk/bin/java"
    assert argv[3:5] == ["-XX:+UseSerialGC", "--add-opens=java.base/java.io=ALL-UNNAMED"]
    assert argv[5] == "-classpath"  # java11 keeps the JVM's tiered compilation


@pytest.mark.parametrize(
    ("memory", "heap"), [(128, "111411k"), (512, "445645k"), (10240, "8912896k")]
)
def test_bootstrap_gives_the_heap_85_percent_of_memory(
    tmp_path: Path, memory: int, heap: str
) -> None:
    out = subprocess.run(
        ["/bin/sh", str(java.BOOTSTRAP), "/bin/echo", "-Da=b", "Main"],
        env={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == f"-XX:MaxHeapSize={heap} -Da=b Main\n"


def test_bootstrap_runs_the_exec_wrapper(tmp_path: Path) -> None:
    wrapper = tmp_path / "wrapper"
    wrapper.write_text('#!/bin/sh\necho wrapped "$@"\n')
    wrapper.chmod(0o755)
    env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)}
    run = [str(java.BOOTSTRAP), "/usr/bin/java", "Main"]
    out = subprocess.run(["/bin/sh", *run], env=env, capture_output=True, text=True)
    assert out.stdout == "wrapped /usr/bin/java -XX:MaxHeapSize=445645k Main\n"
    wrapper.chmod(0o644)
    out = subprocess.run(["/bin/sh", *run], env=env, capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (126, f"{wrapper}: is not an executable\n")


def test_links_outside_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "java.security").symlink_to("/etc/java-17-openjdk/security/java.security")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "cacerts").symlink_to("/etc/ssl/certs/java/cacerts")
    (tmp_path / "lib" / "libz.so").symlink_to("/usr/lib/x86_64-linux-gnu/libz.so.1")
    (tmp_path / "lib" / "server").mkdir()
    (tmp_path / "lib" / "server" / "libjsig.so").symlink_to("../libjsig.so")
    assert java.links_outside(tmp_path) == [tmp_path / "conf" / "java.security"]


def _fake_jdk(root: Path, name: str, version: str | None, javac: bool = True) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    exe = home / "bin" / "java"
    exe.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\"' >&2\n")
    exe.chmod(0o755)
    if javac:
        (home / "bin" / "javac").write_text("#!/bin/sh\nexit 1\n")
    if version is not None and not name.startswith("jre"):
        (home / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    return exe


def test_find_javas_offers_aws_majors_path_first(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    jdk17 = _fake_jdk(jvm, "jdk-17", "17.0.2")
    other17 = _fake_jdk(jvm, "a-jdk-17", "17.0.9")
    jdk21 = _fake_jdk(jvm, "jdk-21", "21")
    _fake_jdk(jvm, "jdk-22", "22.0.1")  # no such AWS runtime
    jre11 = _fake_jdk(jvm, "jre-11", "11.0.2")  # no release file: asks `java -version`
    (jvm / "jdk-17-alias").symlink_to(jvm / "jdk-17")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(jdk17)
    found = find_javas(str(bin_dir), {}, jvm_root=jvm)
    assert sorted((r.id, r.executable) for r in found) == [
        ("java11", str(jre11)),
        ("java17", str(jdk17)),  # from PATH, resolved, before the other 17 under the root
        ("java21", str(jdk21)),
    ]
    assert str(other17) not in {r.executable for r in found}


def test_install_refuses_a_jre(tmp_path: Path) -> None:
    exe = _fake_jdk(tmp_path / "jvm", "jre-17", "17", javac=False)
    said: list[str] = []
    assert not java.LANGUAGE.install(Runtime("java17", str(exe)), tmp_path / "t", said.append)
    assert said == [f"  cannot install java17: {exe.parent.parent} has no javac (a JRE, not a JDK)"]


def test_install_refuses_a_jdk_that_cannot_run_in_the_sandbox_nor_be_linked(
    tmp_path: Path,
) -> None:
    exe = _fake_jdk(tmp_path / "jvm", "jdk-17", "17")
    (exe.parent.parent / "jvm.cfg").symlink_to("/etc/java-17-openjdk/jvm-amd64.cfg")
    said: list[str] = []
    assert not java.LANGUAGE.install(Runtime("java17", str(exe)), tmp_path / "t", said.append)
    assert said[-1].startswith("  cannot install: ") and said[-1].endswith("has no jmods")


SELF_CONTAINED = next(
    (
        r
        for r in find_javas(os.environ.get("PATH", ""), os.environ)
        if not java.links_outside(Path(str(r.executable)).parent.parent)
    ),
    None,
)


@pytest.mark.skipif(SELF_CONTAINED is None, reason="no JDK here runs in the sandbox as it is")
def test_install_a_jdk_that_runs_in_the_sandbox_as_it_is(tmp_path: Path) -> None:
    assert SELF_CONTAINED is not None
    said: list[str] = []
    assert java.LANGUAGE.install(SELF_CONTAINED, tmp_path, said.append), said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bootstrap", java.RUNTIME_JAR]
    assert os.access(tmp_path / "bootstrap", os.X_OK)
    installed = Runtime(SELF_CONTAINED.id, SELF_CONTAINED.executable, tmp_path)
    assert java.LANGUAGE.argv(installed, "h", tmp_path)[2] == SELF_CONTAINED.executable


@needs_jdk
def test_compile_makes_a_reproducible_jar(tmp_path: Path) -> None:
    assert JDK is not None and JDK.executable is not None
    javac = Path(JDK.executable).with_name("javac")
    said: list[str] = []
    assert java._compile(javac, tmp_path / "a.jar", said.append), said
    assert java._compile(javac, tmp_path / "b.jar", said.append), said
    assert (tmp_path / "a.jar").read_bytes() == (tmp_path / "b.jar").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.jar") as jar:
        names = set(jar.namelist())
        assert "Main-Class: lambdaplane.runtime.Main" in jar.read("META-INF/MANIFEST.MF").decode()
    for api in ("Context", "LambdaLogger", "RequestHandler", "RequestStreamHandler",
                "ClientContext", "CognitoIdentity", "Client", "LambdaRuntime", "logging/LogLevel"):  # fmt: skip
        assert f"com/amazonaws/services/lambda/runtime/{api}.class" in names
    assert "lambdaplane/runtime/Main.class" in names


# -- the runtime, under the real agent ----------------------------------------------------

FUNCTIONS = {
    "example/Shapes.java": """
        package example;

        import com.amazonaws.services.lambda.runtime.Context;
        import com.amazonaws.services.lambda.runtime.LambdaRuntime;
        import com.amazonaws.services.lambda.runtime.logging.LogLevel;
        import java.io.IOException;
        import java.io.InputStream;
        import java.io.OutputStream;
        import java.util.*;

        public class Shapes {
            public enum Color { RED, GREEN }

            public static class Item {
                public String name;
                public Color color;
                public long big;
                public double price;
                public Boolean flag;
                public char initial;
                public int[] sizes;
                public Map<String, Integer> counts;
                public Set<String> labels;
                public List<Part> parts;
                public Optional<String> note;
                public byte[] data;
                private String hidden;
                public String getHidden() { return hidden; }
            }

            public static class Part {
                private String id;
                public String getId() { return id; }
                public void setId(String id) { this.id = id; }
            }

            public static class Box<T> {
                public T value;
                public List<T> values;
            }

            public record Point(int x, int y, String label) {}

            public Item echo(Item item) {
                return item;
            }

            public Map<String, Object> types(Item item) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("big", item.big);
                out.put("price", item.price);
                out.put("flag", item.flag);
                out.put("initial", String.valueOf(item.initial));
                out.put("color", item.color);
                out.put("labels", item.labels.getClass().getName());
                out.put("firstPart", item.parts.get(0).getId());
                out.put("hidden", item.hidden);
                out.put("note", item.note.orElse("none"));
                out.put("data", new String(item.data));
                return out;
            }

            public String boxed(Box<Point> box) {
                return box.value.label() + ":" + (box.value.x() + box.values.get(1).y());
            }

            public Point point(Point p) {
                return new Point(p.y(), p.x(), null);
            }

            public String overload(String s) {
                return "without context";
            }

            public String overload(String s, Context context) {
                return "with context " + context.getFunctionName();
            }

            public static String noEvent(Context context) {
                return "static " + context.getMemoryLimitInMB();
            }

            public void nothing(Map<String, Object> event) {}

            public void upper(InputStream in, OutputStream out) throws IOException {
                out.write(new String(in.readAllBytes()).toUpperCase().getBytes());
            }

            public Map<String, Object> context(Object event, Context context) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("requestId", context.getAwsRequestId());
                out.put("remaining", context.getRemainingTimeInMillis());
                out.put("arn", context.getInvokedFunctionArn());
                out.put("identityId", context.getIdentity() == null ? null : context.getIdentity().getIdentityId());
                out.put("poolId", context.getIdentity() == null ? null : context.getIdentity().getIdentityPoolId());
                out.put("custom", context.getClientContext() == null ? null : context.getClientContext().getCustom());
                out.put("app", context.getClientContext() == null ? null
                        : context.getClientContext().getClient().getAppTitle());
                out.put("trace", System.getProperty("com.amazonaws.xray.traceHeader"));
                return out;
            }

            public String logs(Object event, Context context) {
                System.out.println("out line");
                System.err.println("err line");
                System.out.print("no newline, then ");
                context.getLogger().log("plain");
                context.getLogger().log("careful", LogLevel.WARN);
                LambdaRuntime.getLogger().log("detail", LogLevel.DEBUG);
                return "logged";
            }

            public String jsonLogs(Object event, Context context) {
                context.getLogger().log("plain");
                context.getLogger().log("careful", LogLevel.WARN);
                LambdaRuntime.getLogger().log("detail", LogLevel.DEBUG);
                return "logged";
            }

            public String fails(Map<String, Object> event) {
                throw new UnsupportedOperationException("not today", new IllegalStateException("cause"));
            }
        }
    """,
    "example/Broken.java": """
        package example;

        public class Broken {
            static {
                if (true) {
                    throw new IllegalStateException("static init failed");
                }
            }
        }
    """,
}

StartRuntime = Callable[..., Host]


@pytest.fixture(scope="module")
def classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The runtime jar and the test functions, compiled once with the host's JDK."""
    if JDK is None or JDK.executable is None:
        pytest.skip("no JDK 17+ on this host")
    root = tmp_path_factory.mktemp("java")
    javac = Path(JDK.executable).with_name("javac")
    said: list[str] = []
    assert java._compile(javac, root / java.RUNTIME_JAR, said.append), said
    sources = []
    for path, text in FUNCTIONS.items():
        sources.append(root / "src" / path)
        sources[-1].parent.mkdir(parents=True, exist_ok=True)
        sources[-1].write_text(textwrap.dedent(text))
    subprocess.run(
        [str(javac), "--release", "17", "-cp", str(root / java.RUNTIME_JAR),
         "-d", str(root / "task"), *map(str, sources)],
        check=True, capture_output=True,
    )  # fmt: skip
    return f"{root / java.RUNTIME_JAR}:{root / 'task'}"


@pytest.fixture
def start_runtime(classpath: str, tmp_path: Path) -> Iterator[StartRuntime]:
    """Start the agent running the Java runtime for ``handler``; every agent is closed after."""
    assert JDK is not None and JDK.executable is not None
    hosts: list[Host] = []

    def start(handler: str, **env: str) -> Host:
        port = free_port()
        ours, theirs = socket.socketpair()
        environ = dict(
            os.environ,
            AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
            AWS_LAMBDA_FUNCTION_NAME="orders",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
            **env,
        )
        runtime = [str(JDK.executable), *java.jvm_options(JDK.id), "-Xmx256m",
                   "-classpath", classpath, java.MAIN_CLASS, handler]  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(AGENT), "--fd", str(theirs.fileno()),
             "--port", str(port), "--", *runtime],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, cwd=tmp_path, env=environ,
        )  # fmt: skip
        theirs.close()
        host = Host(proc, ours, port)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


def invoke(host: Host, event: Any, request_id: str = "r1", **meta: Any) -> wire.Frame:
    """Send one event once the runtime asks for it; the RESPONSE or ERROR frame that ends it."""
    host.until(wire.NEXT)
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    host.invoke(payload, request_id=request_id, **meta)
    frame, _ = host.until(wire.RESPONSE, wire.ERROR)
    return frame


ITEM = {
    "name": "widget",
    "color": "GREEN",
    "big": 12345678901,
    "price": "9.5",
    "flag": 1,
    "initial": "w",
    "sizes": 7,
    "counts": {"a": 1},
    "labels": ["x", "y", "x"],
    "parts": [{"id": "p1"}],
    "note": "hi",
    "data": "aGVsbG8=",
    "hidden": "not settable: no setter, not public",
    "extra": {"ignored": [1, 2]},
}


def test_pojo_reading_coerces_as_aws_serialization_does(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::types")
    frame = invoke(host, ITEM)
    assert frame.type == wire.RESPONSE, frame.body
    assert json.loads(frame.body) == {
        "big": 12345678901,
        "price": 9.5,
        "flag": True,
        "initial": "w",
        "color": "GREEN",
        "labels": "java.util.HashSet",
        "firstPart": "p1",
        "hidden": None,
        "note": "hi",
        "data": "hello",
    }


def test_pojo_round_trip_writes_public_fields_and_getters(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::echo")
    frame = invoke(host, ITEM)
    assert json.loads(frame.body) == {
        "name": "widget",
        "color": "GREEN",
        "big": 12345678901,
        "price": 9.5,
        "flag": True,
        "initial": "w",
        "sizes": [7],  # a lone value where an array is expected
        "counts": {"a": 1},
        "labels": ["x", "y"],
        "parts": [{"id": "p1"}],
        "note": "hi",
        "data": "aGVsbG8=",  # byte[] is base64, both ways
    }  # "hidden" is null, so it is left out


def test_generic_pojo_and_records(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::boxed")
    event = {"value": {"x": 1, "y": 2, "label": "p"}, "values": [{"x": 0}, {"y": 40}]}
    assert json.loads(invoke(host, event).body) == "p:41"
    host = start_runtime("example.Shapes::point")
    assert invoke(host, {"x": 3, "y": 4}).body == b'{"x":4,"y":3}'


def test_overloads_prefer_a_trailing_context(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::overload")
    assert json.loads(invoke(host, "x").body) == "with context orders"


def test_static_method_with_only_a_context(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::noEvent")
    assert json.loads(invoke(host, {"ignored": 1}).body) == "static 512"


def test_void_method_answers_null(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::nothing")
    assert invoke(host, {}).body == b"null"


def test_stream_method_without_context(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::upper")
    assert invoke(host, b'"shout"').body == b'"SHOUT"'


def test_context_from_runtime_api_headers(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::context")
    frame = invoke(
        host,
        {},
        request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        deadline_ms=int(time.time() * 1000) + 30_000,
        client_context=json.dumps(
            {"client": {"app_title": "shop"}, "custom": {"k": "v", "n": 1}, "env": {}}
        ),
        cognito_identity=json.dumps({"cognitoIdentityId": "i", "cognitoIdentityPoolId": "p"}),
    )
    result = json.loads(frame.body)
    assert 25_000 < result.pop("remaining") <= 30_000
    assert result == {
        "requestId": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        "arn": "arn:aws:lambda:us-east-1:111111111111:function:f",
        "identityId": "i",
        "poolId": "p",
        "custom": {"k": "v", "n": "1"},
        "app": "shop",
        "trace": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
    }
    frame = invoke(host, {}, request_id="r2", trace_id="")
    result = json.loads(frame.body)
    assert result["identityId"] is None and result["custom"] is None and result["trace"] is None


def test_logs_in_text_format(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::logs")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="log-req")
    _, before = host.until(wire.RESPONSE)
    lines = host.logs(before).decode().splitlines()
    assert sorted(lines) == sorted(
        ["out line", "err line", "no newline, then plain", "[WARN] careful", "[DEBUG] detail"]
    )


def test_logs_in_json_format_are_filtered_by_level(start_runtime: StartRuntime) -> None:
    host = start_runtime(
        "example.Shapes::jsonLogs", AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO"
    )
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="log-req")
    _, before = host.until(wire.RESPONSE)
    records = [json.loads(line) for line in host.logs(before).decode().splitlines()]
    assert [(r["level"], r["message"], r["AWSRequestId"]) for r in records] == [
        ("UNDEFINED", "plain", "log-req"),
        ("WARN", "careful", "log-req"),
    ]  # DEBUG is below the function's log level
    assert records[0]["timestamp"].endswith("Z")


def test_exception_document_and_log(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::fails")
    host.until(wire.NEXT)
    host.invoke(b"{}", request_id="r1")
    frame, before = host.until(wire.ERROR)
    assert frame.meta == {"request_id": "r1", "error_type": "Runtime.UserException"}
    document = json.loads(frame.body)
    assert document["errorType"] == "java.lang.UnsupportedOperationException"
    assert document["errorMessage"] == "not today"
    assert document["stackTrace"][0].startswith("example.Shapes.fails(Shapes.java:")
    assert not any("lambdaplane" in line for line in document["stackTrace"])
    logged = host.logs(before).decode()
    assert logged.startswith("not today: java.lang.UnsupportedOperationException\n")
    assert "Caused by: java.lang.IllegalStateException: cause" in logged
    assert "lambdaplane.runtime" not in logged
    # The runtime goes on serving.
    assert invoke(host, {}, request_id="r2").type == wire.ERROR


def test_unreadable_event_is_a_json_parsing_error(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Shapes::types")
    frame = invoke(host, {"big": "not a number"})
    assert frame.type == wire.ERROR and frame.meta["error_type"] == "Runtime.UserException"
    assert json.loads(frame.body) == {
        "errorMessage": "An error occurred during JSON parsing",
        "errorType": "java.lang.RuntimeException",
        "stackTrace": [],
    }


@pytest.mark.parametrize(
    ("handler", "document"),
    [
        (
            "example.Nope",
            {"errorMessage": "Class not found: example.Nope", "errorType": "java.lang.ClassNotFoundException"},
        ),
        (
            "example.Shapes",
            {"errorMessage": "Class does not implement an appropriate handler interface: example.Shapes"},
        ),
        (
            "example.Shapes::missing",
            {"errorMessage": "No public method named missing with appropriate method signature found on class example.Shapes"},
        ),
        ("example.Shapes::", {"errorMessage": "Invalid handler: `example.Shapes::'"}),
    ],
)  # fmt: skip
def test_faults_aws_reports_at_each_invocation(
    start_runtime: StartRuntime, handler: str, document: dict[str, str]
) -> None:
    host = start_runtime(handler)
    for request_id in ("r1", "r2"):
        frame = invoke(host, {}, request_id=request_id)
        assert frame.meta == {"request_id": request_id, "error_type": "Runtime.BadFunctionCode"}
        assert json.loads(frame.body) == document


def test_static_initialiser_failure_is_an_init_error(start_runtime: StartRuntime) -> None:
    host = start_runtime("example.Broken")
    frame, before = host.until(wire.INIT_ERROR)
    assert frame.meta == {"error_type": "Runtime.BadFunctionCode"}
    assert json.loads(frame.body) == {
        "errorMessage": "Error loading class example.Broken",
        "errorType": "java.lang.ExceptionInInitializerError",
    }
    logged = host.logs(before).decode()
    assert logged.startswith(
        "Error loading class example.Broken: java.lang.ExceptionInInitializerError\n"
    )
    assert "Caused by: java.lang.IllegalStateException: static init failed" in logged
    frame, _ = host.until(wire.EXIT)
    assert frame.meta["status"] == "exit status 1"
