"""Lambda's limits, as the host executor enforces them: each test states AWS's behaviour.

Memory size, read-only code and layers, one merged ``/opt``, a private sized ``/tmp``, a frozen
environment between invocations, the 10 s init limit, and AWS's own runtime interface client.
"""

import base64
import io
import json
import os
import time
import uuid
import zipfile

import pytest

from harness.localstack import FAST_WAITER

pytestmark = pytest.mark.localstack

ROLE_ARN = "arn:aws:iam::000000000000:role/lambda-test-role"
INIT_LIMIT_S = float(os.environ.get("LAMBDA_HOST_INIT_TIMEOUT_S") or 10)


def zip_files(files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    """A zip archive of ``files``; names in ``executable`` get mode 755."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


@pytest.fixture
def functions(lambda_factory):
    """``functions(files, **config)``: a function from several files, deleted afterwards."""
    client = lambda_factory.client
    names: list[str] = []

    def create(files: dict[str, str], **config) -> str:
        name = f"fn-{uuid.uuid4().hex[:10]}"
        client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=ROLE_ARN,
            Handler="handler.lambda_handler",
            Code={"ZipFile": zip_files(files)},
            **config,
        )
        names.append(name)
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST_WAITER)
        return name

    yield create
    for name in names:
        client.delete_function(FunctionName=name)


def invoke(lambda_client, name: str, event: dict | None = None, **kwargs) -> tuple[object, dict, str]:
    """Invoke synchronously: (decoded payload, raw response, decoded log tail)."""
    response = lambda_client.invoke(
        FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail", **kwargs
    )
    payload = json.loads(response["Payload"].read() or b"null")
    return payload, response, base64.b64decode(response.get("LogResult") or b"").decode()


def test_memory_over_the_function_size_kills_the_runtime_like_aws(lambda_factory):
    """AWS: the sandbox is killed at its memory size; the invocation fails with
    ``Runtime.OutOfMemory`` / "Runtime exited with error: signal: killed", REPORT says so, and the
    next invocation gets a fresh runtime."""
    code = """
def lambda_handler(event, context):
    blocks = [b"x" * (1024 * 1024) for _ in range(event["mb"])]  # touched pages, not just reserved
    return len(blocks)
"""
    name = lambda_factory(code, MemorySize=128, Timeout=20)
    payload, response, tail = invoke(lambda_factory.client, name, {"mb": 40})
    assert "FunctionError" not in response, payload
    assert payload == 40

    payload, response, tail = invoke(lambda_factory.client, name, {"mb": 300})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert "Status: error\tError Type: Runtime.OutOfMemory" in tail
    assert "Memory Size: 128 MB" in tail

    payload, response, _ = invoke(lambda_factory.client, name, {"mb": 10})
    assert "FunctionError" not in response, payload
    assert payload == 10


def test_code_runtime_and_layers_are_read_only_and_get_no_bytecode(lambda_factory, functions):
    """AWS: /var/task, /opt and /var/runtime are read-only (EROFS), so Python writes no
    ``__pycache__`` there; only /tmp is writable."""
    layer = lambda_factory.publish_layer(zip_files({"python/from_layer.py": "VALUE = 1\n"}))
    code = """
import errno, os, sys
import helper, from_layer  # noqa

def lambda_handler(event, context):
    if os.environ["LAMBDA_TASK_ROOT"] != "/var/task":
        return {"task_root": os.environ["LAMBDA_TASK_ROOT"]}  # no sandbox: do not write to the host
    results = {}
    for folder in (os.environ["LAMBDA_TASK_ROOT"], "/opt", os.environ["LAMBDA_RUNTIME_DIR"], "/etc"):
        try:
            with open(os.path.join(folder, "written-by-function"), "w") as f:
                f.write("x")
            results[folder] = "written"
        except OSError as e:
            results[folder] = errno.errorcode[e.errno]
    with open("/tmp/scratch", "w") as f:
        f.write("x")
    return {
        "writes": results,
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "task_files": sorted(os.listdir(os.environ["LAMBDA_TASK_ROOT"])),
        "opt_python_files": sorted(os.listdir("/opt/python")),
        "dont_write_bytecode": sys.dont_write_bytecode,
    }
"""
    name = functions({"handler.py": code, "helper.py": "HELP = True\n"}, Layers=[layer], MemorySize=256)
    payload, response, _ = invoke(lambda_factory.client, name)
    assert "FunctionError" not in response, payload
    if payload["task_root"] != "/var/task":
        pytest.skip("no mount namespace on this host: code stays writable (LocalStack log: sandbox)")
    assert payload["writes"] == {
        "/var/task": "EROFS",
        "/opt": "EROFS",
        "/var/runtime": "EROFS",
        "/etc": "EROFS",
    }
    # Python tried (bytecode writing is on, as on AWS) and failed silently: no __pycache__ anywhere.
    assert payload["dont_write_bytecode"] is False
    assert payload["task_files"] == ["handler.py", "helper.py"]
    assert payload["opt_python_files"] == ["from_layer.py"]


def test_layers_are_merged_into_one_opt_in_order(lambda_factory):
    """AWS: layers are extracted into /opt in the function's order (later files replace earlier
    ones); /opt/python and /opt/python/lib/python3.13/site-packages are on sys.path, /opt/bin on
    PATH, /opt/lib on LD_LIBRARY_PATH."""
    first = lambda_factory.publish_layer(
        zip_files(
            {
                "python/shared.py": "WHO = 'first'\n",
                "python/only_first.py": "HERE = True\n",
                "bin/layer-tool": "#!/bin/sh\necho tool from the first layer\n",
                "lib/libexample.txt": "not really a library\n",
            },
            executable=("bin/layer-tool",),
        )
    )
    second = lambda_factory.publish_layer(
        zip_files(
            {
                "python/shared.py": "WHO = 'second'\n",
                "python/lib/python3.13/site-packages/from_site_packages.py": "HERE = True\n",
            }
        )
    )
    code = """
