"""``RuntimeExecutor`` that runs each execution environment as a Python process on 127.0.0.1.

Each environment is ``<interpreter> -I -S -u bootstrap.py <config.json>`` with only the
function's environment (no variables of LocalStack's own process), its own ``TMPDIR``, and a
``sys.path`` of: function code, layers (as ``/opt/python`` would be), the standard library, and
the runtime's bundled packages (boto3). The executor enforces the function timeout by killing the
process; the next invocation then starts a fresh process (a cold start, as on AWS).
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

from localstack.http import Response
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import (
    FunctionVersion,
    InvocationResult,
)
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from werkzeug import Request

from localstack import config
from localstack_host_executor import runtimes

LOG = logging.getLogger(__name__)

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
LOOPBACK = "127.0.0.1"
STOP_GRACE_S = 2.0


class HostExecutorEndpoint(ExecutorEndpoint):
    """Executor endpoint that learns the environment's port from its ready call."""

    def status_ready(self, request: Request, executor_id: str) -> Response:
        """Take ``{"port": N}`` from the ready body, then mark the environment started."""
        try:
            self.container_port = int(json.loads(request.data)["port"])
        except (ValueError, KeyError, TypeError):
            LOG.warning("Ready call of %s without a port: %r", executor_id, request.data)
            return Response(status=HTTPStatus.BAD_REQUEST)
        return super().status_ready(request, executor_id)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HostRuntimeExecutor(RuntimeExecutor):
    """Runs a Zip-packaged Python function as a local process (one process per environment)."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = HostExecutorEndpoint(self.id, container_address=LOOPBACK)
        self.env_dir = runtimes.work_dir() / f"{function_version.id.function_name}-{id}"
        self.process: subprocess.Popen | None = None
        self.env_vars: dict[str, str] = {}
        self._lock = threading.Lock()
        self._current_request_id: str | None = None
        self._stopped = False

    def _build_command(self) -> tuple[list[str], Path]:
        version_config = self.function_version.config
        runtime = version_config.runtime
        interpreter = runtimes.interpreter_for(runtime)
        python_version = [int(part) for part in runtime.removeprefix("python").split(".")]
        code_dir = str(version_config.code.get_unzipped_code_location())
        path_front = [code_dir]
        # AWS extracts layers into /opt in order, later layers overwriting earlier ones, and puts
        # /opt/python/lib/pythonX.Y/site-packages and /opt/python on sys.path. Separate folders
        # give the same precedence when the last layer comes first.
        for layer in reversed(version_config.layers):
            python_dir = Path(layer.code.get_unzipped_code_location()) / "python"
            site = python_dir / "lib" / runtime / "site-packages"
            path_front += [str(site), str(python_dir)]
        packages = runtimes.runtime_packages_dir(runtime)
        path_back = [str(packages)] if packages else []
        config_file = self.env_dir / "bootstrap.json"
        config_file.write_text(
            json.dumps(
                {
                    "python_version": python_version,
                    "path_front": path_front,
                    "path_back": path_back,
                    "capture_file": str(self.env_dir / "invocation.log"),
                }
            )
        )
        return [interpreter, "-I", "-S", "-u", str(BOOTSTRAP), str(config_file)], Path(code_dir)

    def _process_env(self, code_dir: Path) -> dict[str, str]:
        env = {key: str(value) for key, value in self.env_vars.items()}
        interpreter_dir = os.path.dirname(runtimes.interpreter_for(self.function_version.config.runtime))
        tmp_dir = self.env_dir / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(code_dir),
                "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
                "PATH": f"{interpreter_dir}:/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "TMPDIR": str(tmp_dir),
                "HOME": str(tmp_dir),
            }
        )
        env.update(self.function_version.config.environment or {})
        return env

    def _spawn(self) -> None:
        """Start a fresh environment process and block until it reported ready (or failed)."""
        self.executor_endpoint.startup_future = Future()
        self.env_dir.mkdir(parents=True, exist_ok=True)
        command, code_dir = self._build_command()
        # The child keeps its own handle on the log file; ours is closed right after the spawn.
        with open(self.env_dir / "output.log", "ab") as log_file:
            process = subprocess.Popen(
                command,
                env=self._process_env(code_dir),
                cwd=code_dir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self.process = process
        LOG.debug("Started host environment %s (pid %s): %s", self.id, process.pid, command)
        threading.Thread(target=self._watch, args=(process,), name=f"host-env-{self.id}", daemon=True).start()
        self.executor_endpoint.wait_for_startup()

    def _watch(self, process: subprocess.Popen) -> None:
        """Turn an unexpected exit into a startup failure or an invocation error."""
        code = process.wait()
        with self._lock:
            if self._stopped or process is not self.process:
                return
            endpoint = self.executor_endpoint
            message = f"Runtime exited with error: exit status {code}"
            if endpoint.startup_future and not endpoint.startup_future.done():
                from localstack.services.lambda_.invocation.executor_endpoint import (
                    StatusErrorException,
                )

                payload = {"errorType": "Runtime.ExitError", "errorMessage": message}
                endpoint.startup_future.set_exception(
                    StatusErrorException(message, json.dumps(payload).encode())
                )
            future = endpoint.invocation_future
            if future and not future.done() and self._current_request_id:
                request_id = self._current_request_id
                payload = {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: {message}",
                }
                logs = self._captured_logs() + f"RequestId: {request_id} Error: {message}\n"
                future.set_result(InvocationResult(request_id, json.dumps(payload).encode(), True, logs))

    def _captured_logs(self) -> str:
        try:
            return (self.env_dir / "invocation.log").read_text(errors="replace")
        except OSError:
            return ""

    def _on_timeout(self, request_id: str) -> None:
        """Stop an invocation that overran the function timeout, like AWS's sandbox does."""
        timeout = self.function_version.config.timeout
        with self._lock:
            future = self.executor_endpoint.invocation_future
            if self._current_request_id != request_id or future is None or future.done():
                return
            message = f"Task timed out after {timeout:.2f} seconds"
            logs = (
                self._captured_logs()
                + f"{_timestamp()} {request_id} {message}\n"
                + f"END RequestId: {request_id}\n"
                + f"REPORT RequestId: {request_id}\tDuration: {timeout * 1000:.2f} ms\t"
                + f"Billed Duration: {timeout * 1000} ms\t"
                + f"Memory Size: {self.function_version.config.memory_size} MB\tStatus: timeout\n"
            )
            payload = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: {message}",
            }
            future.set_result(InvocationResult(request_id, json.dumps(payload).encode(), True, logs))
            process = self.process
            self.process = None
        LOG.info("Invocation %s of %s timed out; stopping its environment process", request_id, self.id)
        self._kill(process)

    @staticmethod
    def _kill(process: subprocess.Popen | None) -> None:
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def start(self, env_vars: dict[str, str]) -> None:
        """Start the environment process; returns when it reported ready."""
        self.env_vars = dict(env_vars)
        self.executor_endpoint.start()
        self._spawn()

    def stop(self) -> None:
        """Stop the process, unregister the endpoint and remove the scratch space."""
        with self._lock:
            self._stopped = True
            process = self.process
            self.process = None
        self._kill(process)
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:
            LOG.debug("Error while shutting down endpoint of %s: %s", self.id, e)
        shutil.rmtree(self.env_dir, ignore_errors=True)

    def get_address(self) -> str:
        """The environment listens on the loopback interface."""
        return LOOPBACK

    def get_endpoint_from_executor(self) -> str:
        """Address at which the environment reaches LocalStack."""
        return config.HOSTNAME_FROM_LAMBDA or LOOPBACK

    def get_runtime_endpoint(self) -> str:
        """Callback URL prefix for this environment."""
        port = config.GATEWAY_LISTEN[0].port
        return (
            f"http://{self.get_endpoint_from_executor()}:{port}{self.executor_endpoint.get_endpoint_prefix()}"
        )

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        """Send one invocation; a process killed by a timeout is restarted first (cold start)."""
        request_id = payload["invoke-id"]
        if self.process is None or self.process.poll() is not None:
            LOG.debug("Restarting host environment %s before invocation %s", self.id, request_id)
            self._spawn()
        self._current_request_id = request_id
        timer = threading.Timer(self.function_version.config.timeout, self._on_timeout, (request_id,))
        timer.daemon = True
        timer.start()
        try:
            return self.executor_endpoint.invoke(payload)
        finally:
            timer.cancel()
            self._current_request_id = None

    def get_logs(self) -> str:
        """Everything the environment wrote (init output and all invocations)."""
        try:
            return (self.env_dir / "output.log").read_text(errors="replace")
        except OSError:
            return "Environment has no logs"

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        """Check the runtime and unzip code and layers, so that starting an environment is fast."""
        version_config = function_version.config
        if version_config.code is None:
            raise LambdaRuntimeException("The host executor runs Zip functions only, not images")
        runtimes.interpreter_for(version_config.runtime)
        runtimes.runtime_packages_dir(version_config.runtime)
        version_config.code.prepare_for_execution()
        for layer in version_config.layers:
            layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """Nothing to clean: unzipped code is LocalStack's; scratch space goes with ``stop``."""

    @classmethod
    def validate_environment(cls) -> bool:
        """The host executor needs no container engine."""
        LOG.debug("Host executor active, python interpreter of LocalStack: %s", sys.executable)
        return True
