"""The Lambda Runtime API (2018-06-01) for one runtime process, served on 127.0.0.1.

``awslambdaric`` in the environment process finds it through ``AWS_LAMBDA_RUNTIME_API`` and calls:

- ``GET /2018-06-01/runtime/invocation/next``: long poll; the first call means init is done;
- ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../{id}/error``;
- ``POST /2018-06-01/runtime/init/error``.

Each runtime process gets a server of its own, so a killed process's calls can never take an
invocation meant for its successor.
"""

import contextlib
import dataclasses
import http.server
import json
import threading
from concurrent.futures import Future, InvalidStateError
from http import HTTPStatus

PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a phase ended: ``kind`` is response, error, init-error or exit."""

    kind: str
    body: bytes = b""
    error_type: str | None = None
    exit_code: int | None = None


@dataclasses.dataclass
class Invocation:
    """One event waiting for (or handed to) the runtime."""

    request_id: str
    payload: bytes
    headers: dict[str, str]
    outcome: Future = dataclasses.field(default_factory=Future)


class RuntimeApi:
    """State shared by the HTTP handlers of one runtime process and the executor."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queued: Invocation | None = None
        self._handed_out: dict[str, Invocation] = {}
        self._closed = False
        self._exit: Outcome | None = None
        # Resolved by the first /next (init done, value None), /init/error or the process's exit.
        self.init_outcome: Future = Future()
        handler = type("BoundRuntimeApiHandler", (RuntimeApiHandler,), {"api": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="lambda-runtime-api", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port`` for ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def submit(self, invocation: Invocation) -> Future:
        """Queue ``invocation`` for the runtime's next ``/next``; the future gets its ``Outcome``."""
        with self._condition:
            if self._exit is None:
                self._queued = invocation
                self._condition.notify_all()
        if self._exit is not None:  # the process died while it waited (frozen) for this one
            _resolve(invocation.outcome, self._exit)
        return invocation.outcome

    def next_invocation(self) -> Invocation | None:
        """Block until an invocation is queued (None once the API is closed)."""
        _resolve(self.init_outcome, None)
        with self._condition:
            while self._queued is None and not self._closed:
                self._condition.wait()
            if self._closed:
                return None
            invocation, self._queued = self._queued, None
            self._handed_out[invocation.request_id] = invocation
            return invocation

    def finish(self, request_id: str, outcome: Outcome) -> bool:
        """Record the runtime's response or error; False for an unknown request id."""
        with self._condition:
            invocation = self._handed_out.pop(request_id, None)
        if invocation is None:
            return False
        _resolve(invocation.outcome, outcome)
        return True

    def init_failed(self, outcome: Outcome) -> None:
        """The runtime reported an init error."""
        _resolve(self.init_outcome, outcome)

    def runtime_exited(self, exit_code: int) -> None:
        """The process is gone: whatever it was doing ends with an ``exit`` outcome."""
        outcome = Outcome("exit", exit_code=exit_code)
        _resolve(self.init_outcome, outcome)
        with self._condition:
            self._exit = outcome
            pending = list(self._handed_out.values())
            if self._queued is not None:
                pending.append(self._queued)
            self._handed_out.clear()
            self._queued = None
        for invocation in pending:
            _resolve(invocation.outcome, outcome)

    def close(self) -> None:
        """Stop serving; blocked ``/next`` calls return an error."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        threading.Thread(target=self._shut_down, name="lambda-runtime-api-close", daemon=True).start()

    def _shut_down(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _resolve(future: Future, value) -> None:
    with contextlib.suppress(InvalidStateError):  # already resolved: the first outcome wins
        future.set_result(value)


class RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    """HTTP side of ``RuntimeApi`` (keep-alive, as the runtime's curl client expects)."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write; without TCP_NODELAY, Nagle plus the client's delayed ACK
    # add ~40 ms to each answer.
    disable_nagle_algorithm = True
    api: RuntimeApi

    def do_GET(self) -> None:
        """Only ``/next``."""
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(HTTPStatus.NOT_FOUND, {"errorType": "NotFound", "errorMessage": self.path})
            return
        invocation = self.api.next_invocation()
        if invocation is None:
            self._reply(HTTPStatus.GONE, {"errorType": "EnvironmentStopped", "errorMessage": "stopped"})
            return
        self._send(HTTPStatus.OK, invocation.headers, invocation.payload)

    def do_POST(self) -> None:
        """Responses, invocation errors and init errors."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        error_type = self.headers.get(ERROR_TYPE_HEADER)
        parts = self.path.removeprefix(PREFIX).strip("/").split("/")
        if parts == ["init", "error"]:
            self.api.init_failed(Outcome("init-error", body, error_type or _error_type(body)))
            self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            kind = parts[2]
            outcome = Outcome(kind, body, (error_type or _error_type(body)) if kind == "error" else None)
            if self.api.finish(parts[1], outcome):
                self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
            else:
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    {"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"},
                )
            return
        self._reply(HTTPStatus.NOT_FOUND, {"errorType": "NotFound", "errorMessage": self.path})

    def _reply(self, status: HTTPStatus, document: dict) -> None:
        self._send(status, {}, json.dumps(document).encode())

    def _send(self, status: HTTPStatus, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # end_headers() would write the headers on their own; send them with the body instead.
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []

    def log_message(self, format, *args) -> None:
        """No per-request logging."""


def _error_type(body: bytes) -> str | None:
    try:
        return json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        return None
