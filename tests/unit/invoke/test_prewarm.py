from __future__ import annotations

from pathlib import Path

from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.prewarm import PrewarmKey, key_for, startup_environment
from lambdaplane.service.runtimes import Runtime

PY = Runtime("python3.11", "/usr/bin/python3.11", Path("/rt/python3.11"))


def image(**changes: object) -> FunctionImage:
    values: dict[str, object] = {
        "pool_key": "k",
        "function_name": "f",
        "version": "$LATEST",
        "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "runtime": PY,
        "handler": "h.h",
        "memory_mb": 128,
        "timeout_s": 3,
        "tmp_mb": 512,
        "code_dir": Path("/code/abc"),
        "log_group": "/aws/lambda/f",
    }
    values.update(changes)
    return FunctionImage(**values)  # type: ignore[arg-type]


def test_kind_is_runtime_memory_and_tmp() -> None:
    assert key_for(image()) == PrewarmKey("python3.11", 128, 512)
    assert key_for(image(memory_mb=1024, tmp_mb=2048)) == PrewarmKey("python3.11", 1024, 2048)


def test_functions_that_change_how_the_interpreter_starts_are_not_prewarmed() -> None:
    assert key_for(image(variables={"PYTHONWARNINGS": "error"})) is None
    assert key_for(image(variables={"LD_PRELOAD": "/x.so"})) is None
    assert key_for(image(runtime=Runtime("provided.al2023", None))) is None
    assert key_for(image(variables={"MY_VAR": "fine"})) is not None
    # The log format and level are read when the function arrives (agent/pyruntime.py).
    assert key_for(image(log_format="JSON", log_level="WARN")) == key_for(image())


def test_startup_environment_has_no_function_specific_values() -> None:
    env = startup_environment(PY)
    assert env["PYTHONPATH"].endswith("/var/runtime")
    assert not any(k.startswith("AWS_LAMBDA_FUNCTION") for k in env)
