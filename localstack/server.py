"""Run LocalStack on this host, without Docker, with Lambda functions as local processes.

CLI (run from the repository root with any Python >= 3.11: standard library only, no requests, so
that the bare Python of `make localstack` and `make stop` runs it too)::

    python localstack/server.py install   # venv + runtime packages (idempotent, fast when done)
    python localstack/server.py start     # install, start in the background, wait until healthy
    python localstack/server.py wait      # wait until the endpoint is healthy
    python localstack/server.py status    # JSON: endpoint, pid, healthy
    python localstack/server.py stop      # stop what `start` started; the port must be free after
    python localstack/server.py check-stopped  # exit 1 if a process, pid file or the port is left

As a library (the pytest session fixture)::

    with localstack_running() as endpoint:   # "http://127.0.0.1:4566"
        ...

If ``AWS_ENDPOINT_URL`` or ``LOCALSTACK_ENDPOINT`` already points at a healthy LocalStack,
``start`` reuses it and ``stop`` leaves it alone; so it does with a healthy LocalStack that it
finds on its own port without having started it. ``stop`` signals only a process whose command
line proves it is the LocalStack this checkout started (a pid file can outlive a reboot), and
``start``/``stop`` hold a lock in the state dir, so concurrent starts cannot start two.

Paths: the venv is ``build/localstack/venv`` (Python 3.13), the runtime packages of the Lambda
runtimes ``build/lambda-runtime/<runtime>/``, and state (log, pid file, volume, scratch space)
``build/localstack/``. Settings (environment): ``LOCALSTACK_PYTHON`` (interpreter for the venv;
default: this one when it is 3.13, else ``python3.13`` on PATH),
``LOCALSTACK_GATEWAY_LISTEN`` (default ``127.0.0.1:4566``), ``LOCALSTACK_GATEWAY_SERVER``
(default ``twisted``), ``LOCALSTACK_STATE_DIR`` (pid file, log and volume of this instance),
``LOCALSTACK_START_TIMEOUT`` (s), ``LOCALSTACK_REUSE_ONLY=1`` (never start one: fail unless the
configured endpoint is healthy; Docker mode sets it so that no host-mode LocalStack starts there).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
BUILD_DIR = REPO_ROOT / "build" / "localstack"
VENV_DIR = BUILD_DIR / "venv"
RUNTIME_PACKAGES_DIR = REPO_ROOT / "build" / "lambda-runtime"
# State of one running instance. LOCALSTACK_STATE_DIR moves it, so that a second instance (with
# its own LOCALSTACK_GATEWAY_LISTEN) can run beside the default one; the venv stays shared.
STATE_DIR = Path(os.environ.get("LOCALSTACK_STATE_DIR") or BUILD_DIR).resolve()
LOG_FILE = STATE_DIR / "localstack.log"
PID_FILE = STATE_DIR / "localstack.pid"
# flock()ed by start and stop for their whole run; the kernel releases it when the holder dies.
LOCK_FILE = STATE_DIR / "localstack.lock"
VOLUME_DIR = STATE_DIR / "volume"
WORK_DIR = STATE_DIR / "host-executor"
CACHE_DIR = STATE_DIR / "cache"
TMP_DIR = STATE_DIR / "tmp"

REQUIREMENTS = HERE / "requirements.in"
CONSTRAINTS = HERE / "constraints.txt"
RUNTIME_REQUIREMENTS = HERE / "lambda-runtime-requirements.txt"
EXECUTOR_PACKAGE = HERE / "host_executor"
EXECUTOR_NAME = "host"
LAMBDA_RUNTIMES = {"python3.13": "3.13", "python3.12": "3.12"}

DEFAULT_LISTEN = "127.0.0.1:4566"
VENV_PYTHON_VERSION = "3.13"  # what constraints.txt is resolved for
DEFAULT_START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
# How long start/stop wait for another start/stop (first run: install, then start) to finish.
LOCK_WAIT_S = 600.0
HEALTH_PATH = "/_localstack/health"

LOG = logging.getLogger("localstack-host")


class LocalStackError(RuntimeError):
    """LocalStack could not be installed, started or stopped."""


@dataclass(frozen=True)
class Handle:
    """A LocalStack endpoint; ``owned`` is False when an existing one was reused."""

    endpoint: str
    owned: bool
    pid: int | None = None


def _log(level: int, message: str, **fields) -> None:
    LOG.log(level, message, extra={"fields": fields})


def gateway_listen() -> str:
    """Return ``host:port`` that our LocalStack listens on."""
    return os.environ.get("LOCALSTACK_GATEWAY_LISTEN", DEFAULT_LISTEN)


def own_endpoint() -> str:
    """Return the URL of the LocalStack this module starts."""
    return f"http://{gateway_listen()}"


def configured_endpoint() -> str | None:
    """Return the endpoint named by ``LOCALSTACK_ENDPOINT`` or ``AWS_ENDPOINT_URL``, if any."""
    return os.environ.get("LOCALSTACK_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or None


def reuse_only() -> bool:
    """True if ``LOCALSTACK_REUSE_ONLY`` forbids starting a LocalStack of our own."""
    return os.environ.get("LOCALSTACK_REUSE_ONLY", "").strip().lower() in {"1", "true", "yes"}


def is_healthy(endpoint: str, timeout: float = 2.0) -> bool:
    """True if ``endpoint`` answers LocalStack's health check."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(endpoint.rstrip("/") + HEALTH_PATH, timeout=timeout) as response:
            return response.status == 200 and "services" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def wait_healthy(endpoint: str, timeout: float, process: subprocess.Popen | None = None) -> float:
    """Poll the health check until it answers; return the seconds it took.

    Raises ``LocalStackError`` at the deadline, or as soon as ``process`` exits.
    """
    started = time.monotonic()
    deadline = started + timeout
    interval = 0.1
    while True:
        if is_healthy(endpoint):
            return time.monotonic() - started
        if process is not None and process.poll() is not None:
            raise LocalStackError(
                f"LocalStack exited with code {process.returncode} before it was healthy; "
                f"see {LOG_FILE}:\n{_log_tail()}"
            )
        if time.monotonic() >= deadline:
            raise LocalStackError(
                f"{endpoint} not healthy after {timeout:.0f} s; see {LOG_FILE}:\n{_log_tail()}"
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 1.0)


