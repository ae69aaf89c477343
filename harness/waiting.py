"""The harness's one polling loop: call a predicate until it holds or a deadline passes."""

import time
from collections.abc import Callable


def wait_until[T](predicate: Callable[[], T], *, deadline_s: float, what: str, poll_s: float = 0.25) -> T:
    """Call `predicate` until it returns something truthy and return that.

    Raises TimeoutError naming `what` when `deadline_s` passes first; `poll_s` only spaces the calls.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {deadline_s:.0f} s")
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
