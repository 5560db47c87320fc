"""Benchmark: a SHIFT slider move, Stage II from the stored Stage I state against the replay.

    python bench/bench_shift.py [--repeat 3]

What the SHIFT page does when the slider lands on a new epoch (150): execute the
SHIFT run with the stored Single run as prior. "stored": the Single run's Adam state
(optimizer.npz) starts Stage II at once; "replay": the same run without it, Stage I
retrained first (the path before issue #12). Both training only (the curves) and with
a spectrum every epoch (inline at d = 4). Against pure Looped-Attn from scratch, in
this process, CPU time of this thread, min of repeats (the issue's goal: ≤ 1 s).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from loopviz.config import RunConfig  # noqa: E402
from loopviz.runs.execute import execute  # noqa: E402
from loopviz.runs.format import read_run  # noqa: E402
from timing import best_cpu  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "default"



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    stored = read_run(ASSETS / "single")
    assert stored.optimizer is not None, "the bundled Single run lacks optimizer.npz"
    replay = dataclasses.replace(stored, optimizer=None)
    for every, label in ((0, "training only"), (1, "with spectra")):
        base = RunConfig(hessian_every=every)
        shift = base.replace(model="shift", shift_epoch=150)
        t_stored = best_cpu(lambda: execute(shift, workers=0, prior=stored), args.repeat)
        t_replay = best_cpu(lambda: execute(shift, workers=0, prior=replay), args.repeat)
        t_looped = best_cpu(lambda: execute(base.replace(model="looped"), workers=0), args.repeat)
        print(f"slider move to epoch 150, {label}: stored state {t_stored:.2f} s (goal ≤ 1 s) | replay "
              f"{t_replay:.2f} s | pure Looped from scratch {t_looped:.2f} s | "
              f"stored/looped ×{t_stored / t_looped:.2f}")


if __name__ == "__main__":
    main()