def _log_tail(lines: int = 20) -> str:
    try:
        return "\n".join(LOG_FILE.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _port_of(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "127.0.0.1", int(port)


def port_in_use(listen: str) -> bool:
    """True if something accepts TCP connections at ``host:port``."""
    host, port = _port_of(listen)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or ".egg-info" in str(file):
                continue
            h.update(str(file.relative_to(HERE)).encode())
            h.update(file.read_bytes())
    return h.hexdigest()


def venv_python() -> Path:
    """Path of the venv's interpreter."""
    return VENV_DIR / "bin" / "python"


def _base_python() -> str:
    from harness.interpreters import PythonNotFound, find_python

    try:
        return find_python(VENV_PYTHON_VERSION, "LOCALSTACK_PYTHON")
    except PythonNotFound as exc:
        raise LocalStackError(str(exc)) from None


def _run(command: list[str]) -> None:
    _log(logging.INFO, "run", command=" ".join(command))
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise LocalStackError(f"command failed ({result.returncode}): {command}\n{result.stdout[-4000:]}")


def install() -> None:
    """Create/update the venv and the Lambda runtime packages; a no-op when the stamps match."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    stamp = VENV_DIR / ".installed"
    key = _digest(REQUIREMENTS, CONSTRAINTS, EXECUTOR_PACKAGE / "pyproject.toml")
    if not (stamp.exists() and stamp.read_text() == key and venv_python().exists()):
        if not venv_python().exists():
            _run([_base_python(), "-m", "venv", str(VENV_DIR)])
        _pip_install("-c", str(CONSTRAINTS), "-r", str(REQUIREMENTS), "-e", str(EXECUTOR_PACKAGE))
        stamp.write_text(key)
    runtime_key = _digest(RUNTIME_REQUIREMENTS)
    for runtime, version in LAMBDA_RUNTIMES.items():
        target = RUNTIME_PACKAGES_DIR / runtime
        runtime_stamp = target / ".installed"
        if runtime_stamp.exists() and runtime_stamp.read_text() == runtime_key:
            continue
        # The runtime's own packages, for its Python version, whatever the venv's Python is.
        _pip_install(
            "--upgrade",
            "--no-deps",
            "--only-binary=:all:",
            f"--python-version={version}",
            "--implementation=cp",
            f"--target={target}",
            "-r",
            str(RUNTIME_REQUIREMENTS),
        )
        runtime_stamp.write_text(runtime_key)


def _pip_install(*args: str) -> None:
    _run([str(venv_python()), "-m", "pip", "install", "--quiet", *args])


def localstack_command() -> list[str]:
    """The command line ``start`` runs, and by which ``stop`` recognises what it may signal."""
    return [str(venv_python()), "-m", "localstack.runtime.main"]


def _command_line(pid: int) -> list[str]:
    """``/proc/<pid>/cmdline`` as arguments; empty if there is no such process, or for a zombie
    or a kernel thread."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def _describe_process(pid: int) -> str:
    """The command line of ``pid`` for a log line, or ``[name]`` when it has none."""
    command = " ".join(_command_line(pid))
    if not command:
        with contextlib.suppress(OSError):
            command = "[" + Path(f"/proc/{pid}/comm").read_text().strip() + "]"
    return command[:200]


def is_our_localstack(pid: int) -> bool:
    """True if process ``pid`` runs ``localstack_command()`` (our venv's python, LocalStack's main)."""
    expected = localstack_command()
    return _command_line(pid)[: len(expected)] == expected


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _pid_in_file() -> int | None:
    try:
        return int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_pid() -> int | None:
    """The pid in the pid file if that process is alive and is our LocalStack, else None.

    Has no side effects beyond reaping our own exited child; ``_discard_stale_pid_file`` removes
    a pid file that fails this test.
    """
    pid = _pid_in_file()
    if pid is None:
        return None
    # A child of this process that has exited stays a zombie (no command line) until reaped.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return pid if _process_exists(pid) and is_our_localstack(pid) else None


def _discard_stale_pid_file() -> None:
    """Remove a pid file whose process is gone or is not our LocalStack, and say so.

    After a reboot the pid may belong to an unrelated process: it is never signalled.
    """
    pid = _pid_in_file()
    if not PID_FILE.exists() or (pid is not None and _read_pid() == pid):
        return
    PID_FILE.unlink(missing_ok=True)
    if pid is None:
        _log(logging.INFO, "unreadable pid file removed", pid_file=str(PID_FILE))
    elif not _process_exists(pid):
        _log(logging.INFO, "stale pid file removed: no such process", pid=pid, pid_file=str(PID_FILE))
    else:
        _log(
            logging.WARNING,
            "stale pid file removed: the process is not our LocalStack, left alone",
            pid=pid,
            command=_describe_process(pid),
            pid_file=str(PID_FILE),
        )


@contextlib.contextmanager
def _state_lock(wait_s: float | None = None) -> Iterator[None]:
    """Hold ``LOCK_FILE`` (flock, exclusive) inside; wait up to ``wait_s`` for another holder.

    Raises ``LocalStackError`` if the lock is still held at the deadline.
    """
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a+") as lock:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LocalStackError(
                        f"another start or stop still holds {LOCK_FILE} after {wait_s:.0f} s; "
                        "wait for it, or stop it"
                    ) from None
                if not told:
                    _log(logging.INFO, "another start or stop is running, waiting", lock=str(LOCK_FILE))
                    told = True
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _localstack_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "LOCALSTACK_ENDPOINT", "PYTHON", "VIRTUAL_ENV"))
    }
    listen = gateway_listen()
    env.update(
        {
            "GATEWAY_LISTEN": listen,
            # twisted (LocalStack's default) ignores the IPv4 host of GATEWAY_LISTEN; the hook in
            # host_executor/localstack_host_executor/gateway.py makes it bind that host.
            "GATEWAY_SERVER": os.environ.get("LOCALSTACK_GATEWAY_SERVER", "twisted"),
            "LOCALSTACK_HOST": listen,
            "LOCALSTACK_VOLUME_DIR": str(VOLUME_DIR),
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "DNS_ADDRESS": "0",
            "LAMBDA_RUNTIME_EXECUTOR": EXECUTOR_NAME,
            "LAMBDA_HOST_RUNTIME_PACKAGES_DIR": str(RUNTIME_PACKAGES_DIR),
            "LAMBDA_HOST_WORK_DIR": str(WORK_DIR),
            "XDG_CACHE_HOME": str(CACHE_DIR),
            "TMPDIR": str(TMP_DIR),
        }
    )
    return env


