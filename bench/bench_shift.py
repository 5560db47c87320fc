"""Benchmark: a SHIFT slider move, Stage II from the stored Stage I state against the replay.

    python bench/bench_shift.py [--repeat 3]

What the SHIFT page does when the slider lands on a new epoch (150): execute the
SHIFT run with the stored Single run as prior. "stored": the Single run's Adam state
(optimizer.npz) starts Stage II at once; "replay": the same run without it, Stage I
retrained first (the path before issue #12). Both training only (the curves) and with
a spectrum every epoch (inline at d = 4). Against pure Looped-Attn from scratch, in
this process, CPU time of this thread, min of repeats (the issue's goal: ≤ 1 s). For
"training only" the prior is the stored run with its spectrum cadence set to 0 (a run's
identity includes hessian_every; training does not depend on it), so Stage II starts from
the stored state there too. Then the slider move with spectra as the app runs it (one
spectrum worker per job: Stage II's 1350 spectra go to a worker process), wall time. Last,
the first move in a fresh interpreter (imports included: what an app server's first SHIFT
job pays), CPU time of the process, against `python -c "import torch"`.
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
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
    for every, label in ((0, "training only"), (1, "with spectra")):
        base = RunConfig(hessian_every=every)
        shift = base.replace(model="shift", shift_epoch=150)
        prior = dataclasses.replace(stored, config=stored.config.replace(hessian_every=every))
        replay = dataclasses.replace(prior, optimizer=None)
        t_stored = best_cpu(lambda: execute(shift, workers=0, prior=prior), args.repeat)
        t_replay = best_cpu(lambda: execute(shift, workers=0, prior=replay), args.repeat)
        t_looped = best_cpu(lambda: execute(base.replace(model="looped"), workers=0), args.repeat)
        print(f"slider move to epoch 150, {label}, spectra inline: stored state {t_stored:.2f} s CPU (goal ≤ 1 s) | "
              f"replay {t_replay:.2f} s | pure Looped from scratch {t_looped:.2f} s | "
              f"stored/looped ×{t_stored / t_looped:.2f}; {load_note()}")
        if every:
            app_figures(shift, stored, args.repeat)
    cold_figure(args.repeat)


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

def cold_figure(repeat: int) -> None:
    """The training-only slider move in a fresh interpreter (imports, reading the stored run,
    Stage II), against `python -c "import torch"`: CPU time (user + system) of each process,
    interleaved, min of repeats. torch.optim would add torch._dynamo here (~1 s)."""
    move = ("import dataclasses, sys\n"
            f"sys.path.insert(0, {str(ASSETS.parent.parent)!r})\n"
            "from loopviz.config import RunConfig\n"
            "from loopviz.runs.execute import execute\n"
            "from loopviz.runs.format import read_run\n"
            f"stored = read_run({str(ASSETS / 'single')!r})\n"
            "prior = dataclasses.replace(stored, config=stored.config.replace(hessian_every=0))\n"
            "execute(RunConfig(hessian_every=0, model='shift', shift_epoch=150), workers=0, prior=prior)\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n")
    imports, moves = [], []
    for _ in range(repeat):
        imports.append(child_cpu([sys.executable, "-c", "import torch"]))
        moves.append(child_cpu([sys.executable, "-c", move]))
    print(f"slider move to epoch 150, training only, in a fresh interpreter: {min(moves):.2f} s CPU = "
          f"×{min(moves) / min(imports):.2f} import torch ({min(imports):.2f} s); {load_note()}")


def child_cpu(command: list[str]) -> float:
    """CPU time (user + system) of a command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


if __name__ == "__main__":
    main()
