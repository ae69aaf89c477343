"""Replay the events that ended in the on-failure queue, then delete the ones that succeeded.

    python -m ops.redrive --queue-url URL [--function NAME] [--dry-run] [--max-messages N]

Each message in the queue is Lambda's on-failure record of an asynchronous invocation whose
retries ran out: `requestPayload` is the original S3 event, `requestContext` says which function
failed, how often it ran and why (`condition`), `responsePayload` carries the last error. The
event is invoked again, synchronously, on the function named in the record (or --function); a
message is deleted only when that invocation succeeded, so a failed replay stays in the queue
(visible again after --visibility-timeout) with nothing lost.

Replaying is idempotent: a thumbnail is a deterministic function of its source, deleting a
thumbnail that is gone succeeds, and identical events received twice in one run are invoked
once. Run it as often as needed, also while new failures arrive.

Credentials and region come from the usual AWS chain; AWS_ENDPOINT_URL (LocalStack) is honoured
by boto3 itself. Progress goes to stderr as JSON lines, the summary to stdout as one JSON object.
Exit status: 0 when every received message was replayed, 1 when some stay in the queue, 2 for
usage errors.
"""

import argparse
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ops.aws import FunctionInvoker, Invocation, clients, json_logger
from thumbnailer.logs import log

LOGGER = logging.getLogger("ops.redrive")
RECEIVE_BATCH = 10  # SQS maximum per ReceiveMessage
# Longer than the function timeout (30 s) plus client retries: a message must not reappear while
# its replay is still running.
DEFAULT_VISIBILITY_TIMEOUT_S = 300
DEFAULT_WAIT_S = 2
FAILED_SAMPLE = 20


class UnreadableMessage(ValueError):
    """A queue message that is not a Lambda on-failure record with the original event."""