def start(timeout: float | None = None) -> Handle:
    """Start LocalStack in the background (or reuse a healthy one) and wait until it is healthy.

    Holds the state dir's lock throughout, so a concurrent ``start`` waits, then reuses this one.
    """
    timeout = timeout or float(os.environ.get("LOCALSTACK_START_TIMEOUT", DEFAULT_START_TIMEOUT_S))
    external = configured_endpoint()
    if external and is_healthy(external):
        _log(logging.INFO, "reusing LocalStack", endpoint=external)
        return Handle(external, owned=False)
    if reuse_only():
        named = external or "none; set LOCALSTACK_ENDPOINT"
        raise LocalStackError(
            f"LOCALSTACK_REUSE_ONLY is set and the configured endpoint ({named}) is not a healthy "
            "LocalStack; not starting one of our own"
        )
    if external and external.rstrip("/") != own_endpoint():
        _log(
            logging.WARNING,
            "configured endpoint not healthy, starting our own",
            configured=external,
            endpoint=own_endpoint(),
        )
    with _state_lock():
        return _start_locked(timeout)


def _start_locked(timeout: float) -> Handle:
    endpoint = own_endpoint()
    _discard_stale_pid_file()
    pid = _read_pid()
    if pid is not None:
        wait_healthy(endpoint, timeout)
        _log(logging.INFO, "LocalStack already running", endpoint=endpoint, pid=pid)
        return Handle(endpoint, owned=True, pid=pid)
    if is_healthy(endpoint):
        _log(
            logging.INFO,
            "reusing the healthy LocalStack already listening on our port; we did not start it, "
            "so stop leaves it running",
            endpoint=endpoint,
        )
        return Handle(endpoint, owned=False)
    if port_in_use(gateway_listen()):
        raise LocalStackError(
            f"{gateway_listen()} is in use by a process we did not start and it is not a healthy "
            "LocalStack; free the port or set LOCALSTACK_GATEWAY_LISTEN"
        )
    install()
    # Scratch space of a previous run that did not stop cleanly (unzipped code, environments).
    for path in (WORK_DIR, TMP_DIR):
        shutil.rmtree(path, ignore_errors=True)
    for path in (VOLUME_DIR, WORK_DIR, CACHE_DIR, TMP_DIR):
        path.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    process = _spawn()
    PID_FILE.write_text(str(process.pid))
    try:
        wait_healthy(endpoint, timeout, process)
    except BaseException:
        if not _stop_locked():
            # The leader has exited: what is left of the group we just created goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            PID_FILE.unlink(missing_ok=True)
        raise
    _log(
        logging.INFO,
        "LocalStack ready",
        endpoint=endpoint,
        pid=process.pid,
        seconds=round(time.monotonic() - started, 2),
    )
    return Handle(endpoint, owned=True, pid=process.pid)


