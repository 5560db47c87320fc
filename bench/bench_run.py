"""Benchmark: a default run from the command line against `import torch`, a seed sweep
trained in one batch against one seed trained alone, and an epoch of numpy training against
the same epoch through torch autograd.

    python bench/bench_run.py [--repeat 3] [--seeds 20]

Run: `python -m loopviz run --model single,looped` at the default config (d = 4, 1500
epochs, a spectrum every epoch), and at the paper's 600 epochs (1202 spectra, the
issue's figure), wall and CPU time (user + system) of the whole process, against
`python -c "import torch"` started the same way; interleaved, min of repeats. On a
loaded machine the CPU ratio is the steadier one.
Sweep: toy/batched.final_metrics_many over the sweep's 2 × seeds configs, and the whole
serial seed sweep (sweeps.sweep: chunks of seeds through toy/batched.py, ceilings, CSV),
against sweeps.final_metrics of one seed's Single and Looped run, CPU time of this thread,
min of repeats (the issue's goal: ≤ 1.5×); the sweep as it was before batching (every
seed alone) once. `--sweep-only` skips the run figure.
`--cluster N` (issue #12, live what-ifs): the commands as a user types them, wall of the
whole process, interleaved, min of repeats, each as a ratio to the one-seed
`python -m loopviz run --hessian-every 0` (Single + Looped, 1500 epochs): `sweep-seeds
--seeds S` as the CLI runs it by default (sweeps.placement's choice), with `--workers N`
(the default before: a LocalCluster, one worker per core) and with `--serial`; and the
LocalCluster's start-up (`sweep-seeds --seeds 2 --epochs 1 --workers N` less the same
with --serial, whole processes), against sweeps.CLUSTER_START_SECONDS, the rule's constant.
`--costs`: sweeps.estimated_seconds (the rule's cost model) against the measured CPU time
of running the same plans in this process, seed / atlas / SHIFT plans of several shapes.
Epoch: one training epoch (the step and the record: loss, gradient, metrics) of Single and
Looped at the defaults, spectra off, CPU µs per epoch over 300 epochs, min of repeats, with
the gradient from toy/gradient.py (numpy, the CPU path) and from torch autograd through
models.py (backend "torch": the literal method, the GPU path), and the gradient alone, one
run and 20 stacked.
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from loopviz.config import RunConfig  # noqa: E402
from loopviz import sweeps  # noqa: E402
from loopviz.sweeps import final_metrics, plan, seed_configs, sweep  # noqa: E402
from loopviz.toy.batched import final_metrics_many  # noqa: E402
from loopviz.toy.training import Runs, Trainer, prepare  # noqa: E402
from timing import best_cpu, load_note  # noqa: E402


def wall(command: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and its children) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu(fn) -> float:
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sweep-only", action="store_true", help="skip the default-run figure")
    parser.add_argument("--epoch-only", action="store_true", help="only the per-epoch figures")
    parser.add_argument("--cluster", type=int, default=0,
                        help="only the CLI sweep figures: the default, --workers N, --serial, against `run`")
    parser.add_argument("--costs", action="store_true", help="only the cost model against measured CPU")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cluster or args.costs:
        if args.costs:
            cost_model(args.repeat)
        if args.cluster:
            cli_sweeps(args.repeat, args.seeds, args.cluster)
        return
    epoch_figures(args.repeat)
    if args.epoch_only:
        return
    if not args.sweep_only:
        default_run(args.repeat, [0, 600])
    sweep_figures(args)


def epoch_figures(repeat: int, epochs: int = 300) -> None:
    """CPU µs per training epoch, numpy against torch autograd; then the gradient alone, R = 1 and 20."""
    for model in ("single", "looped"):
        config = RunConfig(model=model, hessian_every=0, epochs=epochs)
        cost = {}
        for backend in ("numpy", "torch"):
            problem = prepare(config, backend=backend)
            cost[backend] = best_cpu(lambda: list(Trainer(config, problem).run()), repeat) / (epochs + 1) * 1e6
        loops = config.loops_at(epochs)
        grads = {}
        for R in (1, 20):
            theta = np.random.default_rng(0).standard_normal((R, 60)) * 0.3
            for backend in ("numpy", "torch"):
                runs = Runs.of([prepare(config, backend=backend)] * R)
                grads[backend, R] = best_cpu(lambda: [runs.loss_and_gradient(theta, loops) for _ in range(200)],
                                             repeat) / 200 * 1e6
        print(f"{model} epoch (step + record): numpy {cost['numpy']:.0f} µs | torch autograd {cost['torch']:.0f} µs "
              f"= ×{cost['torch'] / cost['numpy']:.1f} | gradient alone, numpy / torch: one run "
              f"{grads['numpy', 1]:.0f} / {grads['torch', 1]:.0f} µs, 20 stacked {grads['numpy', 20]:.0f} / "
              f"{grads['torch', 20]:.0f} µs; {load_note()}")


def default_run(repeat: int, epochs: list[int]) -> None:
    """`python -m loopviz run` at the defaults (and at --epochs E for each E given), against
    `python -c "import torch"`: wall and CPU time, interleaved, min of repeats."""
    imports, runs = [], {e: [] for e in epochs}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            imports.append(wall([sys.executable, "-c", "import torch"]))
            for e in epochs:
                extra = ["--epochs", str(e)] if e else []
                runs[e].append(wall([sys.executable, "-m", "loopviz", "run", "--out", f"{tmp}/{e}-{i}"] + extra))
    floor_wall, floor_cpu = min(t[0] for t in imports), min(t[1] for t in imports)
    for e, times in runs.items():
        run_wall, run_cpu = min(t[0] for t in times), min(t[1] for t in times)
        what = f"{e} epochs" if e else f"default {RunConfig().epochs} epochs"
        print(f"default run (Single + Looped, {what}, a spectrum every epoch): {run_wall:.2f} s wall = "
              f"×{run_wall / floor_wall:.2f} import torch ({floor_wall:.2f} s); CPU {run_cpu:.2f} s = "
              f"×{run_cpu / floor_cpu:.2f} import torch's {floor_cpu:.2f} s (goal ≤ 3); {load_note()}")


def sweep_figures(args: argparse.Namespace) -> None:

    configs = [c.replace(model=m) for c in seed_configs(RunConfig(hessian_every=0), args.seeds, "both")
               for m in ("single", "looped")]
    points = plan("seed", seed_configs(RunConfig(), args.seeds, "both"))
    one, many, swept = [], [], []
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):  # the placement lines
        for i in range(args.repeat):
            one.append(cpu(lambda: [final_metrics(c) for c in configs[:2]]))
            many.append(cpu(lambda: final_metrics_many(configs)))
            swept.append(cpu(lambda: sweep(points, Path(tmp) / f"{i}.csv", True, 0, None)))
        # the sweep as it was before batching: each seed's two models trained alone (once: ~×seeds)
        alone = cpu(lambda: [final_metrics(c) for c in configs])
    base = min(one)
    print(f"one seed, Single + Looped alone: {base:.2f} s CPU | {args.seeds} seeds in one batch "
          f"(toy/batched.py): {min(many):.2f} s CPU = ×{min(many) / base:.2f} one seed")
    print(f"sweep-seeds --seeds {args.seeds} --serial (sweeps.sweep: chunks, ceilings, CSV): "
          f"{min(swept):.2f} s CPU = ×{min(swept) / base:.2f} one seed (goal ≤ 1.5); "
          f"before batching (each seed alone): {alone:.2f} s CPU = ×{alone / base:.2f}; {load_note()}")


def cli_sweeps(repeat: int, seeds: int, workers: int) -> None:
    """`sweep-seeds --seeds S` as typed (default, --workers N, --serial) against the one-seed
    `run --hessian-every 0`, whole processes, wall and CPU, interleaved, min of repeats; then
    the LocalCluster's start-up against the rule's constant."""
    sweep_cmd = [sys.executable, "-m", "loopviz", "sweep-seeds", "--seeds", str(seeds), "--force", "--out"]
    kinds = {"default": [], f"--workers {workers}": ["--workers", str(workers)], "--serial": ["--serial"]}
    times: dict[str, list] = {"run": [], **{k: [] for k in kinds}}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            times["run"].append(wall([sys.executable, "-m", "loopviz", "run", "--hessian-every", "0", "--force",
                                      "--out", f"{tmp}/run"]))
            for kind, extra in kinds.items():
                times[kind].append(wall(sweep_cmd + [f"{tmp}/sweep.csv", *extra]))
        said = subprocess.run(sweep_cmd + [f"{tmp}/sweep.csv"], cwd=REPO, check=True, capture_output=True,
                              text=True).stderr.splitlines()
    run_wall, run_cpu = min(t[0] for t in times["run"]), min(t[1] for t in times["run"])
    print(f"python -m loopviz run --hessian-every 0 (one seed, Single + Looped, 1500 epochs): {run_wall:.2f} s wall, "
          f"{run_cpu:.2f} s CPU; {load_note()}")
    for kind in kinds:
        w, c = min(t[0] for t in times[kind]), min(t[1] for t in times[kind])
        label = {"default": "the default now", f"--workers {workers}": f"the default before: a LocalCluster of "
                 f"{workers} workers", "--serial": "in this process"}[kind]
        print(f"  sweep-seeds --seeds {seeds} {kind + ' ' if kind != 'default' else ''}({label}): {w:.2f} s wall = "
              f"×{w / run_wall:.2f} run; CPU {c:.2f} s = ×{c / run_cpu:.2f} run's")
    print("  the default said: " + next((line for line in said if " points " in line), "(nothing)"))
    tiny = [sys.executable, "-m", "loopviz", "sweep-seeds", "--seeds", "2", "--epochs", "1", "--force", "--out"]
    start_up = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            cluster = wall(tiny + [f"{tmp}/c.csv", "--workers", str(workers)])[0]
            start_up.append(cluster - wall(tiny + [f"{tmp}/s.csv", "--serial"])[0])
    print(f"  LocalCluster of {workers} workers, started and closed by the CLI (`sweep-seeds --seeds 2 --epochs 1 "
          f"--workers {workers}` less the same with --serial): {min(start_up):.2f} s wall (max {max(start_up):.2f}); "
          f"the rule assumes {sweeps.CLUSTER_START_SECONDS} s; {load_note()}")


def cost_model(repeat: int) -> None:
    """sweeps.estimated_seconds against the CPU time of running the plan in this process."""
    base = RunConfig(hessian_every=0)
    plans = {
        "seed, 20 seeds (the default config)": plan("seed", seed_configs(base, 20, "both")),
        "seed, 1 seed, 300 epochs": plan("seed", seed_configs(base.replace(epochs=300), 1, "both")),
        "seed, 32 seeds, d = 16, 300 epochs": plan("seed", seed_configs(base.replace(d=16, epochs=300), 32, "both")),
        "seed, 8 seeds, d = 8, minibatch 50, 60 epochs":
            plan("seed", seed_configs(base.replace(d=8, epochs=60, batch_size=50), 8, "both")),
        "atlas, 3 points, 300 epochs": plan("atlas", sweeps.atlas_configs(base.replace(epochs=300), {}, 3)),
        "atlas, 2 points, d = 16, 200 epochs, --spectra":
            plan("atlas", sweeps.atlas_configs(base.replace(d=16, epochs=200), {}, 2), spectra=True),
        "shift, 3 shift epochs + Looped, 1500 epochs": plan("shift", sweeps.shift_configs(base, [0, 200, 1000], 1)),
    }
    list(sweeps.run_points(plans["seed, 1 seed, 300 epochs"], 0))   # warm: first calls load code
    for name, points in plans.items():
        measured = best_cpu(lambda: list(sweeps.run_points(points, 0)), repeat)
        estimate = sweeps.estimated_seconds(points)
        print(f"cost model, {name}: estimate {estimate:.2f} s, measured {measured:.2f} s CPU "
              f"= ×{estimate / measured:.2f}")
    print(f"  {load_note()}")

if __name__ == "__main__":
    main()
