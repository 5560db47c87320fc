"""Many runs trained at once: one batched forward/backward over a leading run axis.

A seed sweep trains the same small model hundreds of times. One run's epoch is a
handful of tiny tensor operations, so its cost is per-call overhead; stacking R runs
along a leading axis makes each operation R times larger for nearly the same cost.
Every run keeps its own data (the count tables and embedding of its data seed), its
own initial weights and its own Adam moments (Adam is elementwise, so one Adam over
the stacked [R, P] weights is R independent Adams); the loss summed over runs has,
w.r.t. each run's weights, exactly that run's gradient.

The final metrics are computed by training.evaluate at each run's final weights, the
very function one-run training uses (tests/test_batched.py checks the rows against
one-run training).
"""
from __future__ import annotations

import time

import numpy as np

from .embedding import init_weights
from ..config import RunConfig
from .training import Problem, Runs, evaluate, make_optimizer, prepare, train_epoch


def _shape_key(config: RunConfig) -> tuple:
    """Runs that can share one batch: everything but the seeds and the data's make-up."""
    return (config.model, config.loops if config.model != "single" else 1, config.d, config.epochs, config.lr,
            config.batch_size, config.n_train, config.shift_epoch if config.model == "shift" else -1,
            config.reset_optimizer if config.model == "shift" else False, config.device,
            config.optimizer, config.momentum)


def _data_key(config: RunConfig) -> str:
    return config.replace(model="single").key()


def train_many(configs: list[RunConfig], curve: str | None = None) -> tuple[list[dict], list[np.ndarray] | None]:
    """Train every config (spectra off) in batches of compatible runs; see final_metrics_many.

    curve: a metric of training.evaluate (e.g. "acc_high") to record at every epoch
    for each run (an array [epochs + 1], NaN after a divergence), or None.
    """
    rows: list[dict | None] = [None] * len(configs)
    curves: list[np.ndarray | None] | None = [None] * len(configs) if curve else None
    problems: dict[str, Problem] = {}
    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault(_shape_key(config), []).append(i)
        if _data_key(config) not in problems:
            problems[_data_key(config)] = prepare(config)
    for members in groups.values():
        finals, series = _train_group([configs[i] for i in members],
                                      [problems[_data_key(configs[i])] for i in members], curve)
        for j, i in enumerate(members):
            rows[i] = finals[j]
            if curves is not None:
                curves[i] = series[j]
    return rows, curves  # type: ignore[return-value]


def _train_group(configs: list[RunConfig], problems: list[Problem], curve: str | None):
    """One batch: the same shapes and schedule, different seeds and data. Each epoch is
    training.train_epoch, the one training.Trainer takes, on θ [R, P] instead of [P]: the
    same gradient code over the run axis and the same elementwise optimiser."""
    first = configs[0]
    runs = Runs.of(problems)
    R, E_total = len(configs), first.epochs
    theta = np.stack([init_weights(c.d, c.init_scale, c.seed) for c in configs])     # [R, P], updated in place
    optimizer = make_optimizer(first, theta)
    tasks = [problem.task for problem in problems]
    alive = np.ones(R, dtype=bool)
    stopped: list[tuple[int, np.ndarray] | None] = [None] * R     # (epoch, θ) of a diverged run
    series = np.full((R, E_total + 1), np.nan) if curve else None
    seconds = 0.0

    def gradient(loops: int) -> np.ndarray:
        """The full-batch gradient at θ; the divergence test (training.Trainer.run stops at the
        first record whose loss or gradient norm is not finite) and the curve on the way."""
        if series is not None:
            metrics, grad = runs.evaluate(theta, loops)
            loss, norm = metrics["loss"], metrics["grad_norm"]
        else:
            with np.errstate(all="ignore"):
                _, loss, grad = runs.loss_and_gradient(theta, loops)
                norm = np.sqrt((grad * grad).sum(-1))
        finite = np.isfinite(loss) & np.isfinite(norm)
        for r in np.nonzero(alive & ~finite)[0]:
            alive[r] = False
            stopped[r] = (epoch, theta[r].copy())
            if series is not None:
                series[r, epoch] = metrics[curve][r]
        if series is not None:
            series[alive, epoch] = metrics[curve][alive]
        return grad

    epoch = 0
    grad = gradient(first.loops_at(0))
    for epoch in range(1, E_total + 1):
        if not alive.any():
            break
        tick = time.thread_time()
        optimizer = train_epoch(configs, tasks, runs, theta, optimizer, epoch, grad)
        grad = gradient(first.loops_at(epoch))   # the next full-batch step's gradient, and the divergence test
        seconds += time.thread_time() - tick
    finals = []
    for r, (config, problem) in enumerate(zip(configs, problems)):
        epoch, weights = stopped[r] if stopped[r] is not None else (E_total, theta[r])
        metrics, _ = evaluate(problem, weights, config.loops_at(epoch))
        finals.append({**metrics, "epoch": epoch, "diverged": stopped[r] is not None, "seconds": seconds / R})
    return finals, (list(series) if series is not None else None)


def final_metrics_many(configs: list[RunConfig]) -> list[dict]:
    """Final metrics of many runs, trained together; row i belongs to configs[i].

    Contract (what sweeps may rely on):
    - Each row has the keys of loopviz.sweeps.final_metrics: the record metrics
      (loss, val_loss, grad_norm, acc_low/high/all, val_acc_low/high/all), "epoch" (the
      last epoch trained: config.epochs, or the epoch at which the run diverged),
      "diverged" (bool) and "seconds".
    - The metrics equal those of training each config alone (training.train) bit for bit
      on the CPU (numpy; tests/test_batched.py), to float64 round-off on a GPU (torch's
      batched kernels may round a batch differently); a diverged run stops where the
      one-run loop stops, and never affects the others.
    - "seconds" is the batch's training CPU time divided by its number of runs: a share,
      not one run's own time, so do not use it to compare runs' speeds (sweep-shift).
    - Any mix of configs is accepted; those sharing model, loops, d, epochs, lr, batch
      size, n_train and the SHIFT schedule are trained in one batch (seeds, data seeds,
      init scale, embeddings and task parameters may differ), whatever the optimiser.
      Spectra are never computed (hessian_every is ignored). Pure: no I/O, no processes,
      no threads started; call it from any worker, one chunk of seeds at a time.
    """
    return train_many(configs)[0]
