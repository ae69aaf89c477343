"""Run concurrent actors one step at a time, in every order their steps can interleave.

Each actor is a callable run in a thread of its own; it calls `step()` before every operation
that another actor could observe (an S3 call). Only one actor runs between two steps, and which
one is decided by a schedule, so a run is deterministic and repeatable. `every_schedule` explores
all schedules depth first: each run records, at every point where more than one actor could go
on, which ones could, and the runs that took another branch are queued. This is systematic
concurrency testing in its plainest form (as in CHESS or Loom, without their reductions).
"""

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Actor = Callable[[Callable[[], None]], None]


@dataclass
class Run:
    """One interleaving: the actor chosen at each step, and what each actor raised (if anything)."""

    schedule: list[str]
    errors: dict[str, BaseException] = field(default_factory=dict)
    # At each step taken, the actors that could have gone instead (for the exploration).
    choices: list[list[str]] = field(default_factory=list)


class _Actor:
    def __init__(self, name: str, body: Actor, after: str | None):
        self.name, self.after = name, after
        self.go = threading.Semaphore(0)
        self.done = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(body,), daemon=True, name=f"actor-{name}")

    def _main(self, body: Actor) -> None:
        self.go.acquire()
        try:
            body(self.step)
        except BaseException as exc:  # reported in Run.errors, never lost in the thread
            self.error = exc
        finally:
            self.done = True
            self.yielded.release()

    def step(self) -> None:
        self.yielded.release()
        self.go.acquire()


def run_schedule(actors: dict[str, tuple[Actor, str | None]], prefix: list[str], timeout: float = 30) -> Run:
    """Run the actors, following `prefix` and then, at each step, the first actor able to go.

    `actors` maps a name to (body, after): the actor starts only once the actor `after` is done
    (an invocation only after the upload that triggers it), or at once if `after` is None.
    """
    yielded = threading.Semaphore(0)
    states = {name: _Actor(name, body, after) for name, (body, after) in actors.items()}
    for state in states.values():
        state.yielded = yielded
        state.thread.start()
    run = Run(schedule=[])
    while not all(state.done for state in states.values()):
        ready = [
            name
            for name, state in states.items()
            if not state.done and (state.after is None or states[state.after].done)
        ]
        position = len(run.schedule)
        chosen = prefix[position] if position < len(prefix) else ready[0]
        if chosen not in ready:
            raise AssertionError(f"schedule {prefix} asks for {chosen!r} at step {position}; ready: {ready}")
        run.schedule.append(chosen)
        run.choices.append(ready)
        states[chosen].go.release()
        if not yielded.acquire(timeout=timeout):
            raise AssertionError(f"actor {chosen!r} did not reach its next step within {timeout} s")
    run.errors = {name: state.error for name, state in states.items() if state.error is not None}
    return run


def every_schedule(
    actors: Callable[[], dict[str, tuple[Actor, str | None]]], limit: int = 20_000
) -> Iterator[Run]:
    """Every interleaving of fresh `actors()` (a factory: each run needs its own world)."""
    pending = [[]]
    explored = 0
    while pending:
        prefix = pending.pop()
        run = run_schedule(actors(), prefix)
        explored += 1
        if explored > limit:
            raise AssertionError(f"more than {limit} interleavings: the scenario is too big to explore")
        for position in range(len(prefix), len(run.schedule)):
            for alternative in run.choices[position]:
                if alternative != run.schedule[position]:
                    pending.append([*run.schedule[:position], alternative])
        yield run
