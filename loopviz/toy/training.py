"""The epoch loop: one record per epoch, evaluated exactly on the full data.

Every training loss, gradient and Hessian is a weighted sum over the 27 possible
contexts (x0, x1, x2): a dataset is a table counts[context, next token]. A minibatch
is such a table too, so one Adam step costs the same at any batch size, and every
number here is the exact full-data value, not a running mean.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from . import hessian, markov, models
from .optim import SGD, Adam
from ..config import RunConfig
from ..curvature import eigenspectrum, exact_hessian
from ..runs.log import EpochRecord

CONTEXT_LEN = markov.SEQ_LEN - 1
DTYPE = torch.float64


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available here")
    return torch.device(name)


@dataclass
class Problem:
    """The task as tensors on one device: the 27 contexts' embeddings and count tables."""

    config: RunConfig
    task: markov.Task
    token: np.ndarray                 # [V, d]
    position: np.ndarray              # [n, d]
    device: torch.device
    E0: torch.Tensor                  # [27, d, 3] embeddings of every context
    # Count tables [27, V] keyed by the accuracy metric they score: acc_low ... val_acc_all.
    bucket_counts: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def bucket_totals(self) -> list[float]:
        """Σ counts of each bucket table, in bucket_counts' order (computed once)."""
        if "_totals" not in self.__dict__:
            self.__dict__["_totals"] = [float(c.sum()) for c in self.bucket_counts.values()]
        return self.__dict__["_totals"]

    @property
    def bucket_tables(self) -> torch.Tensor:
        """The bucket_counts tables stacked [buckets, 27, V] (built once, read every epoch)."""
        if "_tables" not in self.__dict__:
            self.__dict__["_tables"] = torch.stack(list(self.bucket_counts.values()))
        return self.__dict__["_tables"]

    @property
    def train_counts(self) -> torch.Tensor:
        return self.bucket_counts["acc_all"]

    @property
    def val_counts(self) -> torch.Tensor:
        return self.bucket_counts["val_acc_all"]

    def loss(self, theta: torch.Tensor, loops: int, counts: torch.Tensor | None = None) -> torch.Tensor:
        return models.weighted_cross_entropy(models.logits(theta, self.E0, loops),
                                             self.train_counts if counts is None else counts)

    def hessian_spectrum(self, theta: np.ndarray, loops: int) -> np.ndarray:
        """Exact Hessian of the full training loss at θ, float64; eigenvalues ascending."""
        return self.hessian_spectra([theta], [loops])[0]

    def hessians(self, thetas: np.ndarray, loops: np.ndarray) -> np.ndarray:
        """Exact Hessians [N, P, P] of the full training loss at N (θ, loops) pairs, float64:
        on the CPU by toy/hessian.py's closed form (batched as its spectra are), on a GPU by autograd."""
        thetas, loops = np.asarray(thetas, dtype=np.float64), np.asarray(loops).astype(int)
        out = np.empty((len(thetas), thetas.shape[1], thetas.shape[1]))
        if self.device.type != "cpu":
            for i, (t, T) in enumerate(zip(thetas, loops)):
                out[i] = exact_hessian(lambda p, T=int(T): self.loss(p, T),
                                       torch.as_tensor(t, dtype=DTYPE, device=self.device)).cpu().numpy()
            return out
        for part, batch in hessian.hessian_batches(thetas, loops, self.E0.numpy(), self.train_counts.numpy()):
            out[part] = batch
        return out

    def gradients(self, thetas: np.ndarray, loops: int) -> np.ndarray:
        """Exact gradients [N, P] of the full training loss at N weight vectors with one loop
        count: one backward pass over the run axis (runs are independent rows of the sum),
        without torch.func (whose grad imports torch._dynamo)."""
        theta = torch.as_tensor(np.asarray(thetas, dtype=np.float64), dtype=DTYPE, device=self.device)
        theta.requires_grad_(True)
        N = len(theta)
        E0 = self.E0.unsqueeze(0).expand(N, *self.E0.shape)
        counts = self.train_counts.unsqueeze(0).expand(N, *self.train_counts.shape)
        loss = models.weighted_cross_entropy(models.logits(theta, E0, loops), counts)
        return torch.autograd.grad(loss.sum(), theta)[0].cpu().numpy()

    def hessian_spectra(self, thetas: list[np.ndarray], loops: list[int]) -> np.ndarray:
        """Spectra [N, P] at several (θ, loops): on the CPU by toy/hessian.py's closed
        forward-over-reverse in numpy (no torch.func, so torch._dynamo never loads); on a
        GPU by autograd, where the Hessian stays on the device."""
        if self.device.type == "cpu":
            return hessian.spectra(np.stack(thetas), np.asarray(loops), self.E0.numpy(),
                                   self.train_counts.numpy())
        return np.stack([eigenspectrum(exact_hessian(lambda p, T=T: self.loss(p, T),
                                                     torch.as_tensor(t, dtype=DTYPE, device=self.device)))
                         for t, T in zip(thetas, loops)])


