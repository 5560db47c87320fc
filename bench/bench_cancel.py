"""Benchmark: how soon a cancelled job ends (issue #9: "stop within a second").

    python bench/bench_cancel.py [--repeat 3]

A d = 8 run with one spectrum worker process, cancelled (a) while it trains, (b) at once,
while it builds the problem and starts its worker, and (c) a SHIFT run while it replays
Stage I (no stored Single run to read it from). Latency = wall time from cancel.set() to
log.done, min of repeats, reported as a ratio to one training epoch's wall time measured in
the same process (execute checks the cancel event once per epoch and at every stage boundary,
so (a)–(c) should all be a few epochs at most).
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from loopviz.config import RunConfig  # noqa: E402
from loopviz.runs.execute import RunLog, execute  # noqa: E402
from loopviz.toy.training import Trainer  # noqa: E402

BASE = RunConfig(d=8, epochs=400, device="cpu")


def epoch_seconds(config: RunConfig, epochs: int = 40) -> float:
    """Wall time of one epoch (step + record), the fastest mean of three passes."""
    best = float("inf")
    for _ in range(3):
        trainer = Trainer(config)
        start = time.perf_counter()
        for _ in trainer.run(until=epochs):
            pass
        best = min(best, (time.perf_counter() - start) / (epochs + 1))
    return best


def latency(config: RunConfig, ready) -> tuple[float, str]:
    """Seconds from cancel.set() to log.done once `ready(log, elapsed)` holds, and the log's message."""
    log, cancel = RunLog(config), threading.Event()
    thread = threading.Thread(target=execute, args=(config, log, cancel), kwargs={"workers": 1}, daemon=True)
    start = time.perf_counter()
    thread.start()
    while not ready(log, time.perf_counter() - start):
        time.sleep(0.001)
    tick = time.perf_counter()
    cancel.set()
    while not log.done:
        time.sleep(0.001)
    seconds = time.perf_counter() - tick
    thread.join()
    return seconds, f"{log.status}: {log.message}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    epoch = epoch_seconds(BASE)
    cases = {
        "(a) mid-training (after 30 records)": (BASE, lambda log, t: len(log.records) >= 30),
        "(b) at once (setup, worker start)": (BASE, lambda log, t: True),
        "(c) SHIFT Stage I replay (0.3 s in)": (BASE.replace(model="shift", epochs=3000, shift_epoch=2500),
                                                lambda log, t: t >= 0.3),
    }
    print(f"one epoch at d = {BASE.d}: {epoch * 1e3:.1f} ms")
    for name, (config, ready) in cases.items():
        runs = [latency(config, ready) for _ in range(args.repeat)]
        best = min(s for s, _ in runs)
        print(f"{name}: cancel → done {best * 1e3:.0f} ms = {best / epoch:.1f} epochs  [{runs[0][1]}]")


if __name__ == "__main__":
    main()
