"""The deployed function's CloudWatch log (in LocalStack): its JSON lines and START lines."""

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.waiting import wait_until

# CloudWatch timestamps come from the function's clock: a window opened "now" starts a little earlier.
CLOCK_SLACK_MS = 2000


@dataclass
class FunctionLog:
    """The log group's events from `since_ms` on (all of them when None), as last `read()`.

    `lines` are the function's JSON lines, oldest first; `starts` counts START lines per request id
    (one per invocation, a retry included).
    """

    client: object
    group: str
    since_ms: int | None = None
    lines: list[dict] = field(default_factory=list)
    starts: Counter = field(default_factory=Counter)

    @classmethod
    def from_now(cls, client, group: str) -> "FunctionLog":
        """A window that starts now (less the clock slack)."""
        return cls(client, group, int(time.time() * 1000) - CLOCK_SLACK_MS)

    def read(self) -> "FunctionLog":
        """Read the window again, every page; empty before the function's first invocation."""
        lines, starts = [], Counter()
        window = {"startTime": self.since_ms} if self.since_ms is not None else {}
        paginator = self.client.get_paginator("filter_log_events")
        try:
            for page in paginator.paginate(logGroupName=self.group, **window):
                for event in page["events"]:
                    message = event["message"].strip()
                    if message.startswith("{"):
                        with contextlib.suppress(ValueError):
                            lines.append(json.loads(message))
                    elif message.startswith("START RequestId: "):
                        starts[message.split()[2]] += 1
        except self.client.exceptions.ResourceNotFoundException:
            pass
        self.lines, self.starts = lines, starts
        return self

    def for_keys(self, keys: Iterable[str]) -> list[dict]:
        """The JSON lines (as last read) about these object keys."""
        wanted = set(keys)
        return [line for line in self.lines if line.get("key") in wanted]

    def wait_for(
        self, predicate: Callable[[dict], bool], *, count: int = 1, deadline_s: float = 60.0
    ) -> list[dict]:
        """Read until at least `count` lines satisfy `predicate`; return the matching lines."""

        def matching() -> list[dict]:
            found = [line for line in self.read().lines if predicate(line)]
            return found if len(found) >= count else []

        return wait_until(matching, deadline_s=deadline_s, what=f"{count} matching log lines", poll_s=0.1)
