"""Benchmark: a SHIFT slider move, Stage II from the stored Stage I state against the replay.

    python bench/bench_shift.py [--repeat 3]

What the SHIFT page does when the slider lands on a new epoch (150): execute the
SHIFT run with the stored Single run as prior. "stored": the Single run's Adam state
(optimizer.npz) starts Stage II at once; "replay": the same run without it, Stage I
retrained first (the path before issue #12). Both training only (the curves) and with
a spectrum every epoch (inline at d = 4). Against pure Looped-Attn from scratch, in
this process, CPU time of this thread, min of repeats (the issue's goal: ≤ 1 s). Last,
the slider move with spectra as the app runs it (one spectrum worker per job: Stage II's
1350 spectra go to a worker process), wall time.
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from loopviz.config import RunConfig  # noqa: E402
from loopviz.runs.execute import execute  # noqa: E402
from loopviz.runs.format import read_run  # noqa: E402
from timing import best_cpu, load_note  # noqa: E402

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
        print(f"slider move to epoch 150, {label}, spectra inline: stored state {t_stored:.2f} s CPU (goal ≤ 1 s) | "
              f"replay {t_replay:.2f} s | pure Looped from scratch {t_looped:.2f} s | "
              f"stored/looped ×{t_stored / t_looped:.2f}; {load_note()}")
        if every:
            app_figures(shift, stored, args.repeat)


def app_figures(shift: RunConfig, stored, repeat: int) -> None:
    """The slider move with spectra as the app runs it (one spectrum worker per job: Stage II's
    spectra go to a worker process on the other core): wall time until the last spectrum is
    in, the training thread's CPU time, and the worker's CPU time (start-up included). On a
    loaded machine the wall time mostly measures the other jobs; on two idle cores it is
    about the larger of the two CPU times."""
    walls, threads, workers = [], [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start, tick = time.perf_counter(), time.thread_time()
        execute(shift, workers=1, prior=stored)
        threads.append(time.thread_time() - tick)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    print(f"slider move to epoch 150, with spectra, as the app runs it (workers=1): {min(walls):.2f} s wall "
          f"(goal ≤ 1 s; {load_note()}) | training thread "
          f"{min(threads):.2f} s CPU | spectrum worker {min(workers):.2f} s CPU")

if __name__ == "__main__":
    main()
