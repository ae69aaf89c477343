"""End to end on host-mode LocalStack: both triggers side by side, in one run.

Starts LocalStack (localstack/server.py), deploys the stack twice with the real `sls deploy`: stage
`local` (S3 notifications, `trigger=s3`) and stage `local-eventbridge` (`trigger=eventbridge`).
Then, for each trigger: the first upload (cold function), sequential uploads interleaved between
the two stacks, and two bursts (in the order s3, eventbridge, eventbridge, s3); the function's log
gives the invocations per upload (START lines). Both stacks are removed and LocalStack is stopped
afterwards, also on failure. A LocalStack that is already running is reused only when
AWS_ENDPOINT_URL or LOCALSTACK_ENDPOINT names it (then it is left running); one that someone else
started without saying so is left alone, and this part is skipped with the reason.
"""

from __future__ import annotations

import statistics
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from harness import localstack, stack
from harness.function_log import FunctionLog
from harness.thumbnails import upload_all, upload_and_wait, wait_for_thumbnails
from harness.waiting import wait_until

DEADLINE_S = 120.0
POLL_S = 0.02
BURST_POLL_S = 0.1
UPLOAD_THREADS = 8
# CloudWatch Logs (LocalStack's too) is written after the invocation: a count is final once it has
# not changed for this long.
LOG_SETTLE_S = 3.0
TRIGGERS = {"s3": ("local", {}), "eventbridge": ("local-eventbridge", {"trigger": "eventbridge"})}


@dataclass
class TriggerResult:
    """What one trigger mode measured (seconds and milliseconds as named)."""

    trigger: str
    deployed: stack.Stack | None = field(default=None, repr=False, compare=False)
    deploy_s: float = 0.0
    first_upload_ms: float = 0.0
    sequential_ms: list[float] = field(default_factory=list)
    burst_n: int = 0
    burst_s: list[float] = field(default_factory=list)  # per burst: until every thumbnail existed
    uploads: int = 0  # those whose invocations were counted: all of the above
    invocations: int = 0
    durations_ms: dict[str, list[float]] = field(default_factory=dict)  # per outcome, as logged

    def count(self, window: FunctionLog, uploads: int) -> None:
        """Add a settled log window's invocations and logged durations for `uploads` uploads."""
        self.uploads += uploads
        self.invocations += _settled_invocations(window)
        for line in window.lines:
            if "duration_ms" in line:
                self.durations_ms.setdefault(line["outcome"], []).append(line["duration_ms"])

    @property
    def burst_done_s(self) -> float:
        return statistics.mean(self.burst_s) if self.burst_s else 0.0

    @property
    def burst_per_s(self) -> float:
        return self.burst_n / self.burst_done_s if self.burst_done_s else 0.0

    @property
    def invocations_per_upload(self) -> float:
        return self.invocations / self.uploads if self.uploads else 0.0


@dataclass
class CloudResult:
    """The LocalStack part: start-up, then one TriggerResult per trigger mode."""

    sample: str
    ready_s: float
    triggers: list[TriggerResult] = field(default_factory=list)
    remove_s: float = 0.0


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
    """Deploy both trigger modes, measure them side by side, remove them; LocalStack is stopped
    afterwards if this call started it."""
    server = localstack.server()
    started = time.monotonic()
    with server.localstack_running() as endpoint, ExitStack() as removals:
        result = CloudResult(sample=sample.name, ready_s=time.monotonic() - started)
        progress(f"LocalStack ready at {endpoint} after {result.ready_s:.1f} s; deploying")
        for trigger, (stage, params) in TRIGGERS.items():
            started = time.monotonic()
            deployed = stack.deploy(endpoint, stage, params)
            removals.callback(_remove, endpoint, deployed, result)
            result.triggers.append(
                TriggerResult(trigger, deployed, time.monotonic() - started, burst_n=burst)
            )
            progress(f"{trigger}: deployed in {result.triggers[-1].deploy_s:.1f} s")
        s3 = localstack.client("s3", endpoint, max_pool_connections=2 * UPLOAD_THREADS)
        logs = localstack.client("logs", endpoint)
        data = sample.read_bytes()
        prefix = f"bench-{uuid.uuid4().hex[:10]}/"

        windows = [FunctionLog.from_now(logs, measured.deployed.log_group) for measured in result.triggers]
        for measured in result.triggers:
            measured.first_upload_ms = _upload_and_wait_ms(
                s3, measured.deployed.bucket, f"{prefix}first-{sample.name}", data
            )
        for index in range(sequential):  # interleaved: both modes see the same moments of the machine
            for measured in result.triggers:
                key = f"{prefix}seq-{index:03d}-{sample.name}"
                measured.sequential_ms.append(_upload_and_wait_ms(s3, measured.deployed.bucket, key, data))
        for measured, window in zip(result.triggers, windows, strict=True):
            measured.count(window, 1 + sequential)
            progress(f"{measured.trigger}: {measured.uploads} uploads, {measured.invocations} invocations")

        # A B B A: neither mode always bursts on a busier machine.
        for round_index, measured in enumerate([*result.triggers, *reversed(result.triggers)]):
            window = FunctionLog.from_now(logs, measured.deployed.log_group)
            folder = f"{prefix}burst-{round_index}/"
            measured.burst_s.append(_burst(s3, measured.deployed.bucket, folder, data, burst, sample.name))
            measured.count(window, burst)
            progress(
                f"{measured.trigger}: burst of {burst}: all thumbnails after {measured.burst_s[-1]:.1f} s"
            )
    return result


def _remove(endpoint: str, deployed: stack.Stack, result: CloudResult) -> None:
    started = time.monotonic()
    stack.remove(endpoint, deployed)
    result.remove_s += time.monotonic() - started


def _upload_and_wait_ms(s3, bucket: str, key: str, data: bytes) -> float:
    """Milliseconds from the start of put_object until a poll sees thumbnails/<key>."""
    return 1000 * upload_and_wait(s3, bucket, key, data, deadline_s=DEADLINE_S, poll_s=POLL_S)


def _burst(s3, bucket: str, prefix: str, data: bytes, count: int, name: str) -> float:
    """Upload `count` objects at once; seconds until every thumbnail exists."""
    bodies = {f"{prefix}{index:03d}-{name}": data for index in range(count)}
    started = time.monotonic()
    upload_all(s3, bucket, bodies, threads=UPLOAD_THREADS)
    settled = wait_for_thumbnails(s3, bucket, bodies, deadline_s=DEADLINE_S, poll_s=BURST_POLL_S)
    return max(arrival.seen_at for arrival in settled.thumbnails.values()) - started


def _settled_invocations(window: FunctionLog) -> int:
    """Invocations (START lines) in the log window, once the count has stopped changing."""
    seen = {"count": -1, "since": time.monotonic()}

    def settled() -> bool:
        count = sum(window.read().starts.values())
        if count != seen["count"]:
            seen.update(count=count, since=time.monotonic())
        return time.monotonic() - seen["since"] >= LOG_SETTLE_S

    wait_until(settled, deadline_s=DEADLINE_S, what="the function's log to settle", poll_s=0.5)
    return seen["count"]
