"""A function that ships a native library in /var/task/lib loads it with ctypes, as on
AWS (LD_LIBRARY_PATH names /var/task/lib), on both ways a Python environment starts."""

from __future__ import annotations

import ctypes.util
import json
import time
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.testing import make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

NATIVE = """
import ctypes, os, sys

def handler(event, context):
    zlib = ctypes.CDLL("libshippedz.so.1")
    zlib.zlibVersion.restype = ctypes.c_char_p
    return {
        "zlib": zlib.zlibVersion().decode(),
        "ld": os.environ["LD_LIBRARY_PATH"],
        "prewarmed": "--prewarm" in sys.argv,
    }
"""


def _zlib() -> bytes:
    found = ctypes.util.find_library("z")
    candidates = [Path(p) / str(found) for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib")]
    library = next((c for c in candidates if c.exists()), None)
    if library is None:
        pytest.skip("no zlib shared library to ship")
    return library.resolve().read_bytes()


def _function(lam: Any, role: str, files: dict[str, str | bytes], **extra: Any) -> str:
    name = unique_name("native")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip(files)},
        Timeout=10,
        **extra,
    )
    wait_settled(lam, name)
    return name


def _call(lam: Any, name: str) -> Any:
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_ctypes_finds_var_task_lib_spawned_and_pre_initialised(lam: Any, role: str) -> None:
    files: dict[str, str | bytes] = {"handler.py": NATIVE, "lib/libshippedz.so.1": _zlib()}
    spawned = _function(lam, role, files, Environment={"Variables": {"PYTHONSAFEPATH": "1"}})
    body = _call(lam, spawned)
    assert body["prewarmed"] is False
    assert body["zlib"].count(".") >= 2
    assert "/var/task/lib" in body["ld"].split(":")
    # Pre-initialised environments of this kind start after a cold start; new functions
    # then take them over, until one has.
    _call(lam, _function(lam, role, {"handler.py": "def handler(e, c):\n    return {}\n"}))
    seen = []
    for _ in range(20):
        time.sleep(0.5)
        body = _call(lam, _function(lam, role, files))
        assert body["zlib"].count(".") >= 2
        seen.append(body["prewarmed"])
        if body["prewarmed"]:
            break
    assert seen[-1] is True, seen


def test_ctypes_finds_a_layers_lib_pre_initialised(lam: Any, role: str) -> None:
    layer = lam.publish_layer_version(
        LayerName=unique_name("nativelayer"),
        Content={"ZipFile": make_zip({"lib/libshippedz.so.1": _zlib()})},
    )["LayerVersionArn"]
    files: dict[str, str | bytes] = {"handler.py": NATIVE}
    _call(lam, _function(lam, role, {"handler.py": "def handler(e, c):\n    return {}\n"}))
    seen = []
    for _ in range(20):
        time.sleep(0.5)
        body = _call(lam, _function(lam, role, files, Layers=[layer]))
        assert body["zlib"].count(".") >= 2
        seen.append(body["prewarmed"])
        if body["prewarmed"]:
            break
    assert seen[-1] is True, seen
