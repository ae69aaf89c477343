"""Interleaved timing: every engine on the same bytes, in turn, round after round.

Interleaving (and rotating who goes first each round) spreads slow moments of a shared machine
over all engines alike, so ratios stay meaningful even when absolute times drift.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Wall-clock milliseconds of one engine on one file, one sample per round."""

    engine: str
    file: str
    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default method), without numpy."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_interleaved(
    files: Sequence[tuple[str, bytes]],
    engines: dict[str, Callable[[bytes], bytes]],
    rounds: int,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Timing]:
    """Time each engine on each file `rounds` times, interleaved, after one warm-up call each."""
    names = list(engines)
    samples: dict[tuple[str, str], list[float]] = {(n, f): [] for n in names for f, _ in files}
    for _file_name, data in files:
        for name in names:
            engines[name](data)  # warm-up: lazy imports, first-call allocations
    for round_index in range(rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for file_name, data in files:
            for name in order:
                gc.collect()
                started = time.perf_counter()
                engines[name](data)
                samples[(name, file_name)].append((time.perf_counter() - started) * 1000)
        progress(f"timing round {round_index + 1}/{rounds} done")
    return [
        Timing(name, file_name, tuple(samples[(name, file_name)])) for file_name, _ in files for name in names
    ]
