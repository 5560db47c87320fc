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
the stored state there too. Then the slider move with spectra as the app runs it (the
server's warm WorkerPool: Stage II's 1350 spectra go to a worker while training runs, and to
both once it ends), wall time to the last spectrum, against a cold worker of the job's own
(the CLI's way, and the app's before the warm pool) and against the eigenvalue floor (LAPACK
dsyevr of 1350 Hessians, this process); a job's wait for its first spectrum, cold worker
against warm; the spectra alone, as if training took no time;
then the default CLI run's spectra (Looped, 1501 spectra). Last, the
first move in a fresh interpreter (imports included: what an app server's first SHIFT job
pays), CPU time of the process, against `python -c "import torch"`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from loopviz.config import RunConfig  # noqa: E402
from loopviz.curvature import symmetric_eigenvalues  # noqa: E402
from loopviz.runs import execute as execute_mod  # noqa: E402
from loopviz.runs.execute import execute  # noqa: E402
from loopviz.runs.format import read_run  # noqa: E402
from loopviz.runs.spectrum_worker import SpectrumWorker, WorkerPool  # noqa: E402
from loopviz.toy import hessian  # noqa: E402
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
    startup_figure(args.repeat)
    spectra_figure(args.repeat)
    cli_figure(args.repeat)
    cold_figure(args.repeat)


class Timed(execute_mod.SpectrumPool):
    """A SpectrumPool that notes when training ended (execute calls training_ended then)."""

    ended = 0.0

    def training_ended(self) -> None:
        Timed.ended = time.perf_counter()
        super().training_ended()


def eigenvalue_floor(stored, count: int, repeat: int) -> float:
    """dsyevr of `count` Looped Hessians at d = 4 (the part no exact method skips), this
    process, one BLAS thread (as in a worker), min of repeats: seconds."""
    E0, counts = hessian.training_arrays(stored.config)
    H = hessian.loss_hessians(stored.thetas[:50], E0, counts, 3)
    once = best_cpu(lambda: [symmetric_eigenvalues(h.copy()) for h in H], repeat * 4) / len(H)
    return once * count


def app_figures(shift: RunConfig, stored, repeat: int) -> None:
    """The slider move with spectra as the app runs it: the registry's WorkerPool (one worker
    per job, two kept warm), against a cold worker of the job's own (the CLI's way; the app's
    before the warm pool, less the training thread's help at the end). Wall time until the
    last spectrum is in, the training thread's CPU time, the tail from the end of training
    to the last spectrum, and the workers' CPU time."""
    execute_mod.SpectrumPool = Timed
    pool = WorkerPool(per_job=1, capacity=2)
    try:
        pool.give_back(pool.lease(2))   # started once per server, before the slider moves
        rows = {"warm pool (the app)": pool, "a cold worker of its own (the CLI)": 1}
        figures = {label: move_figures(shift, stored, workers, repeat) for label, workers in rows.items()}
    finally:
        pool.close()
        execute_mod.SpectrumPool = Timed.__mro__[1]
    floor = eigenvalue_floor(stored, 1350, repeat)
    for label, (wall, thread, tail, workers, spectra) in figures.items():
        print(f"slider move to epoch 150 with spectra, {label}: {wall:.2f} s wall to the last of {spectra} spectra "
              f"(goal ≤ 1 s; ×{wall / floor:.1f} the eigenvalue floor {floor:.2f} s) | training thread {thread:.2f} s "
              f"CPU | after training {tail:.2f} s | workers {workers:.2f} s CPU; {load_note()}")