import os, subprocess, sys
import from_site_packages, only_first, shared

def lambda_handler(event, context):
    return {
        "opt": os.path.dirname(os.path.dirname(shared.__file__)),
        "shared": shared.WHO,
        "path": sys.path,
        "tool": subprocess.run(["layer-tool"], capture_output=True, text=True).stdout.strip(),
        "opt_files": sorted(os.listdir(os.path.dirname(os.path.dirname(shared.__file__)))),
        "ld_library_path": os.environ["LD_LIBRARY_PATH"].split(":"),
        "env": {name: os.environ.get(name) for name in
                ("LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API")},
    }
"""
    name = lambda_factory(code, Layers=[first, second])
    payload, response, _ = invoke(lambda_factory.client, name)
    assert "FunctionError" not in response, payload
    assert payload["shared"] == "second"
    opt, task_root = payload["opt"], payload["env"]["LAMBDA_TASK_ROOT"]
    assert payload["path"][:3] == [task_root, f"{opt}/python/lib/python3.13/site-packages", f"{opt}/python"]
    assert payload["path"][-1] == payload["env"]["LAMBDA_RUNTIME_DIR"]
    assert not any("localstack" in entry or "site-packages" in entry for entry in payload["path"][3:-1])
    assert payload["tool"] == "tool from the first layer"
    assert payload["opt_files"] == ["bin", "lib", "python"]
    assert f"{opt}/lib" in payload["ld_library_path"]
    assert payload["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert payload["env"]["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    if task_root == "/var/task":  # with a mount namespace, the paths are AWS's
        assert opt == "/opt"
        assert payload["env"]["LAMBDA_RUNTIME_DIR"] == "/var/runtime"


def test_tmp_is_private_to_the_environment_and_sized_like_ephemeral_storage(lambda_factory):
    """AWS: each execution environment has its own /tmp of the function's ephemeral-storage size
    (512 MB by default): other environments' and the host's files are not there, and it fills up."""
    host_marker = f"/tmp/host-marker-{uuid.uuid4().hex}"
    code = """
