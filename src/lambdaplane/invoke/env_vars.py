"""The environment variables inside an execution environment, as AWS sets them."""

from __future__ import annotations

from lambdaplane.invoke.image import FunctionImage
from lambdaplane.languages import for_runtime

RUNTIME_API = "127.0.0.1:9001"
# AWS's library path: the dynamic loader reads it once, when a process starts.
LD_LIBRARY_PATH = (
    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
)
# Credentials until IAM exists: well-formed, useless anywhere but a local endpoint.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIALAMBDAPLANEDUMMY0",
    "AWS_SECRET_ACCESS_KEY": "lambdaplane/dummy/secret/key/not/valid/anywhere",
    "AWS_SESSION_TOKEN": "lambdaplane-dummy-session-token",
}


def environment(
    image: FunctionImage, region: str, log_stream: str, init_type: str = "on-demand"
) -> dict[str, str]:
    """AWS's variables, then the function's own over them (reserved keys were refused at
    configuration time, so a function may override only what AWS lets it: PATH, TZ, …)."""
    runtime = image.runtime
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": image.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": image.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(image.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": image.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "_HANDLER": image.handler,
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_RUNTIME_API": RUNTIME_API,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": LD_LIBRARY_PATH,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **DUMMY_CREDENTIALS,
    }
    env.update(for_runtime(runtime).environment(runtime))
    if image.log_format == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if image.log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = image.log_level
    env.update(image.variables)
    return env