@dataclass(frozen=True)
class FailureRecord:
    """What the on-failure destination wrote about one invocation that ran out of retries."""

    message_id: str
    receipt_handle: str
    event: dict
    function_arn: str | None
    request_id: str | None
    condition: str | None
    invoke_count: int | None
    error_type: str | None

    @property
    def fingerprint(self) -> str:
        """Identical events have identical fingerprints (the same S3 records, in the same order)."""
        return hashlib.sha256(json.dumps(self.event, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict:
        """The fields an operator needs to recognise the failure, for logs and --dry-run."""
        records = self.event.get("Records") if isinstance(self.event, dict) else None
        objects = [
            {
                "bucket": record.get("s3", {}).get("bucket", {}).get("name"),
                "key": record.get("s3", {}).get("object", {}).get("key"),
                "event_name": record.get("eventName"),
            }
            for record in (records or [])
            if isinstance(record, dict)
        ]
        return {
            "message_id": self.message_id,
            "request_id": self.request_id,
            "condition": self.condition,
            "invoke_count": self.invoke_count,
            "error_type": self.error_type,
            "objects": objects,
        }


def parse_message(message: dict) -> FailureRecord:
    """Read one SQS message as a Lambda on-failure record; raise UnreadableMessage otherwise."""
    try:
        body = json.loads(message["Body"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableMessage(f"message {message.get('MessageId')} is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("requestPayload"), dict):
        raise UnreadableMessage(
            f"message {message.get('MessageId')} has no requestPayload object; "
            "expected a Lambda on-failure destination record"
        )
    context = body.get("requestContext") or {}
    response = body.get("responsePayload")
    return FailureRecord(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        event=body["requestPayload"],
        function_arn=context.get("functionArn"),
        request_id=context.get("requestId"),
        condition=context.get("condition"),
        invoke_count=context.get("approximateInvokeCount"),
        error_type=response.get("errorType") if isinstance(response, dict) else None,
    )


@dataclass
class Summary:
    """Counts for the whole run; `failures` names the first failures."""

    received: int = 0
    replayed: int = 0
    duplicates_deleted: int = 0
    failed: int = 0
    unreadable: int = 0
    left_in_queue: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "received": self.received,
            "replayed": self.replayed,
            "duplicates_deleted": self.duplicates_deleted,
            "failed": self.failed,
            "unreadable": self.unreadable,
            "left_in_queue": self.left_in_queue,
            "outcomes": dict(self.outcomes),
            "failures": self.failures[:FAILED_SAMPLE],
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 2),
        }


def redrive(
    sqs,
    queue_url: str,
    invoke: Callable[[str, dict], Invocation],
    *,
    function: str | None = None,
    dry_run: bool = False,
    max_messages: int | None = None,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_S,
    wait_seconds: int = DEFAULT_WAIT_S,
    concurrency: int = 4,
) -> Summary:
    """Receive on-failure records until the queue is empty (or max_messages), replay, delete.

    A message stays invisible for `visibility_timeout` after it was received, so each one is
    handled at most once per run; failed and unreadable ones reappear afterwards. In a dry run
    nothing is invoked or deleted and every received message is made visible again at the end.
    """
    started = time.monotonic()
    summary = Summary(dry_run=dry_run)
    seen: dict[str, bool] = {}  # event fingerprint -> whether its replay succeeded
    held: list[str] = []  # receipt handles to release at the end of a dry run
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while max_messages is None or summary.received < max_messages:
            wanted = RECEIVE_BATCH if max_messages is None else max_messages - summary.received
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(RECEIVE_BATCH, wanted),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_timeout,
            ).get("Messages", [])
            if not messages:
                break
            summary.received += len(messages)
            records = []
            for message in messages:
                try:
                    records.append(parse_message(message))
                except UnreadableMessage as exc:
                    summary.unreadable += 1
                    summary.left_in_queue += 1
                    summary.failures.append({"message_id": message.get("MessageId"), "error": str(exc)})
                    log(LOGGER, logging.ERROR, "unreadable message left in the queue", error=str(exc))
            if dry_run:
                for record in records:
                    log(LOGGER, logging.INFO, "would replay", **record.describe())
                held += [record.receipt_handle for record in records]
                summary.left_in_queue += len(records)
                continue
            _replay_batch(sqs, queue_url, records, invoke, function, pool, seen, summary)
    for receipt_handle in held:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)
    summary.seconds = time.monotonic() - started
    return summary


def _replay_batch(sqs, queue_url, records, invoke, function, pool, seen, summary) -> None:
    """Replay the batch's new distinct events in parallel, then delete what succeeded.

    A copy of an event already replayed in this run (SQS delivers at least once, and Lambda
    may record one event twice) shares the first copy's fate instead of running again.
    """
    first: dict[str, FailureRecord] = {}
    for record in records:
        if record.fingerprint not in seen:
            first.setdefault(record.fingerprint, record)
    futures = {
        fingerprint: pool.submit(_invoke_safely, invoke, function or record.function_arn, record.event)
        for fingerprint, record in first.items()
    }
    for fingerprint, record in first.items():
        replay = futures[fingerprint].result()
        seen[fingerprint] = replay.ok
        if replay.ok:
            summary.replayed += 1
            summary.outcomes.update(replay.outcomes)
            log(LOGGER, logging.INFO, "replayed", outcomes=replay.outcomes, **record.describe())
        else:
            summary.failed += 1
            summary.failures.append({**record.describe(), "replay_error": replay.error})
            log(
                LOGGER,
                logging.ERROR,
                "replay failed, left in the queue",
                replay_error=replay.error,
                **record.describe(),
            )
    for record in records:
        if not seen[record.fingerprint]:
            summary.left_in_queue += 1
            continue
        if first.get(record.fingerprint) is not record:
            summary.duplicates_deleted += 1
            log(LOGGER, logging.INFO, "duplicate of a replayed event, deleted", **record.describe())
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record.receipt_handle)


def _invoke_safely(invoke, function: str | None, event: dict) -> Invocation:
    """Turn an exception of the invoke call itself (throttled, network) into a failed replay."""
    if not function:
        return Invocation(False, error="the record names no function; pass --function")
    try:
        return invoke(function, event)
    except Exception as exc:  # any failure leaves the message in the queue; the run goes on
        return Invocation(False, error=f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-url", required=True, help="URL of the on-failure queue (stack output)")
    parser.add_argument("--function", help="function to invoke (default: the one named in each record)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    parser.add_argument("--max-messages", type=int, default=None, help="stop after this many messages")
    parser.add_argument("--concurrency", type=int, default=4, help="replays running at once (default 4)")
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=DEFAULT_VISIBILITY_TIMEOUT_S,
        help=f"seconds a received message stays hidden (default {DEFAULT_VISIBILITY_TIMEOUT_S})",
    )
    parser.add_argument("--wait-seconds", type=int, default=DEFAULT_WAIT_S, help="SQS long-poll wait")
    args = parser.parse_args(argv)
    json_logger(LOGGER.name)

    sqs, lambda_client = clients("sqs", "lambda", concurrency=args.concurrency)
    summary = redrive(
        sqs,
        args.queue_url,
        FunctionInvoker(lambda_client),
        function=args.function,
        dry_run=args.dry_run,
        max_messages=args.max_messages,
        visibility_timeout=args.visibility_timeout,
        wait_seconds=args.wait_seconds,
        concurrency=args.concurrency,
    )
    print(json.dumps(summary.as_dict(), ensure_ascii=False))
    return 1 if summary.failed or summary.unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
