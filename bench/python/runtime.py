"""A minimal Lambda runtime loop for Python (Runtime API 2018-06-01).

What the managed Python runtime does, reduced to the protocol: import the
handler module named by `_HANDLER` (`module.function`, from
`LAMBDA_TASK_ROOT`), report an import failure to `/init/error`, then loop:
`GET /invocation/next`, call the handler with the event and a context, and
`POST` its result to `/invocation/<id>/response` or its exception to
`/invocation/<id>/error`. Standard library only, one keep-alive connection.
"""

import http.client
import importlib
import json
import os
import sys
import time
import traceback

BASE = "/2018-06-01/runtime"


class Context:
    """The attributes handlers commonly read from a Lambda context."""

    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_body(exc):
    return json.dumps({
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }).encode()


def post(conn, path, body, headers=None):
    conn.request("POST", path, body=body, headers=headers or {})
    conn.getresponse().read()


def main():
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80))
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.path.dirname(os.path.abspath(__file__))))
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # what the managed runtime reports as Runtime.ImportModuleError
        post(conn, BASE + "/init/error", error_body(exc),
             {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        sys.exit(1)
    while True:
        conn.request("GET", BASE + "/invocation/next")
        response = conn.getresponse()
        event = json.loads(response.read() or b"null")
        context = Context(response.headers)
        try:
            result = handler(event, context)
        except Exception as exc:
            post(conn, BASE + "/invocation/%s/error" % context.aws_request_id, error_body(exc),
                 {"Lambda-Runtime-Function-Error-Type": type(exc).__name__})
            continue
        post(conn, BASE + "/invocation/%s/response" % context.aws_request_id, json.dumps(result).encode())


if __name__ == "__main__":
    main()
