"""Benchmark: a SHIFT slider move, and the shift sweep on one worker against all cores.

    python bench/bench_shift.py

Slider move: what the SHIFT page does when the slider lands on a new epoch, training
only (Stage I reused from the bundled Single run, Stage II trained), against training
pure Looped-Attn from scratch in the same process. Sweep: `sweep-shift`'s 12 shift
epochs (one timing each) in one worker process, then in one per core.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from loopviz.config import RunConfig  # noqa: E402
from loopviz.runs.execute import execute  # noqa: E402
from loopviz.runs.format import read_run  # noqa: E402
from loopviz.sweeps import plan, run_points, shift_configs  # noqa: E402
from timing import best_of  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "default"


def main() -> None:
    torch.set_num_threads(1)
    base = RunConfig(hessian_every=0)
    single = read_run(ASSETS / "single")
    move = best_of(lambda: execute(base.replace(model="shift", shift_epoch=150), workers=0, prior=single), 3)
    looped = best_of(lambda: execute(base.replace(model="looped"), workers=0), 3)
    print(f"slider move to epoch 150 (Stage II of {base.epochs - 150} epochs, training only): {move:.2f} s; "
          f"pure Looped from scratch {looped:.2f} s; ratio {move / looped:.2f}")

    configs = shift_configs(base, list(range(0, base.epochs, 50)), repeats=1)
    walls = {}
    for workers in sorted({1, os.cpu_count() or 1}):
        start = time.perf_counter()
        rows = list(run_points(plan("shift", configs), workers))  # a LocalCluster of `workers` processes
        walls[workers] = time.perf_counter() - start
        print(f"sweep-shift, {len(rows)} runs on {workers} worker(s): {walls[workers]:.1f} s wall")
    if len(walls) == 2:
        one, many = walls[1], walls[max(walls)]
        print(f"speed-up from {max(walls)} workers: ×{one / many:.2f}")


if __name__ == "__main__":
    main()
