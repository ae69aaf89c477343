"""``RuntimeExecutor`` that runs each execution environment as a confined process on the host.

An environment is ``<interpreter> -I -S launcher.py <config.json>``: AWS's runtime interface client
(``awslambdaric``) in a sandbox (see ``launcher.py`` and ``sandbox.py``), talking to a Runtime API
this executor serves for it (``runtime_api.py``). The executor plays the Lambda platform:

- init: limited to 10 s; a failed or timed-out init is logged (``INIT_REPORT ... Phase: init``) and
  retried inside the next invocation, within the function's timeout, as AWS does;
- invoke: hands the event to the runtime's ``/next``, waits for its response or error, then stops
  the environment's processes (SIGSTOP) until the next invocation (SIGCONT): nothing runs between
  invocations;
- limits: the function timeout (``Sandbox.Timedout``) and the memory size (the kernel or the RSS
  poller kills the process: ``Runtime.OutOfMemory``); after either, or any exit of the runtime
  (``Runtime.ExitError``), the next invocation starts a new runtime process;
- logs: ``INIT_START``, ``START``, ``END``, ``REPORT`` (``INIT_REPORT`` on failures) around what
  the runtime wrote; LocalStack stores them in CloudWatch Logs.
"""

import base64
import hashlib
import ipaddress
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path

from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from localstack import config
from localstack_host_executor import runtimes, sandbox
from localstack_host_executor.output import EnvironmentLog, ProcessOutput
from localstack_host_executor.runtime_api import Invocation, Outcome, RuntimeApi

LOG = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
TASK_ROOT = "/var/task"
RUNTIME_DIR = "/var/runtime"
OPT_DIR = "/opt"
STOP_WAIT_S = 5.0
# Variables of LocalStack's own (Docker) executor protocol; not part of a function's environment.
LOCALSTACK_PROTOCOL_VARIABLES = frozenset(
    {"LOCALSTACK_RUNTIME_ID", "LOCALSTACK_RUNTIME_ENDPOINT", "LOCALSTACK_FUNCTION_ACCOUNT_ID"}
)
# What the runtime process needs to work; a function's own variables cannot change them.
PLATFORM_VARIABLES = frozenset(
    {
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "_LAMBDA_TELEMETRY_LOG_FD",
        "_HANDLER",
    }
)
# How AWS's platform (written in Go) names the signal that ended a runtime.
SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating point exception",
}


class EnvironmentStopped(LambdaRuntimeException):
    """The environment was stopped while an invocation was running."""


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def version_dir(function_version: FunctionVersion) -> Path:
    """Folder of what all environments of this function version share (the merged ``/opt``)."""
    version_config = function_version.config
    code = version_config.code
    identity = [
        function_version.qualified_arn,
        getattr(code, "code_sha256", None) or str(code.get_unzipped_code_location()),
        [layer.layer_version_arn for layer in version_config.layers],
    ]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    return runtimes.work_dir() / "versions" / f"{function_version.id.function_name}-{key}"


def prepare_opt(function_version: FunctionVersion) -> Path:
    """Merge the version's layers into one ``/opt`` folder (once) and return it."""
    opt = version_dir(function_version) / "opt"
    if not opt.is_dir():
        layers = [Path(layer.code.get_unzipped_code_location()) for layer in function_version.config.layers]
        sandbox.merge_layers(layers, opt)
    return opt


def _exit_reason(exit_code: int) -> str:
    if exit_code < 0:
        number = -exit_code
        try:
            name = SIGNAL_NAMES.get(signal.Signals(number), signal.Signals(number).name)
        except ValueError:
            name = str(number)
        return f"signal: {name}"
    return f"exit status {exit_code}"