def _spawn() -> subprocess.Popen:
    """Start ``localstack_command()`` in its own process group, logging to ``LOG_FILE``."""
    with open(LOG_FILE, "ab") as log:
        return subprocess.Popen(
            localstack_command(),
            env=_localstack_env(),
            cwd=STATE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _group_alive(pgid: int) -> bool:
    # Reap the leader if it is our child (started in this process): a zombie still counts
    # as a member of its process group.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    interval = 0.05
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)
    return True


def stop() -> bool:
    """Stop the LocalStack we started (its whole process group); True if one was running.

    Only a process whose command line is ``localstack_command()`` is signalled; a stale pid file
    is removed. Raises ``LocalStackError`` if the gateway port is still taken afterwards.
    """
    with _state_lock():
        return _stop_locked()


def _stop_locked() -> bool:
    _discard_stale_pid_file()
    pid = _read_pid()
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if not _wait_until(lambda: not _group_alive(pid), STOP_TIMEOUT_S):
        _log(logging.WARNING, "LocalStack did not stop in time, killing", pid=pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_until(lambda: not _group_alive(pid), 5.0)
    PID_FILE.unlink(missing_ok=True)
    if not _wait_until(lambda: not port_in_use(gateway_listen()), 5.0):
        raise LocalStackError(f"{gateway_listen()} still in use after stopping LocalStack {pid}")
    _log(logging.INFO, "LocalStack stopped", pid=pid)
    return True


def status() -> dict:
    """Describe the endpoint that ``start`` would use."""
    external = configured_endpoint()
    if external and is_healthy(external):
        return {"endpoint": external, "healthy": True, "owned": False, "pid": None}
    pid = _read_pid()
    endpoint = own_endpoint()
    return {"endpoint": endpoint, "healthy": is_healthy(endpoint), "owned": pid is not None, "pid": pid}


def leftovers() -> list[str]:
    """What a finished run must not leave behind: our pid file, processes, a taken port."""
    found = []
    if PID_FILE.exists():
        found.append(f"pid file {PID_FILE}")
    markers = (str(VENV_DIR), "localstack_host_executor")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if any(marker in command for marker in markers):
                found.append(f"process {cmdline.parent.name}: {command[:200]}")
    if not configured_endpoint() and port_in_use(gateway_listen()):
        found.append(f"port {gateway_listen()} still in use")
    return found


@contextlib.contextmanager
def localstack_running(timeout: float | None = None) -> Iterator[str]:
    """Context manager: LocalStack is healthy inside; yields the endpoint URL.

    Stops LocalStack on exit only if this call started it.
    """
    already_ours = _read_pid() is not None
    handle = start(timeout)
    try:
        yield handle.endpoint
    finally:
        if handle.owned and not already_ours:
            stop()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    from thumbnailer.logs import json_handler

    logging.basicConfig(level=logging.INFO, handlers=[json_handler()])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "start", "stop", "status", "wait", "check-stopped"])
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for health")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            handle = start(args.timeout)
            print(json.dumps({"endpoint": handle.endpoint, "owned": handle.owned, "pid": handle.pid}))
        elif args.command == "stop":
            stop()
        elif args.command == "status":
            info = status()
            print(json.dumps(info))
            return 0 if info["healthy"] else 3
        elif args.command == "check-stopped":
            found = leftovers()
            for item in found:
                _log(logging.ERROR, "left behind", item=item)
            return 1 if found else 0
        elif args.command == "wait":
            endpoint = configured_endpoint() or own_endpoint()
            seconds = wait_healthy(endpoint, args.timeout or DEFAULT_START_TIMEOUT_S)
            print(json.dumps({"endpoint": endpoint, "waited_s": round(seconds, 2)}))
    except LocalStackError as e:
        _log(logging.ERROR, str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(1, str(REPO_ROOT))  # thumbnailer.logs, harness.interpreters
    sys.exit(main())
