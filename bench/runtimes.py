"""Cold and warm invocations of a hello function in every runtime this host offers.

For each runtime: 5 fresh functions invoked once each, 0.5 s apart (cold: end to end
through boto3, and the REPORT line's Init Duration, which is what AWS publishes), then
300 warm boto3 invocations of one of them (p50/p99). Java is compiled with the runtime's
javac against lambdaplane's interfaces jar; Go is built with Debian's go (skipped
without it).

    .venv/bin/python bench/runtimes.py [--cold 5] [--warm 300]
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from lambdaplane.service.runtimes import discover
from lambdaplane.settings import default_runtimes_dir
from lambdaplane.testing import make_zip, start_server

ROLE = "arn:aws:iam::000000000000:role/bench"

GO_SOURCE = """package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
)

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	for {
		resp, err := http.Get(api + "next")
		if err != nil {
			os.Exit(1)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		out, err := http.Post(api+id+"/response", "application/json", bytes.NewReader(event))
		if err == nil {
			out.Body.Close()
		}
	}
}
"""

JAVA_SOURCE = """package bench;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

public class Hello implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        return event;
    }
}
"""


def python_package(_: Any, __: Path) -> tuple[bytes, str]:
    return make_zip(
        {"handler.py": "def handler(event, context):\n    return event\n"}
    ), "handler.handler"


def node_package(_: Any, __: Path) -> tuple[bytes, str]:
    return make_zip({"index.js": "exports.handler = async (event) => event;\n"}), "index.handler"


def ruby_package(_: Any, __: Path) -> tuple[bytes, str]:
    return make_zip(
        {"function.rb": "def handler(event:, context:)\n  event\nend\n"}
    ), "function.handler"


def java_package(runtime: Any, work: Path) -> tuple[bytes, str]:
    source = work / "bench" / "Hello.java"
    source.parent.mkdir(parents=True)
    source.write_text(JAVA_SOURCE)
    javac = Path(runtime.executable).with_name("javac")
    jar = next((default_runtimes_dir() / runtime.id).glob("*.jar"))
    out = work / "classes"
    subprocess.run([str(javac), "-cp", str(jar), "-d", str(out), str(source)], check=True)
    files: dict[str, str | bytes] = {
        str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.class")
    }
    return make_zip(files), "bench.Hello::handleRequest"


def go_package(_: Any, work: Path) -> tuple[bytes, str]:
    (work / "main.go").write_text(GO_SOURCE)
    (work / "go.mod").write_text("module bootstrap\n\ngo 1.19\n")
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOCACHE": str(work / "cache"),
        "GOPATH": str(work / "gopath"),
        "GOFLAGS": "-mod=mod",
    }
    subprocess.run(
        ["go", "build", "-o", str(work / "bootstrap"), "."], cwd=work, env=env, check=True
    )
    return make_zip({"bootstrap": (work / "bootstrap").read_bytes()}, mode=0o755), "bootstrap"


def init_duration(tail_b64: str) -> float | None:
    match = re.search(
        r"Init Duration: ([\d.]+) ms", base64.b64decode(tail_b64).decode(errors="replace")
    )
    return float(match.group(1)) if match else None


def bench(
    lam: Any, label: str, runtime_id: str, package: tuple[bytes, str], cold: int, warm: int
) -> None:
    zip_bytes, handler = package
    names = [f"{re.sub('[^a-z0-9]', '', label)}-{i}-{os.getpid()}" for i in range(cold)]
    for name in names:
        lam.create_function(
            FunctionName=name,
            Runtime=runtime_id,
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": zip_bytes},
            Timeout=30,
            MemorySize=512,
        )
    for name in names:
        while (
            lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus")
            != "Successful"
        ):
            time.sleep(0.01)
    colds, inits = [], []
    for name in names:
        time.sleep(0.5)
        start = time.perf_counter()
        response = lam.invoke(FunctionName=name, Payload=b'{"hello":"world"}', LogType="Tail")
        response["Payload"].read()
        colds.append(time.perf_counter() - start)
        if response.get("FunctionError"):
            raise SystemExit(f"{label}: {response}")
        found = init_duration(response["LogResult"])
        if found is not None:
            inits.append(found)
    samples = []
    for _ in range(warm):
        start = time.perf_counter()
        lam.invoke(FunctionName=names[0], Payload=b'{"hello":"world"}')["Payload"].read()
        samples.append(time.perf_counter() - start)
    samples.sort()
    init = f"{statistics.median(inits):7.1f} ms" if inits else "      -"
    print(
        f"{label:<22} cold p50 {statistics.median(colds) * 1000:7.1f} ms  init p50 {init}  "
        f"warm p50 {statistics.median(samples) * 1000:6.2f} ms  p99 {samples[int(len(samples) * 0.99) - 1] * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=300)
    args = parser.parse_args()
    catalog = discover(runtimes_dir=default_runtimes_dir())
    builders: dict[str, Callable[[Any, Path], tuple[bytes, str]]] = {
        "python": python_package, "nodejs": node_package, "ruby": ruby_package, "java": java_package,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            lam = server.client()
            for runtime_id in catalog.ids:
                runtime = catalog.get(runtime_id)
                assert runtime is not None
                build = builders.get(runtime.family)
                if build is None:
                    continue
                work = Path(tempfile.mkdtemp(dir=tmp))
                bench(lam, runtime_id, runtime_id, build(runtime, work), args.cold, args.warm)
            if shutil.which("go"):
                work = Path(tempfile.mkdtemp(dir=tmp))
                bench(
                    lam,
                    "go (provided.al2023)",
                    "provided.al2023",
                    go_package(None, work),
                    args.cold,
                    args.warm,
                )
            else:
                print("go (provided.al2023)   skipped: install Debian's golang-go")
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
