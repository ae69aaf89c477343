"""End to end on host-mode LocalStack: upload-to-thumbnail latency and burst throughput.

Starts LocalStack (localstack/server.py), deploys the stack with the real `sls deploy --stage
local` (harness.stack), uploads, waits for `thumbnails/<key>` (harness.thumbnails), and removes
the stack and stops
LocalStack afterwards, also on failure. A LocalStack that is already running is reused only when
AWS_ENDPOINT_URL or LOCALSTACK_ENDPOINT names it (then it is left running); one that someone
else started without saying so is left alone, and this part is skipped with the reason.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness import localstack, stack
from harness.thumbnails import upload_all, upload_and_wait, wait_for_thumbnails

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
    server = localstack.server()
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
    server = localstack.server()
    started = time.monotonic()
    with server.localstack_running() as endpoint:
        ready_s = time.monotonic() - started
        progress(f"LocalStack ready at {endpoint} after {ready_s:.1f} s; deploying")
        started = time.monotonic()
        deployed = stack.deploy(endpoint)
        deploy_s = time.monotonic() - started
        progress(f"deployed in {deploy_s:.1f} s")
        try:
            s3 = localstack.client("s3", endpoint, max_pool_connections=2 * UPLOAD_THREADS)
            data = sample.read_bytes()
            prefix = f"bench-{uuid.uuid4().hex[:10]}/"
            result = CloudResult(
                sample=sample.name,
                ready_s=ready_s,
                deploy_s=deploy_s,
                first_upload_ms=_upload_and_wait_ms(
                    s3, deployed.bucket, f"{prefix}first-{sample.name}", data
                ),
            )
            for index in range(sequential):
                key = f"{prefix}seq-{index:03d}-{sample.name}"
                result.sequential_ms.append(_upload_and_wait_ms(s3, deployed.bucket, key, data))
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
            stack.remove(endpoint, deployed)
            removed_s = time.monotonic() - started
    result.remove_s = removed_s
    return result


def _upload_and_wait_ms(s3, bucket: str, key: str, data: bytes) -> float:
    """Milliseconds from the start of put_object until a poll sees thumbnails/<key>."""
    return 1000 * upload_and_wait(s3, bucket, key, data, deadline_s=DEADLINE_S, poll_s=POLL_S)


def _burst(s3, bucket: str, prefix: str, data: bytes, count: int, name: str) -> tuple[float, float]:
    """Upload `count` objects at once; seconds until all are uploaded and until all thumbnails exist."""
    bodies = {f"{prefix}{index:03d}-{name}": data for index in range(count)}
    started = time.monotonic()
    uploaded_at = upload_all(s3, bucket, bodies, threads=UPLOAD_THREADS)
    settled = wait_for_thumbnails(s3, bucket, bodies, deadline_s=DEADLINE_S, poll_s=BURST_POLL_S)
    last = max(arrival.seen_at for arrival in settled.thumbnails.values())
    return max(uploaded_at.values()) - started, last - started