def prepare(config: RunConfig) -> Problem:
    task = markov.task_for(config)
    token, position = models.make_embedding(config.embedding, config.d, CONTEXT_LEN, config.data_seed)
    device = resolve_device(config.device)

    def as_tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=DTYPE, device=device)

    contexts = torch.as_tensor(markov.enumerate_sequences(CONTEXT_LEN), device=device)
    E0 = models.embed(contexts, as_tensor(token), as_tensor(position))
    buckets = {}
    for prefix, seqs, bucket in (("acc_", task.train, task.train_bucket), ("val_acc_", task.val, task.val_bucket)):
        for name, mask in (("low", bucket == 0), ("high", bucket == 2), ("all", np.ones(len(seqs), bool))):
            buckets[prefix + name] = as_tensor(markov.count_table(seqs[mask]))
    return Problem(config, task, token, position, device, E0, buckets)


def evaluate(problem: Problem, theta: torch.Tensor, loops: int) -> tuple[dict[str, float], torch.Tensor]:
    """All record metrics at θ, and the full-batch training gradient (reused by the step)."""
    theta = theta.detach().requires_grad_(True)
    out = models.logits(theta, problem.E0, loops)
    loss = models.weighted_cross_entropy(out, problem.train_counts)
    (grad,) = torch.autograd.grad(loss, theta)
    with torch.no_grad():
        val_loss = models.weighted_cross_entropy(out, problem.val_counts)
        # correct[c, y]: the model's argmax for context c is y (ties go to the lowest token).
        correct = torch.nn.functional.one_hot(out.argmax(-1), markov.VOCAB).to(DTYPE)
        # All accuracies in one product and one transfer (integer counts: the sums are exact).
        hits = (correct * problem.bucket_tables).sum(dim=(1, 2))
        values = torch.cat([torch.stack([loss.detach(), val_loss, grad.norm()]), hits]).tolist()
        totals = [float(t) for t in problem.bucket_totals]
        metrics = {"loss": values[0], "val_loss": values[1], "grad_norm": values[2]}
        for name, h, total in zip(problem.bucket_counts, values[3:], totals):
            metrics[name] = h / total if total > 0 else float("nan")
    return metrics, grad


@dataclass
class TrainState:
    """Enough to continue training after `epoch` (SHIFT continues a Single run)."""

    epoch: int
    theta: np.ndarray
    optimizer: dict | None    # the optimiser's state_dict (torch's layout, optim.py); None for a fresh one
    seconds: float = 0.0


def adam_state(lr: float, moments: np.ndarray, steps: int) -> dict:
    """TrainState.optimizer (an Adam state_dict for θ) rebuilt from stored moments [2, P]
    (exp_avg, exp_avg_sq) and the step count: continuing from it is bit for bit the
    continuation of the run that stored them."""
    state = Adam(torch.zeros(1, dtype=DTYPE), lr).state_dict()
    state["state"] = {0: {"step": torch.tensor(float(steps)),  # Adam keeps its step as a float32 tensor
                          "exp_avg": torch.tensor(moments[0], dtype=DTYPE),
                          "exp_avg_sq": torch.tensor(moments[1], dtype=DTYPE)}}
    return state


def make_optimizer(config: RunConfig, theta: torch.Tensor) -> Adam | SGD:
    """The run's optimiser on θ: Adam (the paper, App. E.1.1), or SGD with the config's momentum
    for sgd (minibatches) and gd (full batch; the batch size is the config's). Both are optim.py's,
    bit for bit torch.optim's steps without importing torch._dynamo."""
    if config.optimizer == "adam":
        return Adam(theta, lr=config.lr)
    return SGD(theta, lr=config.lr, momentum=config.momentum)