class RuntimeProcess:
    """One runtime process of an environment with its Runtime API and output pipes."""

    def __init__(self, process: subprocess.Popen, api: RuntimeApi, output: ProcessOutput, oom_kills: int):
        self.process = process
        self.api = api
        self.output = output
        self.oom_kills_before = oom_kills

    @property
    def pid(self) -> int:
        """Process id (also its process group id)."""
        return self.process.pid

    def freeze(self) -> None:
        """Stop every process of the environment until ``thaw`` (what Lambda does between invokes)."""
        sandbox.signal_group(self.process, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let the environment's processes run again."""
        sandbox.signal_group(self.process, signal.SIGCONT)

    def discard(self) -> None:
        """Kill the processes, collect their last output, stop the Runtime API."""
        sandbox.kill_group(self.process)
        try:
            self.process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            LOG.warning("Runtime process %s did not exit after SIGKILL", self.pid)
        self.output.close()
        self.api.close()


class HostRuntimeExecutor(RuntimeExecutor):
    """Runs a Zip-packaged Python function as a confined local process (one per environment)."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        version_config = function_version.config
        self.runtime = version_config.runtime
        self.interpreter = runtimes.interpreter_for(self.runtime)
        self.env_dir = runtimes.work_dir() / "environments" / f"{function_version.id.function_name}-{id}"
        self.env_vars: dict[str, str] = {}
        self.capabilities: sandbox.Capabilities | None = None
        self.memory: sandbox.MemoryLimit | None = None
        self.log: EnvironmentLog | None = None
        self.current: RuntimeProcess | None = None
        # Set by the plugin's hook just before ``invoke`` (LocalStack's payload has no client context).
        self.client_context: str | None = None
        self._init_duration_ms: float | None = None
        self._lock = threading.Lock()
        self._stopped = False

    # -- process set-up ---------------------------------------------------------------------------

    def _paths(self) -> dict[str, str]:
        """Where the function sees its code, layers and runtime packages."""
        if self.capabilities.isolated_file_system:
            return {"task": TASK_ROOT, "opt": OPT_DIR, "runtime": RUNTIME_DIR}
        return {
            "task": str(self.function_version.config.code.get_unzipped_code_location()),
            "opt": str(prepare_opt(self.function_version)),
            "runtime": str(runtimes.runtime_packages_dir(self.runtime) or ""),
        }

    def _write_config(self) -> Path:
        version_config = self.function_version.config
        paths = self._paths()
        packages = runtimes.runtime_packages_dir(self.runtime)
        tmp = {"kind": self.capabilities.tmp, "size_mb": version_config.ephemeral_storage.size}
        if self.capabilities.tmp == "ext4-image":
            tmp["image"] = str(self.env_dir / "tmp.img")
            sandbox.make_ext4_image(Path(tmp["image"]), version_config.ephemeral_storage.size)
        else:
            (self.env_dir / "tmp").mkdir(exist_ok=True)
        config_file = self.env_dir / "launcher.json"
        config_file.write_text(
            json.dumps(
                {
                    "parent_pid": os.getpid(),
                    "cgroup_procs": self.memory.procs_file,
                    "isolate": self.capabilities.isolated_file_system,
                    "read_only_mounts": [
                        [str(version_config.code.get_unzipped_code_location()), TASK_ROOT],
                        [str(prepare_opt(self.function_version)), OPT_DIR],
                        [str(packages), RUNTIME_DIR],
                    ],
                    "tmp": tmp,
                    "path_front": [
                        paths["task"],
                        f"{paths['opt']}/python/lib/{self.runtime}/site-packages",
                        f"{paths['opt']}/python",
                    ],
                    "path_back": [paths["runtime"]] if packages else [],
                }
            )
        )
        return config_file

    def _process_env(self, api_address: str, telemetry_fd: int) -> dict[str, str]:
        paths = self._paths()
        task, opt, runtime_dir = paths["task"], paths["opt"], paths["runtime"]
        env = {
            key: str(value)
            for key, value in self.env_vars.items()
            if key not in LOCALSTACK_PROTOCOL_VARIABLES
        }
        env.update(
            {
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.runtime}",
                "AWS_LAMBDA_RUNTIME_API": api_address,
                "_LAMBDA_TELEMETRY_LOG_FD": str(telemetry_fd),
                "LAMBDA_TASK_ROOT": task,
                "LAMBDA_RUNTIME_DIR": runtime_dir,
                "PATH": f"{os.path.dirname(self.interpreter)}:/usr/local/bin:/usr/bin/:/bin:{opt}/bin",
                "LD_LIBRARY_PATH": (
                    f"/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task}:{task}/lib:{opt}/lib"
                ),
                "LANG": "C.UTF-8",
                "HOME": "/tmp",
            }
        )
        if not self.capabilities.isolated_file_system:
            env["TMPDIR"] = env["HOME"] = str(self.env_dir / "tmp")
        for key, value in (self.function_version.config.environment or {}).items():
            if key not in PLATFORM_VARIABLES:
                env[key] = str(value)
        return env

    def _spawn(self) -> RuntimeProcess:
        api = RuntimeApi()
        output_read, output_write = os.pipe()
        telemetry_read, telemetry_write = os.pipe()
        command = [self.interpreter, "-I", "-S"]
        if not self.capabilities.isolated_file_system:
            command.append("-B")  # code folders are writable here: keep them free of __pycache__
        command += [str(sandbox.LAUNCHER), str(self.env_dir / "launcher.json")]
        oom_kills_before = self.memory.oom_kills()
        try:
            process = sandbox.spawner.popen(
                command,
                env=self._process_env(api.address, telemetry_write),
                cwd=self.env_dir,
                stdin=subprocess.DEVNULL,
                stdout=output_write,
                stderr=output_write,
                pass_fds=(telemetry_write,),
                process_group=0,
            )
        except BaseException:
            for fd in (output_read, telemetry_read):
                os.close(fd)
            api.close()
            raise
        finally:
            os.close(output_write)
            os.close(telemetry_write)
        output = ProcessOutput(output_read, telemetry_read, self.log)
        runtime = RuntimeProcess(process, api, output, oom_kills_before)
        self.memory.watch(process)
        threading.Thread(target=self._watch, args=(runtime,), name=f"host-env-{self.id}", daemon=True).start()
        LOG.debug("Started runtime process %s of environment %s: %s", process.pid, self.id, command)
        return runtime

    @staticmethod
    def _watch(runtime: RuntimeProcess) -> None:
        runtime.api.runtime_exited(runtime.process.wait())

    # -- phases -----------------------------------------------------------------------------------

    def _init(self, phase: str, deadline: float) -> tuple[Outcome | None, float]:
        """Start a runtime process and wait for its init: (None, ms) when ready, else (failure, ms)."""
        started = time.monotonic()
        self.log.add(f"INIT_START Runtime Version: {self.runtime.replace('python', 'python:')}\n")
        runtime = self._spawn()
        try:
            outcome = runtime.api.init_outcome.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            outcome = Outcome("timeout")
        duration_ms = (time.monotonic() - started) * 1000
        if outcome is None:
            with self._lock:
                if not self._stopped:
                    self.current = runtime
                    return None, duration_ms
            runtime.discard()
            raise EnvironmentStopped("Execution environment stopped during init")
        runtime.discard()
        if outcome.kind == "exit":
            outcome = self._exit_outcome(runtime, outcome)
        line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: {phase}\t"
        if outcome.kind == "timeout":
            line += "Status: timeout"
        else:
            line += f"Status: error\tError Type: {outcome.error_type}"
        self.log.add(line + "\n")
        return outcome, duration_ms

    def _exit_outcome(self, runtime: RuntimeProcess, outcome: Outcome) -> Outcome:
        """Name an exit like AWS: ``Runtime.OutOfMemory`` if the memory limit killed it."""
        killed_by_limit = self.memory.was_killed(runtime.pid, runtime.oom_kills_before)
        error_type = "Runtime.OutOfMemory" if killed_by_limit else "Runtime.ExitError"
        message = f"Runtime exited with error: {_exit_reason(outcome.exit_code)}"
        return Outcome("exit", message.encode(), error_type, outcome.exit_code)

    def _report(self, request_id: str, duration_ms: float, peak_mb: int, status: str = "") -> None:
        memory_size = self.function_version.config.memory_size
        init = ""
        billed = duration_ms
        if self._init_duration_ms is not None:
            init = f"\tInit Duration: {self._init_duration_ms:.2f} ms"
            billed += self._init_duration_ms
            self._init_duration_ms = None
        self.log.add(f"END RequestId: {request_id}\n")
        self.log.add(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(billed)} ms\tMemory Size: {memory_size} MB\t"
            f"Max Memory Used: {peak_mb} MB{init}{status}\n"
        )

    def _failure(self, request_id: str, outcome: Outcome, started: float, peak_mb: int) -> InvocationResult:
        """Result (and log lines) of an invocation whose runtime timed out, exited or failed init."""
        timeout = self.function_version.config.timeout
        duration_ms = (time.monotonic() - started) * 1000
        if outcome.kind == "timeout":
            message = f"Task timed out after {timeout:.2f} seconds"
            self.log.add(f"{_timestamp()} {request_id} {message}\n")
            payload = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: {message}",
            }
            body = json.dumps(payload).encode()
            status = "\tStatus: timeout"
            duration_ms = timeout * 1000.0
        elif outcome.kind == "exit":
            message = outcome.body.decode()
            self.log.add(f"RequestId: {request_id} Error: {message}\n{outcome.error_type}\n")
            payload = {
                "errorType": outcome.error_type,
                "errorMessage": f"RequestId: {request_id} Error: {message}",
            }
            body = json.dumps(payload).encode()
            status = f"\tStatus: error\tError Type: {outcome.error_type}"
        else:  # init-error: the runtime's own error document
            body = outcome.body
            status = f"\tStatus: error\tError Type: {outcome.error_type}"
        self._report(request_id, duration_ms, peak_mb, status)
        return InvocationResult(request_id, body, True, self.log.take())

    # -- RuntimeExecutor --------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        """Prepare the environment and run the init phase (a failure is reported by the first invoke)."""
        version_config = self.function_version.config
        self.env_vars = dict(env_vars)
        self.env_dir.mkdir(parents=True, exist_ok=True)
        self.capabilities = sandbox.host_capabilities(self.interpreter, runtimes.work_dir())
        self.memory = sandbox.MemoryLimit(self.capabilities, self.id, version_config.memory_size)
        self.log = EnvironmentLog(self.env_dir / "output.log")
        self._write_config()
        failure, duration_ms = self._init("init", time.monotonic() + runtimes.init_timeout_s())
        if failure is None:
            self._init_duration_ms = duration_ms

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        """Run one invocation (after a new init if the last one failed or the runtime is gone)."""
        request_id = payload["invoke-id"]
        version = self.function_version.id.qualifier
        started = time.monotonic()
        deadline = started + self.function_version.config.timeout
        if self.current is None:
            failure, _ = self._init("invoke", deadline)
            if failure is not None:
                self.log.add(f"START RequestId: {request_id} Version: {version}\n")
                return self._failure(request_id, failure, started, self.memory.peak_mb(None))
        runtime = self.current
        self.log.add(f"START RequestId: {request_id} Version: {version}\n")
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + deadline - time.monotonic()) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": payload.get("invoked-function-arn", ""),
            "Lambda-Runtime-Trace-Id": payload.get("trace-id") or "",
        }
        client_context = _decode_client_context(self.client_context)
        if client_context:
            headers["Lambda-Runtime-Client-Context"] = client_context
        event = (payload.get("payload") or "").encode()
        runtime.thaw()
        future = runtime.api.submit(Invocation(request_id, event, headers))
        try:
            outcome = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            outcome = Outcome("timeout")
        if self._stopped:
            raise EnvironmentStopped(
                f"Execution environment {self.id} stopped during invocation {request_id}"
            )
        peak_mb = self.memory.peak_mb(runtime.pid)
        if outcome.kind in ("response", "error"):
            runtime.output.drain()
            runtime.freeze()
            self._report(request_id, (time.monotonic() - started) * 1000, peak_mb)
            return InvocationResult(request_id, outcome.body, outcome.kind == "error", self.log.take())
        with self._lock:
            self.current = None
        runtime.discard()
        if outcome.kind == "exit":
            outcome = self._exit_outcome(runtime, outcome)
        LOG.info(
            "Invocation %s of %s ended by %s; its runtime process is gone", request_id, self.id, outcome.kind
        )
        return self._failure(request_id, outcome, started, peak_mb)

    def stop(self) -> None:
        """Kill the processes and remove the environment's cgroup and scratch space."""
        with self._lock:
            self._stopped = True
            runtime, self.current = self.current, None
        if runtime is not None:
            runtime.discard()
        if self.memory is not None:
            self.memory.remove()
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.env_dir, ignore_errors=True)

    def get_address(self) -> str:
        """The environment runs on this host."""
        return LOOPBACK

    def get_endpoint_from_executor(self) -> str:
        """Address at which the function reaches LocalStack: the gateway's listen address."""
        if config.HOSTNAME_FROM_LAMBDA:
            return config.HOSTNAME_FROM_LAMBDA
        host = config.GATEWAY_LISTEN[0].host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return LOOPBACK
        return host if address.version == 4 and not address.is_unspecified else LOOPBACK

    def get_runtime_endpoint(self) -> str:
        """LocalStack's callback URL for Docker-style environments (unused: see ``runtime_api``)."""
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{self.get_endpoint_from_executor()}:{port}/_localstack_lambda/{self.id}"

    def get_logs(self) -> str:
        """Everything the environment wrote (init output and all invocations)."""
        try:
            return (self.env_dir / "output.log").read_text(errors="replace")
        except OSError:
            return "Environment has no logs"

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        """Check the runtime, unzip code and layers, merge the layers, byte-compile the runtime."""
        version_config = function_version.config
        if version_config.code is None:
            raise LambdaRuntimeException("The host executor runs Zip functions only, not images")
        interpreter = runtimes.interpreter_for(version_config.runtime)
        runtimes.runtime_packages_dir(version_config.runtime)
        version_config.code.prepare_for_execution()
        for layer in version_config.layers:
            layer.code.prepare_for_execution()
        prepare_opt(function_version)
        runtimes.compile_runtime_packages(version_config.runtime, interpreter)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """Remove the merged ``/opt`` (unzipped code and layers are LocalStack's)."""
        shutil.rmtree(version_dir(function_version), ignore_errors=True)

    @classmethod
    def validate_environment(cls) -> bool:
        """The host executor needs no container engine."""
        return True


def _decode_client_context(client_context: str | None) -> str | None:
    """The Invoke API's ClientContext is base64 JSON; the Runtime API passes the JSON."""
    if not client_context:
        return None
    try:
        return base64.b64decode(client_context, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return client_context
