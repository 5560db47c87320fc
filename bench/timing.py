"""Shared timing helper of the benchmark scripts (run them as `python bench/<name>.py`)."""
from __future__ import annotations

import os
import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int = 5, clock: Callable[[], float] = time.perf_counter) -> float:
    """Fastest of `repeats` timings, in seconds (the least disturbed run); wall-clock by default."""
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def best_cpu(fn: Callable[[], object], repeats: int) -> float:
    """Least CPU time of this thread over `repeats` calls: on a shared machine, wall time
    also counts other people's work, CPU time (nearly) only ours."""
    return best_of(fn, repeats, clock=time.thread_time)


def load_note() -> str:
    """The 1-minute load average against the core count, to print beside every figure: on a
    shared machine it says how far the wall times are from an idle machine's."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