class Trainer:
    """The config's optimiser (Adam by default) on θ, one epoch at a time; `state()` can be taken between epochs.

    Training time is the CPU time of the training thread (time.thread_time): on an idle
    core it is the wall-clock time, and spectrum workers or other jobs running beside
    it do not inflate it, so SHIFT's speed-up compares like with like.

    Minibatch order comes from a generator seeded by (seed, epoch), so a run resumed
    at any epoch is bit-for-bit the uninterrupted one.
    """

    def __init__(self, config: RunConfig, problem: Problem | None = None, resume: TrainState | None = None):
        self.config = config
        self.problem = problem or prepare(config)
        self.epoch = resume.epoch if resume else 0
        init = resume.theta if resume else models.init_weights(config.d, config.init_scale, config.seed)
        self.theta = torch.tensor(init, dtype=DTYPE, device=self.problem.device, requires_grad=True)
        self.optimizer = make_optimizer(config, self.theta)
        if resume and resume.optimizer is not None:
            self.optimizer.load_state_dict(resume.optimizer)
        self.seconds = resume.seconds if resume else 0.0
        self._grad: torch.Tensor | None = None     # full-batch gradient at θ for self._grad_loops
        self._grad_loops = 0

    def state(self) -> TrainState:
        return TrainState(self.epoch, self.theta.detach().cpu().numpy().copy(),
                          copy.deepcopy(self.optimizer.state_dict()), self.seconds)

    def record(self) -> EpochRecord:
        """Evaluate at the current θ; the gradient is kept for a full-batch step."""
        loops = self.config.loops_at(self.epoch)
        tick = time.thread_time()
        metrics, self._grad = evaluate(self.problem, self.theta, loops)
        self._grad_loops = loops
        if self._full_batch:  # that gradient is the next step's: training time, too
            self.seconds += time.thread_time() - tick
        adam, steps = None, 0
        # Adam's moments are stored (optimizer.npz); SGD's momentum buffer is not
        if self.config.optimizer == "adam" and (state := self.optimizer.state.get(self.theta)):
            adam = torch.stack([state["exp_avg"], state["exp_avg_sq"]]).cpu().numpy()
            steps = int(state["step"].item())
        return EpochRecord(self.epoch, loops, metrics, self.theta.detach().cpu().numpy().copy(), self.seconds,
                           adam, steps)

    @property
    def _full_batch(self) -> bool:
        return self.config.batch_size in (0, self.config.n_train)

    def step_epoch(self) -> None:
        """Train one epoch: the update that produces epoch self.epoch + 1."""
        config, problem = self.config, self.problem
        epoch = self.epoch + 1
        loops = config.loops_at(epoch)
        if config.model == "shift" and config.reset_optimizer and epoch == config.shift_epoch + 1:
            self.optimizer = make_optimizer(config, self.theta)
        tick = time.thread_time()
        if self._full_batch:
            if self._grad is None or self._grad_loops != loops:
                _, self._grad = evaluate(problem, self.theta, loops)
            self.theta.grad = self._grad   # replaces the old gradient: no zero_grad (~0.1 ms a step)
            self.optimizer.step()
        else:
            train_seqs = problem.task.train
            order = np.random.default_rng([config.seed, epoch]).permutation(len(train_seqs))
            for begin in range(0, len(order), config.batch_size):
                batch = train_seqs[order[begin:begin + config.batch_size]]
                counts = torch.as_tensor(markov.count_table(batch), dtype=DTYPE, device=problem.device)
                self.optimizer.zero_grad(set_to_none=True)
                problem.loss(self.theta, loops, counts).backward()
                self.optimizer.step()
        self._grad = None
        self.seconds += time.thread_time() - tick
        self.epoch = epoch

    def run(self, until: int | None = None, include_current: bool = True) -> Iterator[EpochRecord]:
        """Yield the current epoch's record (if asked), then one per epoch up to `until`.

        Stops after a record whose loss or gradient is not finite (that record is
        yielded, so the caller sees where the run diverged). Close it to cancel.
        """
        until = self.config.epochs if until is None else min(until, self.config.epochs)
        if include_current:
            record = self.record()
            yield record
            if record.diverged:
                return
        while self.epoch < until:
            self.step_epoch()
            record = self.record()
            yield record
            if record.diverged:
                return


def train(config: RunConfig, problem: Problem | None = None) -> Iterator[EpochRecord]:
    """Records of a whole run, epoch 0 (the initialisation) to config.epochs."""
    return Trainer(config, problem).run()
