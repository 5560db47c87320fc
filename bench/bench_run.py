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
seed alone) once. `--sweep-only` skips the run figure; `--cluster N` also times the
sweep on a LocalCluster of N workers (wall, worker start-up included).
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
    parser.add_argument("--cluster", type=int, default=0, help="also time the sweep on a LocalCluster of N workers")
    args = parser.parse_args()
    torch.set_num_threads(1)
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
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            one.append(cpu(lambda: [final_metrics(c) for c in configs[:2]]))
            many.append(cpu(lambda: final_metrics_many(configs)))
            swept.append(cpu(lambda: sweep(points, Path(tmp) / f"{i}.csv", True, 0, None)))
        # the sweep as it was before batching: each seed's two models trained alone (once: ~×seeds)
        alone = cpu(lambda: [final_metrics(c) for c in configs])
        if args.cluster:
            start = time.perf_counter()
            sweep(points, Path(tmp) / "cluster.csv", True, args.cluster, None)
            cluster = time.perf_counter() - start
            start = time.perf_counter()
            [final_metrics(c) for c in configs[:2]]
            one_wall = time.perf_counter() - start
    base = min(one)
    print(f"one seed, Single + Looped alone: {base:.2f} s CPU | {args.seeds} seeds in one batch "
          f"(toy/batched.py): {min(many):.2f} s CPU = ×{min(many) / base:.2f} one seed")
    print(f"sweep-seeds --seeds {args.seeds} --serial (sweeps.sweep: chunks, ceilings, CSV): "
          f"{min(swept):.2f} s CPU = ×{min(swept) / base:.2f} one seed (goal ≤ 1.5); "
          f"before batching (each seed alone): {alone:.2f} s CPU = ×{alone / base:.2f}; {load_note()}")
    if args.cluster:
        print(f"sweep-seeds --seeds {args.seeds} --workers {args.cluster} (LocalCluster start included): "
              f"{cluster:.2f} s wall = ×{cluster / one_wall:.2f} one seed's {one_wall:.2f} s wall")

if __name__ == "__main__":
    main()