def move_figures(shift: RunConfig, stored, workers, repeat: int) -> tuple[float, float, float, float, int]:
    """(wall, training thread CPU, wall after training, workers' CPU, spectra), each the min of repeats."""
    walls, threads, tails, cpus = [], [], [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start, tick = time.perf_counter(), time.thread_time()
        log = execute(shift, workers=workers, prior=stored)
        end = time.perf_counter()
        threads.append(time.thread_time() - tick)
        walls.append(end - start)
        tails.append(end - Timed.ended)
        assert log.status == "complete", log.message
        if isinstance(workers, WorkerPool):   # the warm workers live on: their CPU time, from /proc
            cpus.append(sum(worker_cpu(w.process.pid) for w in workers.every))
        else:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if isinstance(workers, WorkerPool):       # cumulative: per move, the mean of the increments
        cpus = [(cpus[-1] - cpus[0]) / max(1, repeat - 1)] if repeat > 1 else cpus
    return min(walls), min(threads), min(tails), min(cpus), len(log.spectra)


def startup_figure(repeat: int) -> None:
    """What a job waits for its first spectrum: a worker started for it (the app before the
    warm pool; the CLI) against a warm one from the pool (configure + one chunk of ten), wall
    time, min of repeats."""
    config = RunConfig()
    stored = read_run(ASSETS / "looped")
    jobs = [(e, stored.thetas[e], 3) for e in range(10)]
    cold, warm = [], []
    pool = WorkerPool(per_job=1, capacity=1)
    try:
        pool.give_back(pool.lease(1))
        for _ in range(repeat):
            for times, fresh in ((cold, True), (warm, False)):
                start = time.perf_counter()
                [worker] = [SpectrumWorker()] if fresh else pool.lease(1)
                worker.configure(config.to_json())
                worker.submit(jobs)
                worker.results.get(timeout=600)
                times.append(time.perf_counter() - start)
                worker.close() if fresh else pool.give_back([worker])
    finally:
        pool.close()
    print(f"first chunk of ten Looped spectra at d = 4: a worker started for it {min(cold):.2f} s wall, "
          f"a warm one {min(warm) * 1e3:.0f} ms (start-up hidden: ×{min(cold) / min(warm):.0f}); {load_note()}")


def spectra_figure(repeat: int) -> None:
    """A slider move's spectra alone, as if training took no time (with numpy training it
    takes ~0.25 s): the bundled SHIFT run's Stage II weights handed over in chunks of ten at
    once, then wall time to the last spectrum: two warm workers (the app), one, and inline in
    this thread (one core), against the eigenvalue floor for as many spectra."""
    shift = read_run(ASSETS / "shift")
    stage_two = [(int(e), t, 3) for e, t in zip(shift.weight_epochs, shift.thetas) if e > shift.config.shift_epoch]
    chunks = [stage_two[i:i + 10] for i in range(0, len(stage_two), 10)]
    problem = execute_mod.prepare(shift.config)
    pool = WorkerPool(per_job=1, capacity=2)
    walls: dict[str, list[float]] = {"two warm workers (the app)": [], "one warm worker": [], "inline, one core": []}
    try:
        pool.give_back(pool.lease(2))
        for _ in range(repeat):
            for label in walls:
                start = time.perf_counter()
                if label.startswith("inline"):
                    spectra = execute_mod.SpectrumPool(shift.config, problem, 0, len(stage_two))
                else:
                    pool.per_job = 2 if label.startswith("two") else 1
                    spectra = execute_mod.SpectrumPool(shift.config, problem, pool, len(stage_two))
                for part in chunks:
                    spectra.submit(part)
                got = sum(1 for _ in spectra.harvest(wait=True))
                spectra.close()
                walls[label].append(time.perf_counter() - start)
                assert got == len(stage_two)
    finally:
        pool.close()
    floor = eigenvalue_floor(shift, len(stage_two), repeat)
    base = min(walls["inline, one core"])
    print(f"a slider move's {len(stage_two)} Stage II spectra alone (training taken as instant), wall time: "
          + " | ".join(f"{label} {min(w):.2f} s (×{min(w) / floor:.1f} floor, ×{min(w) / base:.2f} inline)"
                       for label, w in walls.items())
          + f"; eigenvalue floor {floor:.2f} s; {load_note()}")


def worker_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cli_figure(repeat: int) -> None:
    """The default CLI run's Looped model (1501 spectra) through execute with one worker per
    core, as `python -m loopviz run` does (at d = 4 one worker, and the training thread once
    training has ended): wall time, against the eigenvalue floor."""
    config = RunConfig(model="looped")
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        log = execute(config, workers=max(1, os.cpu_count() or 1))
        walls.append(time.perf_counter() - start)
    stored = read_run(ASSETS / "looped")
    floor = eigenvalue_floor(stored, len(log.spectra), repeat)
    print(f"default CLI run, Looped, {len(log.spectra)} spectra, {os.cpu_count()} workers: {min(walls):.2f} s wall "
          f"(×{min(walls) / floor:.1f} the eigenvalue floor {floor:.2f} s); {load_note()}")


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
