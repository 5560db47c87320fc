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
import torch

from . import markov, models
from .optim import Adam
from ..config import RunConfig
from .training import DTYPE, Problem, Trainer, evaluate, prepare

# Runs are batched only at widths d that are multiples of 4: every run's block of every
# tensor then starts 32 bytes apart, and the BLAS kernels round each run exactly as they
# round it alone. At other widths a run's place in the batch changed the last bits of its
# gradient (measured at d = 3), which Adam's normalisation amplifies to ~1e-5 in 600 epochs,
# so those runs train one at a time.
ALIGNED_D = 4


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
        batch = [configs[i] for i in members]
        # _train_group steps Adam only; sgd/gd runs train one at a time (training.Trainer)
        train = _train_group if batch[0].d % ALIGNED_D == 0 and batch[0].optimizer == "adam" else _train_alone
        finals, series = train(batch, [problems[_data_key(c)] for c in batch], curve)
        for j, i in enumerate(members):
            rows[i] = finals[j]
            if curves is not None:
                curves[i] = series[j]
    return rows, curves  # type: ignore[return-value]


def _train_alone(configs: list[RunConfig], problems: list[Problem], curve: str | None):
    """One run at a time (training.Trainer): for widths whose batches would round differently."""
    finals, series = [], []
    for config, problem in zip(configs, problems):
        records = list(Trainer(config, problem).run())
        last = records[-1]
        finals.append({**last.metrics, "epoch": last.epoch, "diverged": bool(last.diverged), "seconds": last.seconds})
        if curve:
            line = np.full(config.epochs + 1, np.nan)
            line[:len(records)] = [r.metrics[curve] for r in records]
            series.append(line)
    return finals, (series if curve else None)


def _train_group(configs: list[RunConfig], problems: list[Problem], curve: str | None):
    """One batch: the same shapes and schedule, different seeds and data (Adam only)."""
    first = configs[0]
    if first.optimizer != "adam":
        raise ValueError(f"batched training steps Adam only, got optimizer {first.optimizer!r}")
    device = problems[0].device
    R, E_total = len(configs), first.epochs
    E0 = torch.stack([p.E0 for p in problems])                        # [R, 27, d, n]
    train_counts = torch.stack([p.train_counts for p in problems])    # [R, 27, V]
    theta = torch.tensor(np.stack([models.init_weights(c.d, c.init_scale, c.seed) for c in configs]),
                         dtype=DTYPE, device=device, requires_grad=True)
    optimizer = Adam(theta, lr=first.lr)
    full_batch = first.batch_size in (0, first.n_train)
    alive = np.ones(R, dtype=bool)
    stopped: list[tuple[int, np.ndarray] | None] = [None] * R     # (epoch, θ) of a diverged run
    series = np.full((R, E_total + 1), np.nan) if curve else None
    seconds = 0.0

    def gradient(loops: int, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss = models.weighted_cross_entropy(models.logits(theta, E0, loops), counts)
        (grad,) = torch.autograd.grad(loss.sum(), theta)
        return loss.detach(), grad

    def check(epoch: int, loss: torch.Tensor, grad: torch.Tensor) -> None:
        """training.Trainer.run stops at the first record whose loss or gradient norm is not finite."""
        finite = (torch.isfinite(loss) & torch.isfinite(torch.linalg.vector_norm(grad, dim=1))).cpu().numpy()
        for r in np.nonzero(alive & ~finite)[0]:
            alive[r] = False
            stopped[r] = (epoch, theta.detach()[r].cpu().numpy().copy())
        if series is not None:
            for r in np.nonzero(alive | ~finite)[0]:
                if alive[r] or stopped[r][0] == epoch:
                    series[r, epoch] = evaluate(problems[r], theta.detach()[r], first.loops_at(epoch))[0][curve]

    loops = first.loops_at(0)
    loss, grad = gradient(loops, train_counts)
    check(0, loss, grad)
    for epoch in range(1, E_total + 1):
        if not alive.any():
            break
        loops = first.loops_at(epoch)
        if first.model == "shift" and first.reset_optimizer and epoch == first.shift_epoch + 1:
            optimizer = Adam(theta, lr=first.lr)
        tick = time.thread_time()
        if full_batch:
            if loops != first.loops_at(epoch - 1):
                _, grad = gradient(loops, train_counts)
            theta.grad = grad   # replaces the old gradient: no zero_grad needed
            optimizer.step()
        else:
            orders = [np.random.default_rng([c.seed, epoch]).permutation(len(p.task.train))
                      for c, p in zip(configs, problems)]
            for begin in range(0, first.n_train, first.batch_size):
                counts = torch.as_tensor(np.stack([markov.count_table(p.task.train[o[begin:begin + first.batch_size]])
                                                   for p, o in zip(problems, orders)]), dtype=DTYPE, device=device)
                optimizer.zero_grad(set_to_none=True)
                _, theta.grad = gradient(loops, counts)
                optimizer.step()
        loss, grad = gradient(loops, train_counts)   # the next full-batch step's gradient, and the divergence test
        seconds += time.thread_time() - tick
        check(epoch, loss, grad)
    finals = []
    for r, (config, problem) in enumerate(zip(configs, problems)):
        epoch, weights = stopped[r] if stopped[r] is not None else (E_total, theta.detach()[r].cpu().numpy())
        metrics, _ = evaluate(problem, torch.as_tensor(weights, dtype=DTYPE, device=device), config.loops_at(epoch))
        finals.append({**metrics, "epoch": epoch, "diverged": stopped[r] is not None, "seconds": seconds / R})
    return finals, (list(series) if series is not None else None)


def final_metrics_many(configs: list[RunConfig]) -> list[dict]:
    """Final metrics of many runs, trained together; row i belongs to configs[i].

    Contract (what sweeps may rely on):
    - Each row has the keys of loopviz.sweeps.final_metrics: the record metrics
      (loss, val_loss, grad_norm, acc_low/high/all, val_acc_low/high/all), "epoch" (the
      last epoch trained: config.epochs, or the epoch at which the run diverged),
      "diverged" (bool) and "seconds".
    - The metrics equal those of training each config alone (training.train) to float64
      round-off (≤ 1e-12 relative; accuracies exactly, barring exact argmax ties); a
      diverged run stops where the one-run loop stops, and never affects the others.
    - "seconds" is the batch's training CPU time divided by its number of runs: a share,
      not one run's own time, so do not use it to compare runs' speeds (sweep-shift).
    - Any mix of configs is accepted; those sharing model, loops, d, epochs, lr, batch
      size, n_train and the SHIFT schedule are trained in one batch (seeds, data seeds,
      init scale, embeddings and task parameters may differ), when d is a multiple of 4;
      at other widths each run trains alone (same rows, no speed-up). Spectra are never
      computed (hessian_every is ignored). Pure: no I/O, no processes, no threads started;
      call it from any worker, one chunk of seeds at a time. torch threads are left as
      the caller set them (one is fastest for these sizes).
    """
    return train_many(configs)[0]