import errno, os, tempfile, uuid

TMP = tempfile.gettempdir()  # /tmp, unless the host executor could not give a private one
MARKER = f"{TMP}/{uuid.uuid4().hex}"
open(MARKER, "w").close()

def lambda_handler(event, context):
    stats = os.statvfs(TMP)
    fd = os.open(f"{TMP}/big", os.O_CREAT | os.O_WRONLY)
    try:
        os.posix_fallocate(fd, 0, event["fill_mb"] * 1024 * 1024)
        filled = "ok"
    except OSError as e:
        filled = errno.errorcode[e.errno]
    finally:
        os.close(fd)
        os.unlink(f"{TMP}/big")
    return {
        "tmp": TMP,
        "marker": MARKER,
        "files": sorted(os.listdir(TMP)),
        "host_marker_seen": os.path.exists(event["host_marker"]),
        "size_mb": stats.f_blocks * stats.f_frsize / 2**20,
        "filled": filled,
    }
"""
    with open(host_marker, "w") as f:
        f.write("on the host")
    try:
        small = lambda_factory(code)
        large = lambda_factory(code, EphemeralStorage={"Size": 1024})
        event = {"host_marker": host_marker, "fill_mb": 600}
        first, response, _ = invoke(lambda_factory.client, small, event)
        assert "FunctionError" not in response, first
        second, response, _ = invoke(lambda_factory.client, large, event)
        assert "FunctionError" not in response, second
    finally:
        os.unlink(host_marker)
    assert first["files"] == [os.path.basename(first["marker"])]
    assert second["files"] == [os.path.basename(second["marker"])]
    if first["tmp"] != "/tmp":
        pytest.skip("no mount namespace on this host: /tmp is a private TMPDIR without a size limit")
    assert first["host_marker_seen"] is False
    assert 500 <= first["size_mb"] <= 525
    assert first["filled"] == "ENOSPC"
    assert 1000 <= second["size_mb"] <= 1050
    assert second["filled"] == "ok"


def test_environment_is_frozen_between_invocations(lambda_factory):
    """AWS: after the response the execution environment is frozen until the next invocation, so
    a background thread does not run in between."""
    code = """
import threading, time

TICKS = 0

def tick():
    global TICKS
    while True:
        time.sleep(0.01)
        TICKS += 1

threading.Thread(target=tick, daemon=True).start()

def lambda_handler(event, context):
    before = TICKS
    time.sleep(0.3)
    return {"at_start": before, "at_end": TICKS}
"""
    name = lambda_factory(code)
    first, response, _ = invoke(lambda_factory.client, name)
    assert "FunctionError" not in response, first
    time.sleep(2.0)
    second, response, _ = invoke(lambda_factory.client, name)
    assert "FunctionError" not in response, second
    assert first["at_end"] - first["at_start"] >= 10  # the thread runs during an invocation
    # Unfrozen, 2 s would add ~200 ticks; frozen, only the few ms around the response count.
    assert second["at_start"] - first["at_end"] < 40, (first, second)


def test_init_longer_than_the_limit_is_cut_and_retried_within_the_invocation(lambda_factory):
    """AWS: init may take 10 s; past that Lambda logs ``INIT_REPORT ... Phase: init Status: timeout``
    and retries init inside the first invocation, bounded by the function's timeout."""
    code = f"""
import time
time.sleep({INIT_LIMIT_S + 1})

def lambda_handler(event, context):
    return "never reached"
"""
    name = lambda_factory(code, Timeout=3)
    started = time.monotonic()
    payload, response, tail = invoke(lambda_factory.client, name)
    elapsed = time.monotonic() - started
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Error: Task timed out after 3.00 seconds")
    assert "Phase: init\tStatus: timeout" in tail
    assert "Phase: invoke\tStatus: timeout" in tail
    assert INIT_LIMIT_S + 3 <= elapsed < INIT_LIMIT_S + 12


