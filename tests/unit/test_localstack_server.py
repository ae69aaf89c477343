"""localstack/server.py: pid files that outlive their process, concurrent starts, reusing a LocalStack.

Each test loads server.py afresh with its own state dir and a free gateway port, so nothing here
touches build/localstack or a LocalStack on 127.0.0.1:4566. Where a LocalStack must start, a fake
one (a Python script answering the health check after a slow start) replaces the real command.
"""

import fcntl
import http.server
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from thumbnailer.logs import JsonFormatter

SERVER_PY = Path(__file__).resolve().parents[2] / "localstack" / "server.py"
HEALTHY_BODY = {"services": {"s3": "running", "lambda": "available"}}

FAKE_LOCALSTACK = """\
import http.server, json, os, sys, time

time.sleep(float(sys.argv[1]))  # a slow start: long enough for a second start to arrive
host, _, port = os.environ["GATEWAY_LISTEN"].rpartition(":")


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"services": {"s3": "running"}}).encode()
        self.send_response(200 if self.path == "/_localstack/health" else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer((host, int(port)), Health).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "localstack-host"]


def _records(caplog, prefix: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "localstack-host" and r.getMessage().startswith(prefix)]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def server(tmp_path, monkeypatch, caplog):
    """server.py loaded afresh: state dir under tmp_path, a free gateway port, nothing configured.

    Installing is a no-op and starting a process fails the test, unless a test allows it (see
    ``fake_localstack``).
    """
    monkeypatch.setenv("LOCALSTACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LOCALSTACK_GATEWAY_LISTEN", f"127.0.0.1:{_free_port()}")
    for name in ("LOCALSTACK_ENDPOINT", "AWS_ENDPOINT_URL", "LOCALSTACK_REUSE_ONLY"):
        monkeypatch.delenv(name, raising=False)
    name = f"localstack_server_under_test_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, SERVER_PY)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "install", lambda: None)

    def refuse_to_spawn():
        raise AssertionError("this test must not start a LocalStack")

    refuse_to_spawn.real = module._spawn  # for fake_localstack
    monkeypatch.setattr(module, "_spawn", refuse_to_spawn)
    caplog.set_level(logging.INFO, logger="localstack-host")
    yield module
    module.stop()  # whatever a test started (a no-op otherwise)


@pytest.fixture
def fake_localstack(server, tmp_path, monkeypatch):
    """Let ``server`` start a fake LocalStack (healthy after 1 s); returns the processes it started."""
    script = tmp_path / "fake_localstack.py"
    script.write_text(FAKE_LOCALSTACK)
    monkeypatch.setattr(server, "localstack_command", lambda: [sys.executable, str(script), "1.0"])
    started: list[subprocess.Popen] = []
    real_spawn = server._spawn.real

    def counting_spawn():
        process = real_spawn()
        started.append(process)
        return process

    monkeypatch.setattr(server, "_spawn", counting_spawn)
    return started


@pytest.fixture
def unrelated_process():
    """A live process that is not LocalStack (``sleep 60``, its own process group), killed afterwards."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    # Right after exec, /proc/<pid>/cmdline can still read empty for a moment.
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    deadline = time.monotonic() + 5
    while not cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def http_server_on_gateway(server):
    """Factory: serve ``/_localstack/health`` on the gateway port, healthy (LocalStack's body) or 404."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(healthy: bool = True) -> str:
        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                found = healthy and self.path == server.HEALTH_PATH
                self.send_response(200 if found else 404)
                self.end_headers()
                self.wfile.write(json.dumps(HEALTHY_BODY if found else {}).encode())

            def log_message(self, *args):
                pass

        host, port = server._port_of(server.gateway_listen())
        httpd = http.server.ThreadingHTTPServer((host, port), Health)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return server.own_endpoint()

    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_stop_never_signals_an_unrelated_process_named_in_the_pid_file(server, unrelated_process, caplog):
    server.STATE_DIR.mkdir(parents=True)
    server.PID_FILE.write_text(str(unrelated_process.pid))

    assert server.stop() is False

    assert unrelated_process.poll() is None, "the unrelated process was signalled"
    assert not server.PID_FILE.exists()
    (record,) = _records(caplog, "stale pid file removed: the process is not our LocalStack")
    assert record.fields["pid"] == unrelated_process.pid
    assert record.fields["command"] == "sleep 60"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING"
    assert line["pid"] == unrelated_process.pid


def test_status_does_not_claim_an_unrelated_process(server, unrelated_process):
    server.STATE_DIR.mkdir(parents=True)
    server.PID_FILE.write_text(str(unrelated_process.pid))

    info = server.status()

    assert info["pid"] is None
    assert info["owned"] is False
    assert server.PID_FILE.exists(), "status only reads; start and stop clean up"


def test_a_pid_file_of_a_finished_process_is_removed_with_a_log_line(server, caplog):
    finished = subprocess.Popen(["true"])
    finished.wait()
    server.STATE_DIR.mkdir(parents=True)
    server.PID_FILE.write_text(str(finished.pid))

    assert server.stop() is False

    assert not server.PID_FILE.exists()
    (record,) = _records(caplog, "stale pid file removed: no such process")
    assert record.fields["pid"] == finished.pid


def test_start_with_a_stale_pid_file_starts_its_own_without_waiting_on_it(
    server, fake_localstack, unrelated_process
):
    server.STATE_DIR.mkdir(parents=True)
    server.PID_FILE.write_text(str(unrelated_process.pid))

    handle = server.start(timeout=30)

    (process,) = fake_localstack
    assert handle == server.Handle(server.own_endpoint(), owned=True, pid=process.pid)
    assert int(server.PID_FILE.read_text()) == process.pid
    assert server.is_our_localstack(process.pid)
    assert unrelated_process.poll() is None

    assert server.stop() is True
    assert not _process_exists(process.pid)
    assert unrelated_process.poll() is None
    assert not server.port_in_use(server.gateway_listen())


def test_concurrent_starts_start_one_localstack_the_second_waits_and_reuses_it(
    server, fake_localstack, caplog
):
    barrier = threading.Barrier(2)
    handles: list = []
    errors: list[BaseException] = []

    def attempt_start():
        barrier.wait()
        try:
            handles.append(server.start(timeout=30))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt_start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors
    (process,) = fake_localstack
    assert [h.pid for h in handles] == [process.pid, process.pid]
    assert all(h.owned for h in handles)
    messages = _messages(caplog)
    assert "another start or stop is running, waiting" in messages
    assert messages.count("LocalStack ready") == 1
    assert messages.count("LocalStack already running") == 1

    assert server.stop() is True
    assert not _process_exists(process.pid)


def test_a_localstack_that_dies_while_starting_leaves_no_pid_file_and_no_lock(
    server, fake_localstack, monkeypatch
):
    monkeypatch.setattr(server, "localstack_command", lambda: [sys.executable, "-c", "raise SystemExit(3)"])

    with pytest.raises(server.LocalStackError, match="exited with code 3"):
        server.start(timeout=30)

    assert not server.PID_FILE.exists()
    with open(server.LOCK_FILE) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: raises BlockingIOError otherwise


def test_start_refuses_when_another_start_holds_the_lock_too_long(server, monkeypatch):
    monkeypatch.setattr(server, "LOCK_WAIT_S", 0.3)
    server.STATE_DIR.mkdir(parents=True)
    with open(server.LOCK_FILE, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(server.LocalStackError, match="another start or stop still holds"):
            server.start(timeout=5)


def test_start_reuses_a_healthy_localstack_it_did_not_start(server, http_server_on_gateway, caplog):
    endpoint = http_server_on_gateway(healthy=True)

    handle = server.start(timeout=5)

    assert handle == server.Handle(endpoint, owned=False)
    (record,) = _records(caplog, "reusing the healthy LocalStack already listening on our port")
    assert record.fields["endpoint"] == endpoint
    assert "stop leaves it running" in record.getMessage()
    assert not server.PID_FILE.exists()
    assert server.stop() is False
    assert server.is_healthy(endpoint)


def test_localstack_running_leaves_a_reused_localstack_running(server, http_server_on_gateway):
    endpoint = http_server_on_gateway(healthy=True)

    with server.localstack_running(timeout=5) as yielded:
        assert yielded == endpoint

    assert server.is_healthy(endpoint)


def test_start_refuses_a_port_taken_by_something_that_is_not_localstack(server, http_server_on_gateway):
    http_server_on_gateway(healthy=False)

    with pytest.raises(server.LocalStackError, match="is not a healthy LocalStack"):
        server.start(timeout=5)


def test_reuse_only_never_starts_a_localstack(server, monkeypatch):
    monkeypatch.setenv("LOCALSTACK_REUSE_ONLY", "1")
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", f"http://127.0.0.1:{_free_port()}")

    with pytest.raises(server.LocalStackError, match="LOCALSTACK_REUSE_ONLY is set"):
        server.start(timeout=5)


def test_our_own_command_line_is_recognised_and_pytest_is_not(server):
    assert server.localstack_command()[1:] == ["-m", "localstack.runtime.main"]
    assert server.localstack_command()[0] == str(server.venv_python())
    assert not server.is_our_localstack(os.getpid())
