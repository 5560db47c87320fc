"""Benchmark: exact Hessian spectra against the eigvalsh floor, the old method and the literal one.

    python bench/bench_curvature.py [--d 16] [--repeat 5] [--protocol]

Floor: LAPACK dsyevr (eigenvalues only) of one P × P Hessian, the part no exact
method can skip; the paper's protocol (600 epochs × 2 models, a spectrum every
epoch) needs 1202 of them. Every figure is the minimum over repeats, timed in this
process, one BLAS thread, and printed as a ratio to that floor.
  literal: the per-sample loss over all 500 training rows, its gradient with
           create_graph, then one backward pass per parameter (row-by-row double backward);
  old:     the distinct-row loss, torch.func.jacrev∘jacrev, symmetrised eigvalsh (until issue #12);
  new:     toy/hessian.py in (A, W_V, W_h) lifted by the chain rule, then dsyevr on one triangle.
--protocol also runs the protocol through the CLI's pipeline (2 spectrum workers) and
reports its wall time against the floor; last, the peak memory of one spectrum worker.
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from loopviz import curvature  # noqa: E402
from loopviz.config import RunConfig  # noqa: E402
from loopviz.runs.execute import execute  # noqa: E402
from loopviz.runs.spectrum_worker import SpectrumWorker  # noqa: E402
from loopviz.toy import hessian, models  # noqa: E402
from loopviz.toy.training import Trainer, prepare  # noqa: E402
from timing import best_cpu, load_note  # noqa: E402

SPECTRA = 1202   # the protocol: epochs 0..600 for Single and Looped


def literal_hessian(problem, theta: torch.Tensor, loops: int) -> torch.Tensor:
    task = problem.task
    E = models.embed(torch.as_tensor(task.train[:, :3]), torch.as_tensor(problem.token),
                     torch.as_tensor(problem.position))
    targets = torch.as_tensor(task.train[:, 3])
    theta = theta.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(models.logits(theta, E, loops), targets)
    (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
    rows = [torch.autograd.grad(grad[i], theta, retain_graph=True)[0] for i in range(len(theta))]
    return torch.stack(rows)


def old_spectrum(problem, theta: np.ndarray, loops: int) -> np.ndarray:
    t = torch.as_tensor(theta)
    return curvature.eigenspectrum(curvature.exact_hessian(lambda p: problem.loss(p, loops), t))



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--protocol", action="store_true", help="also run 600 epochs × 2 models with spectra")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = RunConfig(d=args.d)
    problem = prepare(config)
    E0, counts = problem.E0, problem.train_counts
    P = models.param_count(args.d)
    trainer = Trainer(config.replace(epochs=100, hessian_every=0), problem)
    list(trainer.run())
    theta = trainer.theta.copy()          # a trained θ (epoch 100 of Looped-Attn)
    H = hessian.loss_hessian(theta, E0, counts, config.loops)
    floor = best_cpu(lambda: curvature.symmetric_eigenvalues(H.copy()), args.repeat * 4)
    print(f"d = {args.d}, P = {P}, 1 BLAS thread, min of {args.repeat} repeats, CPU time of this thread; {load_note()}")
    print(f"floor: dsyevr eigenvalues of one P × P matrix {floor * 1e3:8.2f} ms; "
          f"× {SPECTRA} spectra = {floor * SPECTRA:6.1f} s")
    old_spectrum(problem, theta, 1)  # torch.func's first call imports torch._dynamo: not part of a spectrum
    per_epoch = {}
    for model, loops in (("single", 1), ("looped", config.loops)):
        t_new = best_cpu(lambda: hessian.spectra(theta[None], [loops], E0, counts), args.repeat)
        t_old = best_cpu(lambda: old_spectrum(problem, theta, loops), max(1, args.repeat // 2))
        t_lit = best_cpu(lambda: literal_hessian(problem, torch.as_tensor(theta), loops), 1)
        new = hessian.spectra(theta[None], [loops], E0, counts)[0]
        ref = np.linalg.eigvalsh(literal_hessian(problem, torch.as_tensor(theta), loops).numpy())
        err = np.abs(new - ref).max() / np.abs(ref).max()
        per_epoch[model] = t_new
        print(f"{model:>6}: new {t_new * 1e3:8.2f} ms (×{t_new / floor:5.2f} floor) | old {t_old * 1e3:8.2f} ms "
              f"(×{t_old / floor:5.2f}) | literal {t_lit * 1e3:9.1f} ms (×{t_lit / floor:6.1f}) | "
              f"new is ×{t_old / t_new:4.1f} faster than old, ×{t_lit / t_new:6.1f} than literal | "
              f"spectra agree to {err:.1e} (relative)")
    if args.d <= 8:  # at small d several epochs share one call (as the pipeline sends chunks of ten)
        thetas = np.repeat(theta[None], 10, axis=0)
        for model, loops in (("single", 1), ("looped", config.loops)):
            t10 = best_cpu(lambda: hessian.spectra(thetas, [loops] * 10, E0, counts), args.repeat) / 10
            print(f"{model}, a chunk of 10 epochs: {t10 * 1e3:.2f} ms per spectrum (×{t10 / floor:5.2f} floor)")
    serial = (per_epoch["single"] + per_epoch["looped"]) * SPECTRA / 2
    print(f"protocol's spectra, one core: {serial:6.1f} s = ×{serial / (floor * SPECTRA):4.2f} the floor "
          f"{'(goal ≤ 2.5) ' if args.d == 16 else ''}; {load_note()}")
    if args.protocol:
        protocol(config.replace(epochs=SPECTRA // 2 - 1), floor)
    print(f"spectrum worker peak memory at d = {args.d} (10 Looped spectra): {worker_peak_mb(config, theta):.0f} MB")


def protocol(config: RunConfig, floor: float) -> None:
    """The paper's protocol through execute (the CLI's pipeline, 2 spectrum workers): wall time,
    and the CPU time of this process and of its workers, each against the floor × 1202."""
    start, tick = time.perf_counter(), time.process_time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spectra = 0
    for model in ("single", "looped"):
        log = execute(config.replace(model=model), workers=2)
        spectra += len(log.spectra)
        print(f"protocol {model}: {log.status}, {len(log.records)} records, {len(log.spectra)} spectra, "
              f"{time.perf_counter() - start:.1f} s so far")
    wall, own = time.perf_counter() - start, time.process_time() - tick
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    base = floor * spectra
    print(f"protocol ({config.epochs} epochs × 2 models, {spectra} spectra, 2 workers): {wall:.1f} s wall = "
          f"×{wall / base:4.2f} the floor ({base:.1f} s) (goal ≤ 2.5); CPU: training process {own:.1f} s, "
          f"workers {workers:.1f} s = ×{workers / base:4.2f} the floor; {load_note()}")


def worker_peak_mb(config: RunConfig, theta: np.ndarray) -> float:
    """VmHWM of one spectrum worker after a chunk (read from /proc: a fork's rusage would
    count this process's own pages)."""
    worker = SpectrumWorker(config.to_json())
    try:
        worker.submit([(i, theta, config.loops) for i in range(10)])
        worker.results.get(timeout=600)
        status = Path(f"/proc/{worker.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024
    finally:
        worker.close()


if __name__ == "__main__":
    main()
