"""Benchmark: exact Hessian spectra, the literal method against ours, side by side.

    python bench/bench_curvature.py [--d 16] [--protocol]

Literal: the per-sample loss over all 500 training rows, its gradient with
create_graph, then one backward pass per parameter (row-by-row double backward).
Ours: the loss as a weighted sum over the 27 distinct contexts, torch.func.hessian
(forward-over-reverse), then eigvalsh. Both run in this process, one thread, and
the output is their ratio. --protocol also times the paper's protocol (600 epochs,
spectrum every epoch, Single and Looped) through the CLI's pipeline on every core
and reports its wall time and peak memory.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from loopviz.toy import models  # noqa: E402
from loopviz.config import RunConfig  # noqa: E402
from loopviz.runs.execute import execute  # noqa: E402
from loopviz.toy.training import prepare  # noqa: E402


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


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up: torch.func traces on first use
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - start) / repeat, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--protocol", action="store_true", help="also time 600 epochs × 2 models with spectra")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = RunConfig(d=args.d)
    problem = prepare(config)
    theta = torch.as_tensor(np.random.default_rng(0).standard_normal(models.param_count(args.d)) * 0.1)
    print(f"d = {args.d}, P = {models.param_count(args.d)} parameters, 1 thread")
    for model, loops in (("single", 1), ("looped", config.loops)):
        t_literal, H_literal = timed(lambda: literal_hessian(problem, theta, loops), 1)
        t_ours, eig = timed(lambda: problem.hessian_spectrum(theta.numpy(), loops), args.repeat)
        err = np.abs(np.linalg.eigvalsh(H_literal.numpy()) - eig).max() / np.abs(eig).max()
        print(f"{model:>6}: literal Hessian {t_literal:7.3f} s | ours (Hessian + eigvalsh) {t_ours:6.3f} s | "
              f"speed-up ×{t_literal / t_ours:6.1f} | spectra agree to {err:.1e} (relative)")
    if args.protocol:
        workers = os.cpu_count() or 1
        start = time.perf_counter()
        for model in ("single", "looped"):
            log = execute(config.replace(model=model), workers=workers)
            print(f"protocol {model}: {log.status}, {len(log.records)} records, {len(log.spectra)} spectra, "
                  f"{time.perf_counter() - start:.1f} s so far")
        wall = time.perf_counter() - start
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        print(f"protocol (600 epochs × 2 models, spectrum every epoch, {workers} workers): {wall:.1f} s wall, "
              f"peak memory of one process {peak:.0f} MB")


if __name__ == "__main__":
    main()
