"""Lambda runtime for one host execution environment.

Started by the host executor as ``python -I -S -u bootstrap.py <config.json>``: standard library
only, nothing of LocalStack's or the harness's packages on ``sys.path``. It speaks LocalStack's
executor-endpoint protocol:

- init: put the function code, the layers and the runtime's own packages on ``sys.path``, import
  the handler, then ``POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/{id}/ready`` with ``{"port": N}``
  (or ``.../status/{id}/error`` with an AWS-shaped error, then exit);
- invoke: LocalStack POSTs ``{"invoke-id", "invoked-function-arn", "payload", "trace-id"}`` to
  ``http://127.0.0.1:N/invoke``; the handler runs on the main thread with fd 1 and 2 redirected to
  a capture file; the captured output goes to ``.../invocations/{id}/logs`` and then the result to
  ``.../response`` or ``.../error``.

Timeouts are enforced by the executor (it kills this process), not here.
"""

import datetime
import http.server
import importlib
import json
import logging
import math
import os
import queue
import resource
import select
import sys
import threading
import time
import traceback
import urllib.request

ERROR_TYPE_IMPORT = "Runtime.ImportModuleError"
ERROR_TYPE_SYNTAX = "Runtime.UserCodeSyntaxError"
ERROR_TYPE_HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
ERROR_TYPE_MALFORMED_HANDLER = "Runtime.MalformedHandlerName"
ERROR_TYPE_MARSHAL = "Runtime.MarshalError"
ERROR_TYPE_RUNTIME_MISMATCH = "Runtime.InvalidRuntime"

LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        response.read()


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class InitError(Exception):
    """An error during init, already shaped like AWS's (errorType, errorMessage)."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.stack = stack or []


class OutputCapture:
    """Redirects fd 1 and 2 to a file per invocation and mirrors it to the environment's log."""

    def __init__(self, path: str):
        self.path = path
        self.saved_out = os.dup(1)
        self.saved_err = os.dup(2)

    def begin(self, truncate: bool) -> None:
        """Send everything written to stdout/stderr (also by C code) to the capture file."""
        sys.stdout.flush()
        sys.stderr.flush()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        fd = os.open(self.path, flags, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def end(self) -> str:
        """Restore the streams and return what was captured since ``begin``."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved_out, 1)
        os.dup2(self.saved_err, 2)
        with open(self.path, "rb") as f:
            data = f.read()
        os.write(self.saved_out, data)
        return data.decode("utf-8", errors="replace")


class LambdaContext:
    """The ``context`` argument, with the attributes and method of AWS's Python runtime."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    @property
    def memory_limit_in_bytes(self) -> int:
        """Memory size in bytes (AWS only offers ``memory_limit_in_mb``)."""
        return int(self.memory_limit_in_mb or 0) * 1024 * 1024

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the executor stops the invocation."""
        return max(self._deadline_ms - int(time.time() * 1000), 0)


class RequestIdFilter(logging.Filter):
    """Adds ``aws_request_id`` to log records, as AWS's runtime does."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _setup_logging() -> RequestIdFilter:
    request_filter = RequestIdFilter()
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(request_filter)
    handler.terminator = ""
    logging.getLogger().addHandler(handler)
    return request_filter


def _max_memory_used_mb() -> int:
    """Peak RSS of this process (VmHWM: ``ru_maxrss`` would include LocalStack's, across exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _user_stack(tb) -> list[str]:
    """Format a traceback without this module's frames, like AWS's ``stackTrace``."""
    frames = [frame for frame in traceback.extract_tb(tb) if frame.filename != __file__]
    return traceback.format_list(frames)


def load_handler(handler_name: str):
    """Import ``module.function`` (module may be dotted or a path with ``/``) and return it."""
    try:
        module_name, function_name = handler_name.rsplit(".", 1)
    except ValueError as e:
        raise InitError(ERROR_TYPE_MALFORMED_HANDLER, f"Bad handler '{handler_name}': {e}") from e
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        raise InitError(
            ERROR_TYPE_SYNTAX,
            f"Syntax error in module '{module_name}': {e}",
            _user_stack(e.__traceback__),
        ) from e
    except ImportError as e:
        raise InitError(ERROR_TYPE_IMPORT, f"Unable to import module '{module_name}': {e}") from e
    except Exception as e:
        raise InitError(type(e).__name__, str(e), _user_stack(e.__traceback__)) from e
    handler = getattr(module, function_name, None)
    if handler is None:
        raise InitError(
            ERROR_TYPE_HANDLER_NOT_FOUND,
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler


def _watch_parent() -> None:
    """Exit when LocalStack (the parent) dies, so no environment outlives it."""
    parent = os.getppid()
    try:
        fd = os.pidfd_open(parent)
    except (AttributeError, OSError):
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll()
    os._exit(0)


class InvokeHandler(http.server.BaseHTTPRequestHandler):
    """Accepts LocalStack's POST /invoke and queues it for the main thread."""

    invocations: "queue.Queue[dict]" = queue.Queue()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != "/invoke":
            self.send_response(404)
            self.end_headers()
            return
        self.invocations.put(json.loads(body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, format, *args) -> None:
        """Silence per-request logging: stderr belongs to the function."""


class Runtime:
    """One execution environment's runtime: init once, then serve invocations in order."""

    def __init__(self, config: dict):
        self.config = config
        self.endpoint = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
        self.runtime_id = os.environ["LOCALSTACK_RUNTIME_ID"]
        self.capture = OutputCapture(config["capture_file"])
        self.timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3)
        self.first_invocation = True
        self.handler = None
        self.request_filter = None

    def init(self) -> None:
        """Set up paths and import the handler.

        The capture stays open after a successful init, so init output (module-level prints)
        shows up in the first invocation's logs, before its START line.
        """
        self.capture.begin(truncate=True)
        expected = tuple(self.config["python_version"])
        if sys.version_info[:2] != expected:
            raise InitError(
                ERROR_TYPE_RUNTIME_MISMATCH,
                f"Interpreter is Python {sys.version_info[0]}.{sys.version_info[1]}, "
                f"runtime needs {expected[0]}.{expected[1]}",
            )
        sys.path[:0] = self.config["path_front"]
        sys.path.extend(self.config["path_back"])
        os.chdir(os.environ["LAMBDA_TASK_ROOT"])
        self.request_filter = _setup_logging()
        self.handler = load_handler(os.environ["_HANDLER"])

    def report_init_error(self, error: InitError) -> None:
        """Log the init error like AWS and tell LocalStack that startup failed."""
        payload = {
            "errorMessage": str(error),
            "errorType": error.error_type,
            "requestId": "",
            "stackTrace": error.stack,
        }
        sys.stdout.write(f"[ERROR] {error.error_type}: {error}\n")
        self.capture.end()
        _post(f"{self.endpoint}/status/{self.runtime_id}/error", json.dumps(payload).encode())

    def serve(self) -> None:
        """Start the invoke listener, report ready, and run invocations forever."""
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InvokeHandler)
        threading.Thread(target=server.serve_forever, name="invoke-listener", daemon=True).start()
        port = server.server_address[1]
        _post(
            f"{self.endpoint}/status/{self.runtime_id}/ready",
            json.dumps({"port": port}).encode(),
        )
        while True:
            self.invoke(InvokeHandler.invocations.get())

    def invoke(self, invocation: dict) -> None:
        """Run one invocation and post its logs, then its result."""
        request_id = invocation["invoke-id"]
        started = time.time()
        deadline_ms = int((started + self.timeout_s) * 1000)
        if not self.first_invocation:
            self.capture.begin(truncate=True)
        self.first_invocation = False
        os.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id") or ""
        self.request_filter.request_id = request_id
        sys.stdout.write(
            f"START RequestId: {request_id} Version: {os.environ.get('AWS_LAMBDA_FUNCTION_VERSION')}\n"
        )
        context = LambdaContext(request_id, invocation.get("invoked-function-arn", ""), deadline_ms)
        is_error, body = self._call(invocation.get("payload"), context)
        duration_ms = (time.time() - started) * 1000
        max_rss_mb = _max_memory_used_mb()
        sys.stdout.write(
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\t"
            f"Memory Size: {os.environ.get('AWS_LAMBDA_FUNCTION_MEMORY_SIZE')} MB\t"
            f"Max Memory Used: {max_rss_mb} MB\n"
        )
        self.request_filter.request_id = ""
        logs = self.capture.end()
        base = f"{self.endpoint}/invocations/{request_id}"
        _post(f"{base}/logs", json.dumps({"logs": logs}).encode())
        _post(f"{base}/{'error' if is_error else 'response'}", body)

    def _call(self, payload: str | None, context: LambdaContext) -> tuple[bool, bytes]:
        request_id = context.aws_request_id
        try:
            event = json.loads(payload) if payload else {}
            result = self.handler(event, context)
        except Exception as e:
            error = {
                "errorMessage": str(e),
                "errorType": type(e).__name__,
                "requestId": request_id,
                "stackTrace": _user_stack(e.__traceback__),
            }
            sys.stdout.write(
                f"[ERROR] {type(e).__name__}: {e}\nTraceback (most recent call last):\n"
                + "".join(error["stackTrace"])
            )
            return True, json.dumps(error).encode()
        try:
            return False, json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            error = {
                "errorMessage": f"Unable to marshal response: {e}",
                "errorType": ERROR_TYPE_MARSHAL,
                "requestId": request_id,
                "stackTrace": [],
            }
            sys.stdout.write(f"[ERROR] {ERROR_TYPE_MARSHAL}: {error['errorMessage']}\n")
            return True, json.dumps(error).encode()


def main(argv: list[str]) -> int:
    """Entry point: ``bootstrap.py <config.json>``."""
    with open(argv[1], encoding="utf-8") as f:
        config = json.load(f)
    threading.Thread(target=_watch_parent, name="parent-watch", daemon=True).start()
    runtime = Runtime(config)
    try:
        runtime.init()
    except InitError as e:
        runtime.report_init_error(e)
        return 1
    runtime.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
