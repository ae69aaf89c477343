"""An environment's log: what its processes write, plus the platform's lines (START, REPORT, ...).

Two pipes per runtime process, as on AWS:

- fd 1 and 2 (one pipe, so their order is kept): one log event per line;
- the telemetry pipe (``_LAMBDA_TELEMETRY_LOG_FD``), where ``awslambdaric`` writes framed records
  (``logging`` records, error reports with their traceback): one event per record however many
  lines it has. LocalStack makes one CloudWatch event per ``\\n``-terminated line of the logs an
  invocation returns, so a record's inner newlines become ``\\r`` (as ``awslambdaric`` itself
  does when it has no telemetry pipe).

Lines accumulate until the executor takes them for an invocation's result (``take``); everything is
also appended to the environment's ``output.log``.
"""

import os
import selectors
import threading
from pathlib import Path

FRAME_HEADER_BYTES = 16  # type (4), length (4), timestamp in microseconds (8), big-endian
FRAME_MAGIC = 0xA55A0000
READ_CHUNK = 65536


def render_record(text: str) -> str:
    """One log event as a line of the logs string: inner newlines become ``\\r``."""
    return text.rstrip("\n").replace("\r\n", "\r").replace("\n", "\r") + "\n"


class EnvironmentLog:
    """The lines of one environment, shared by its successive runtime processes."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._file = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed in close)

    def add(self, line: str) -> None:
        """Append one line (must end with a newline)."""
        with self._lock:
            self._lines.append(line)
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()

    def take(self) -> str:
        """Everything since the last ``take``."""
        with self._lock:
            text = "".join(self._lines)
            self._lines.clear()
        return text

    def close(self) -> None:
        """Close ``output.log``."""
        with self._lock:
            self._file.close()


class ProcessOutput:
    """Reads one runtime process's output and telemetry pipes into an ``EnvironmentLog``."""

    def __init__(self, output_fd: int, telemetry_fd: int, log: EnvironmentLog):
        self._log = log
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._partial_line = b""
        self._frames = b""
        self._open: set[int] = set()
        for fd in (output_fd, telemetry_fd):
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ)
            self._open.add(fd)
        self._output_fd = output_fd
        self._thread = threading.Thread(target=self._run, name="lambda-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._open:
                    return
            try:
                ready = self._selector.select(timeout=1.0)
            except (OSError, ValueError):
                return
            # Output before telemetry when both have data: print() then logging is the usual order.
            for key, _ in sorted(ready, key=lambda item: item[0].fd != self._output_fd):
                with self._lock:
                    self._read(key.fd)

    def _read(self, fd: int) -> None:
        """Read what ``fd`` holds now (lock held)."""
        if fd not in self._open:
            return
        while True:
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._selector.unregister(fd)
                self._open.discard(fd)
                os.close(fd)
                if fd == self._output_fd:
                    self._flush_partial_line()
                return
            if fd == self._output_fd:
                self._add_output(data)
            else:
                self._add_frames(data)

    def _add_output(self, data: bytes) -> None:
        *lines, self._partial_line = (self._partial_line + data).split(b"\n")
        for line in lines:
            self._log.add(line.decode("utf-8", errors="replace") + "\n")

    def _flush_partial_line(self) -> None:
        if self._partial_line:
            self._log.add(self._partial_line.decode("utf-8", errors="replace") + "\n")
            self._partial_line = b""

    def _add_frames(self, data: bytes) -> None:
        self._frames += data
        while len(self._frames) >= FRAME_HEADER_BYTES:
            frame_type = int.from_bytes(self._frames[0:4], "big")
            length = int.from_bytes(self._frames[4:8], "big")
            if frame_type & 0xFFFF0000 != FRAME_MAGIC:
                # Not a frame: keep the bytes as text rather than lose them.
                self._log.add(render_record(self._frames.decode("utf-8", errors="replace")))
                self._frames = b""
                return
            if len(self._frames) < FRAME_HEADER_BYTES + length:
                return
            message = self._frames[FRAME_HEADER_BYTES : FRAME_HEADER_BYTES + length]
            self._frames = self._frames[FRAME_HEADER_BYTES + length :]
            self._log.add(render_record(message.decode("utf-8", errors="replace")))

    def drain(self) -> None:
        """Take in everything the process has written so far (call once it has answered)."""
        with self._lock:
            for fd in list(self._open):
                self._read(fd)
            self._flush_partial_line()

    def close(self) -> None:
        """Read what is left and stop reading (the process is gone)."""
        self.drain()
        with self._lock:
            for fd in list(self._open):
                self._selector.unregister(fd)
                os.close(fd)
            self._open.clear()
            self._selector.close()
