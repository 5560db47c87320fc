"""Shared timing helper of the benchmark scripts (run them as `python bench/<name>.py`)."""
from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    """Fastest of `repeats` wall-clock timings, in seconds (the least disturbed run)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
