"""End to end on host-mode LocalStack: upload-to-thumbnail latency and burst throughput.

Starts LocalStack (localstack/server.py), deploys the stack with the real `sls deploy --stage
local` (tools/stack.py), uploads, waits for `thumbnails/<key>`, and removes the stack and stops
LocalStack afterwards, also on failure. A LocalStack that is already running is reused only when
AWS_ENDPOINT_URL or LOCALSTACK_ENDPOINT names it (then it is left running); one that someone
else started without saying so is left alone, and this part is skipped with the reason.
"""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tools import stack as stack_tools

DEADLINE_S = 120.0
POLL_S = 0.02
BURST_POLL_S = 0.1
UPLOAD_THREADS = 8


@dataclass
class CloudResult:
    """What the LocalStack part measured (seconds and milliseconds as named)."""

    sample: str
    ready_s: float
    deploy_s: float
    first_upload_ms: float
    sequential_ms: list[float] = field(default_factory=list)
    burst_n: int = 0
    burst_uploaded_s: float = 0.0
    burst_done_s: float = 0.0
    remove_s: float = 0.0

    @property
    def burst_per_s(self) -> float:
        return self.burst_n / self.burst_done_s if self.burst_done_s else 0.0


def unavailable() -> str | None:
    """Why the LocalStack part cannot run now, or None."""
    server = stack_tools.localstack_server()
    if server.configured_endpoint():
        endpoint = server.configured_endpoint()
        return (
            None
            if server.is_healthy(endpoint)
            else f"{endpoint} (AWS_ENDPOINT_URL) is not a healthy LocalStack"
        )
    if server.status()["pid"] is not None or server.port_in_use(server.gateway_listen()):
        return (
            f"{server.gateway_listen()} is taken by a LocalStack this run did not start (another test "
            "run?); deploying next to it would clash with its stack: rerun when it is free, or export "
            "AWS_ENDPOINT_URL to use it on purpose"
        )
    return None


def measure(sample: Path, sequential: int, burst: int, progress=lambda _: None) -> CloudResult:
    """Deploy, measure, remove; LocalStack is stopped afterwards if this call started it."""
    server = stack_tools.localstack_server()
    started = time.monotonic()
    with server.localstack_running() as endpoint:
        ready_s = time.monotonic() - started
        progress(f"LocalStack ready at {endpoint} after {ready_s:.1f} s; deploying")
        started = time.monotonic()
        deployed = stack_tools.deploy(endpoint)
        deploy_s = time.monotonic() - started
        progress(f"deployed in {deploy_s:.1f} s")
        try:
            s3 = stack_tools.client("s3", endpoint)
            data = sample.read_bytes()
            prefix = f"bench-{uuid.uuid4().hex[:10]}/"
            result = CloudResult(
                sample=sample.name,
                ready_s=ready_s,
                deploy_s=deploy_s,
                first_upload_ms=_upload_and_wait(s3, deployed.bucket, f"{prefix}first-{sample.name}", data),
            )
            for index in range(sequential):
                key = f"{prefix}seq-{index:03d}-{sample.name}"
                result.sequential_ms.append(_upload_and_wait(s3, deployed.bucket, key, data))
            progress(
                f"{sequential} sequential uploads: median {statistics.median(result.sequential_ms):.0f} ms"
            )
            result.burst_n = burst
            result.burst_uploaded_s, result.burst_done_s = _burst(
                s3, deployed.bucket, f"{prefix}burst/", data, burst, sample.name
            )
            progress(f"burst of {burst}: all thumbnails after {result.burst_done_s:.1f} s")
        finally:
            started = time.monotonic()
            stack_tools.remove(endpoint, deployed)
            removed_s = time.monotonic() - started
    result.remove_s = removed_s
    return result


def _upload_and_wait(s3, bucket: str, key: str, data: bytes) -> float:
    """Milliseconds from the start of put_object until thumbnails/<key> exists."""
    started = time.perf_counter()
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            s3.head_object(Bucket=bucket, Key=f"thumbnails/{key}")
            return (time.perf_counter() - started) * 1000
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"no thumbnails/{key} within {DEADLINE_S:.0f} s")
        time.sleep(POLL_S)


def _burst(s3, bucket: str, prefix: str, data: bytes, count: int, name: str) -> tuple[float, float]:
    """Upload `count` objects at once; seconds until all are uploaded and until all thumbnails exist."""
    keys = [f"{prefix}{index:03d}-{name}" for index in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=data), keys))
    uploaded_s = time.perf_counter() - started
    deadline = time.monotonic() + DEADLINE_S
    while True:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"thumbnails/{prefix}", MaxKeys=1000)
        if listed.get("KeyCount", 0) >= count:
            return uploaded_s, time.perf_counter() - started
        if time.monotonic() > deadline:
            raise TimeoutError(f"{listed.get('KeyCount', 0)} of {count} thumbnails within {DEADLINE_S:.0f} s")
        time.sleep(BURST_POLL_S)
