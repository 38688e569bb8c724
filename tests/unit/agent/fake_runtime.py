"""A tiny runtime for the agent's tests: ``http.client`` against AWS_LAMBDA_RUNTIME_API.

Run as a script (any Python 3.9+). ``--init-error`` posts /init/error and exits 1;
``--exit N`` exits with N before its first /next. Otherwise it loops /next ->
outcome, where each event is a JSON object whose "action" says what to do:

- "echo" (default): respond {"headers": <the Lambda-Runtime-* headers>, "event": <event>}
- "print": write event["lines"] numbered lines, alternately to stdout and stderr, then respond
- "error": post /error with header Lambda-Runtime-Function-Error-Type: event["error_type"]
- "pid": respond {"pid": <this process id>}
- "exit": sys.exit(event["code"])
- "hang": sleep until killed
"""

import http.client
import json
import os
import sys
import time

BASE = "/2018-06-01/runtime"


def main() -> None:
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    conn = http.client.HTTPConnection(host, int(port))
    if "--init-error" in sys.argv:
        body = json.dumps({"errorMessage": "boom", "errorType": "Custom.Init"})
        conn.request(
            "POST",
            BASE + "/init/error",
            body,
            {"Lambda-Runtime-Function-Error-Type": "Custom.Init"},
        )
        conn.getresponse().read()
        sys.exit(1)
    if "--exit" in sys.argv:
        sys.exit(int(sys.argv[sys.argv.index("--exit") + 1]))
    while True:
        conn.request("GET", BASE + "/invocation/next")
        reply = conn.getresponse()
        event = reply.read()
        request_id = reply.getheader("Lambda-Runtime-Aws-Request-Id")
        headers = {k: v for k, v in reply.getheaders() if k.lower().startswith("lambda-runtime")}
        headers["Content-Type"] = reply.getheader("Content-Type")
        command = json.loads(event) if event.startswith(b"{") else {}
        action = command.get("action", "echo")
        outcome = "response"
        extra = {}
        if action == "echo":
            body = json.dumps({"headers": headers, "event": event.decode()})
        elif action == "print":
            for i in range(command["lines"]):
                stream = sys.stdout if i % 2 == 0 else sys.stderr
                stream.write(f"line {i}\n")
                stream.flush()
            body = '"done"'
        elif action == "error":
            outcome = "error"
            body = json.dumps({"errorMessage": "bad", "errorType": command["error_type"]})
            extra = {"Lambda-Runtime-Function-Error-Type": command["error_type"]}
        elif action == "pid":
            body = json.dumps({"pid": os.getpid()})
        elif action == "exit":
            sys.exit(command["code"])
        else:  # hang
            time.sleep(3600)
            body = "null"
        conn.request("POST", f"{BASE}/invocation/{request_id}/{outcome}", body, extra)
        conn.getresponse().read()


if __name__ == "__main__":
    main()