def test_runtime_is_awslambdaric_with_aws_context(lambda_factory):
    """AWS's Python runtimes run the handler under their runtime interface client: its context
    object (no extra attributes), the invoke's ClientContext, its log format."""
    code = """
import logging, sys

def lambda_handler(event, context):
    logging.getLogger().warning("warned")
    return {
        "context_class": f"{type(context).__module__}.{type(context).__name__}",
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "custom": context.client_context.custom if context.client_context else None,
        "cognito_identity_id": context.identity.cognito_identity_id,
        "has_memory_limit_in_bytes": hasattr(context, "memory_limit_in_bytes"),
        "ric": "awslambdaric" in sys.modules,
    }
"""
    name = lambda_factory(code, Timeout=6)
    client_context = base64.b64encode(json.dumps({"custom": {"tenant": "t-1"}}).encode()).decode()
    payload, response, tail = invoke(lambda_factory.client, name, ClientContext=client_context)
    assert "FunctionError" not in response, payload
    assert payload["context_class"] == "awslambdaric.lambda_context.LambdaContext"
    assert payload["arn"].endswith(f":function:{name}")
    assert 0 < payload["remaining"] <= 6000
    assert payload["custom"] == {"tenant": "t-1"}
    assert payload["cognito_identity_id"] is None
    assert payload["has_memory_limit_in_bytes"] is False
    assert payload["ric"] is True
    assert "[WARNING]\t" in tail
    assert f"\t{payload['request_id']}\twarned" in tail


def test_missing_handler_function_fails_the_invocation(lambda_factory):
    """AWS (awslambdaric >= 3): a missing handler function is an init error,
    ``Runtime.HandlerNotFound``, that the invocation returns; the function itself stays Active."""
    name = lambda_factory("def other_name(event, context):\n    return 1\n")
    payload, response, tail = invoke(lambda_factory.client, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert payload["errorMessage"] == "Handler 'lambda_handler' missing on module 'handler'"
    assert "Phase: invoke\tStatus: error\tError Type: Runtime.HandlerNotFound" in tail
    state = lambda_factory.client.get_function_configuration(FunctionName=name)["State"]
    assert state == "Active"


def test_traceback_is_one_log_event(lambda_factory, aws_client):
    """AWS: the runtime reports an unhandled exception, traceback included, as one log event (and
    so is a ``logger.exception`` record), not one event per line."""
    marker = uuid.uuid4().hex
    code = f"""
import logging

def lambda_handler(event, context):
    try:
        {{}}["missing"]
    except KeyError:
        logging.getLogger().exception("logged {marker}")
    raise ValueError("raised {marker}")
"""
    name = lambda_factory(code)
    payload, _, _ = invoke(lambda_factory.client, name)
    assert payload["errorType"] == "ValueError"
    logs = aws_client("logs")
    deadline = time.monotonic() + 20
    raised = logged = None
    while time.monotonic() < deadline and not (raised and logged):
        time.sleep(0.2)
        try:  # LocalStack forwards the logs asynchronously; the group may not exist yet
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            continue
        raised = next((e["message"] for e in events if f"raised {marker}" in e["message"]), None)
        logged = next((e["message"] for e in events if f"logged {marker}" in e["message"]), None)
    logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")
    assert raised is not None
    assert logged is not None
    assert raised.startswith(f"[ERROR] ValueError: raised {marker}")
    assert "Traceback (most recent call last):" in raised
    assert 'handler.py", line 9, in lambda_handler' in raised
    assert "Traceback (most recent call last):" in logged
    assert "KeyError: 'missing'" in logged
