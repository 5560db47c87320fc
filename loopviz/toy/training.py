"""The epoch loop: one record per epoch, evaluated exactly on the full data.

Every training loss, gradient and Hessian is a weighted sum over the 27 possible
contexts (x0, x1, x2): a dataset is a table counts[context, next token]. A minibatch
is such a table too, so one Adam step costs the same at any batch size, and every
number here is the exact full-data value, not a running mean.

On the CPU everything is numpy: the gradient is toy/gradient.py's hand-written reverse
pass and the optimiser toy/optim.py's, so a CPU run never imports torch (a tiny model's
epoch is ~40 tensor ops, and torch's per-op and autograd overhead made it ~5× as costly as
numpy's; bench/bench_run.py). On a CUDA device the logits and gradient are torch's autograd
on the device (backend "torch"), and the rest, 60 numbers a step, stays numpy.
"""
from __future__ import annotations

import copy
import ctypes
import functools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import numpy as np

from . import gradient, hessian, markov
from .embedding import init_weights, make_embedding
from .optim import SGD, Adam
from ..config import RunConfig
from ..curvature import eigenspectrum, exact_hessian
from ..runs.log import EpochRecord

if TYPE_CHECKING:
    import torch

CONTEXT_LEN = markov.SEQ_LEN - 1
RUNS_PER_PASS = 128   # weight vectors per forward/reverse pass in Problem.losses and .gradients
BACKENDS = ("numpy", "torch")
# The record's metrics, in order: the count tables of the accuracies come from Problem.bucket_counts.
BUCKETS = ("acc_low", "acc_high", "acc_all", "val_acc_low", "val_acc_high", "val_acc_all")


def __getattr__(name: str):
    """DTYPE, torch's float64, for callers that still build torch tensors for Problem.loss:
    torch loads only when one asks for it."""
    if name == "DTYPE":
        import torch

        return torch.float64
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def cuda_possible() -> bool:
    """Whether this machine could have a CUDA device at all, without importing torch (once per
    process): an NVIDIA driver's device nodes (/dev/nvidiactl; WSL's /dev/dxg), or a CUDA driver
    library the dynamic loader can open; on Windows torch is always asked. Not
    ctypes.util.find_library: it runs ldconfig and gcc, ~30 ms a call."""
    if os.name == "nt" or os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/dxg"):
        return True
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def device_name(name: str) -> str:
    """The device a config's `device` names: auto = "cuda" when torch sees one, else "cpu".
    torch is asked only where CUDA is possible at all, so "auto" on a CPU machine never loads it."""
    if name == "cpu" or (name == "auto" and not cuda_possible()):
        return "cpu"
    if name == "cuda" and not cuda_possible():
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available here")
    import torch

    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if name == "cuda" and not available:
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available here")
    return name


def resolve_device(name: str) -> "torch.device":
    """device_name as a torch.device (the algorithmic tasks train in torch)."""
    import torch

    return torch.device(device_name(name))


class Device(str):
    """A device name ("cpu", "cuda"), usable wherever torch takes a device string, with
    torch.device's `.type`."""

    @property
    def type(self) -> str:
        return self.split(":")[0]


@dataclass
class Runs:
    """R runs' data side by side on a leading run axis (one run is R = 1): what a training
    step and an epoch's record read. Every operation treats each run's rows alone, so a run's
    numbers are bit for bit the same alone or beside others (toy/batched.py)."""

    E0: np.ndarray           # [R, 27, d, n] embeddings of every context
    train: np.ndarray        # [R, 27, V] training counts
    val: np.ndarray          # [R, 27, V] validation counts
    tables: np.ndarray       # [R, K, 27, V] the BUCKETS' count tables
    totals: np.ndarray       # [R, K] their sums
    device: str = "cpu"
    backend: str = "numpy"
    _torch: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._tokens = np.arange(self.tables.shape[-1])
        self._divisors = np.where(self.totals > 0, self.totals, 1.0)   # an empty bucket's accuracy is NaN
        self._empty = self.totals == 0

    @classmethod
    def of(cls, problems: list[Problem]) -> Runs:
        first = problems[0]
        tables = np.stack([np.stack([p.bucket_counts[name] for name in BUCKETS]) for p in problems])
        return cls(gradient.canonical(np.stack([p.E0 for p in problems])),
                   gradient.canonical(np.stack([p.train_counts for p in problems])),
                   gradient.canonical(np.stack([p.val_counts for p in problems])),
                   gradient.canonical(tables), tables.sum(axis=(2, 3)), str(first.device), first.backend)

    def loss_and_gradient(self, theta: np.ndarray, loops: int, counts: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logits [R, 27, V], loss [R], gradient [R, P]) at θ [R, P] on the training counts
        (or on `counts` [R, 27, V], a minibatch's)."""
        counts = self.train if counts is None else counts
        if self.backend == "numpy":
            return gradient.loss_and_gradient(theta, self.E0, counts, loops)
        return self._torch_loss_and_gradient(theta, loops, counts)

    def _log_probs_loss_and_gradient(self, theta: np.ndarray, loops: int):
        if self.backend == "numpy":
            return gradient.log_probs_loss_and_gradient(theta, self.E0, self.train, loops)
        out, loss, grad = self._torch_loss_and_gradient(theta, loops, self.train)
        return out, gradient.log_softmax(out), loss, grad

    def _torch_loss_and_gradient(self, theta: np.ndarray, loops: int, counts: np.ndarray):
        """The same by torch autograd on the device (models.py), back as numpy."""
        import torch

        from . import models

        if not self._torch:
            self._torch.update(E0=torch.as_tensor(self.E0, device=self.device),
                               train=torch.as_tensor(self.train, device=self.device))
        t = torch.tensor(theta, dtype=torch.float64, device=self.device, requires_grad=True)
        target = self._torch["train"] if counts is self.train else torch.as_tensor(counts, device=self.device)
        out = models.logits(t, self._torch["E0"], loops)
        loss = models.weighted_cross_entropy(out, target)
        (grad,) = torch.autograd.grad(loss.sum(), t)
        return out.detach().cpu().numpy(), loss.detach().cpu().numpy(), grad.cpu().numpy()

    def evaluate(self, theta: np.ndarray, loops: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every record metric at θ [R, P] (name → [R]), and the full-batch training gradient [R, P]."""
        R = len(theta)
        with np.errstate(all="ignore"):     # a diverging run's infinities are recorded, not warned about
            out, logp, loss, grad = self._log_probs_loss_and_gradient(theta, loops)
            val_loss = -(self.val * logp).sum((1, 2)) / self.val.sum((1, 2))      # gradient.weighted_cross_entropy
            metrics = {"loss": loss, "val_loss": val_loss, "grad_norm": np.sqrt((grad * grad).sum(-1))}
            # The model's answer per context is its argmax (ties go to the lowest token); a
            # bucket's hits are its counts of that answer (integer counts: the sums are exact).
            answer = out.argmax(-1)[:, None, :, None] == self._tokens                # [R, 1, 27, V]
            hits = (self.tables * answer).reshape(R, self.tables.shape[1], -1).sum(-1)   # [R, K]
            accuracy = hits / self._divisors
            accuracy[self._empty] = np.nan
        for k, name in enumerate(BUCKETS):
            metrics[name] = accuracy[:, k]
        return metrics, grad


@dataclass
class Problem:
    """The task as arrays: the 27 contexts' embeddings and count tables (numpy, float64)."""

    config: RunConfig
    task: markov.Task
    token: np.ndarray                 # [V, d]
    position: np.ndarray              # [n, d]
    device: Device
    E0: np.ndarray                    # [27, d, 3] embeddings of every context, C-contiguous
    # Count tables [27, V] keyed by the accuracy metric they score: acc_low ... val_acc_all.
    bucket_counts: dict[str, np.ndarray] = field(default_factory=dict)
    backend: str = "numpy"            # how gradients are taken: "numpy" (toy/gradient.py) or "torch" (autograd)

    @property
    def train_counts(self) -> np.ndarray:
        return self.bucket_counts["acc_all"]

    @property
    def val_counts(self) -> np.ndarray:
        return self.bucket_counts["val_acc_all"]

    @property
    def runs(self) -> Runs:
        """This problem as one run on the run axis (built once)."""
        if "_runs" not in self.__dict__:
            self.__dict__["_runs"] = Runs.of([self])
        return self.__dict__["_runs"]

    def loss(self, theta: "torch.Tensor", loops: int, counts=None) -> "torch.Tensor":
        """The training loss (or that of `counts` [27, V]) at a torch θ, differentiable by torch
        (models.py): for callers that take torch's derivatives themselves. The arrays are copied
        to torch at each call, not kept: inside a torch.func transform a new tensor belongs to
        that transform, and a kept one would escape it."""
        import torch

        from . import models

        def tensor(array):
            return torch.as_tensor(array, dtype=torch.float64, device=self.device)

        counts = tensor(self.train_counts) if counts is None else counts
        counts = counts if isinstance(counts, torch.Tensor) else tensor(counts)
        return models.weighted_cross_entropy(models.logits(theta, tensor(self.E0), loops), counts)

    def hessian_spectrum(self, theta: np.ndarray, loops: int) -> np.ndarray:
        """Exact Hessian of the full training loss at θ, float64; eigenvalues ascending."""
        return self.hessian_spectra([theta], [loops])[0]

    def hessians(self, thetas: np.ndarray, loops: np.ndarray) -> np.ndarray:
        """Exact Hessians [N, P, P] of the full training loss at N (θ, loops) pairs, float64:
        on the CPU by toy/hessian.py's closed form (batched as its spectra are), on a GPU by autograd."""
        thetas, loops = np.asarray(thetas, dtype=np.float64), np.asarray(loops).astype(int)
        out = np.empty((len(thetas), thetas.shape[1], thetas.shape[1]))
        if self.device.type != "cpu":
            import torch

            for i, (t, T) in enumerate(zip(thetas, loops)):
                out[i] = exact_hessian(lambda p, T=int(T): self.loss(p, T),
                                       torch.as_tensor(t, dtype=torch.float64, device=self.device)).cpu().numpy()
            return out
        for part, batch in hessian.hessian_batches(thetas, loops, self.E0, self.train_counts):
            out[part] = batch
        return out

    def losses(self, thetas: np.ndarray, loops: int) -> np.ndarray:
        """The full training loss [N] at N weight vectors with one loop count (forward passes
        over the run axis; the Landscape page's loss planes)."""
        return self._in_passes(thetas, (), lambda runs, part: gradient.weighted_cross_entropy(
            gradient.logits(part, runs.E0, loops), runs.train))

    def gradients(self, thetas: np.ndarray, loops: int) -> np.ndarray:
        """Exact gradients [N, P] of the full training loss at N weight vectors with one loop
        count (reverse passes over the run axis: runs are independent rows of the sum)."""
        return self._in_passes(thetas, np.shape(thetas)[1:], lambda runs, part: runs.loss_and_gradient(part, loops)[2])

    def _in_passes(self, thetas: np.ndarray, row: tuple, compute) -> np.ndarray:
        """compute(Runs, θ [n, P]) → [n, *row] over N weight vectors, RUNS_PER_PASS at a time: a run's 1501
        epochs (the Landscape page's Adam states) then keep ~10 MB of activations alive, not
        ~80 MB. Each weight vector is its own row, so the slicing changes no number."""
        thetas = np.asarray(thetas, dtype=np.float64)
        parts = [compute(Runs.of([self] * len(part)), part)
                 for part in (thetas[i:i + RUNS_PER_PASS] for i in range(0, len(thetas), RUNS_PER_PASS))]
        return np.concatenate(parts) if parts else np.empty((0, *row))

    def hessian_spectra(self, thetas: list[np.ndarray], loops: list[int]) -> np.ndarray:
        """Spectra [N, P] at several (θ, loops): on the CPU by toy/hessian.py's closed
        forward-over-reverse in numpy (no torch at all); on a GPU by autograd, where the
        Hessian stays on the device."""
        if self.device.type == "cpu":
            return hessian.spectra(np.stack(thetas), np.asarray(loops), self.E0, self.train_counts)
        import torch

        return np.stack([eigenspectrum(exact_hessian(lambda p, T=T: self.loss(p, T),
                                                     torch.as_tensor(t, dtype=torch.float64, device=self.device)))
                         for t, T in zip(thetas, loops)])


def prepare(config: RunConfig, backend: str | None = None) -> Problem:
    """The config's task as arrays on its device. backend: "numpy" (the default on the CPU) or
    "torch" (the default on a GPU; on the CPU, for checking one against the other)."""
    if backend not in (None, *BACKENDS):
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    task = markov.task_for(config)
    token, position = make_embedding(config.embedding, config.d, CONTEXT_LEN, config.data_seed)
    device = Device(device_name(config.device))
    contexts = markov.enumerate_sequences(CONTEXT_LEN)
    # E0[c] = [token[x_j] + position[j]]_j as columns [d, n], stored C-contiguous once (see gradient.py)
    E0 = gradient.canonical(np.swapaxes(token[contexts] + position[:CONTEXT_LEN], 1, 2))
    buckets = {}
    for prefix, seqs, bucket in (("acc_", task.train, task.train_bucket), ("val_acc_", task.val, task.val_bucket)):
        for name, mask in (("low", bucket == 0), ("high", bucket == 2), ("all", np.ones(len(seqs), bool))):
            buckets[prefix + name] = markov.count_table(seqs[mask])
    return Problem(config, task, token, position, device, E0, buckets,
                   backend or ("numpy" if device.type == "cpu" else "torch"))


def evaluate(problem: Problem, theta: np.ndarray, loops: int) -> tuple[dict[str, float], np.ndarray]:
    """All record metrics at θ [P], and the full-batch training gradient [P] (reused by the
    step): Runs.evaluate of the one run, the very code a batch of runs executes."""
    values, grad = problem.runs.evaluate(np.asarray(theta, dtype=np.float64)[None], loops)
    return {name: float(value[0]) for name, value in values.items()}, grad[0]


@dataclass
class TrainState:
    """Enough to continue training after `epoch` (SHIFT continues a Single run)."""

    epoch: int
    theta: np.ndarray
    optimizer: dict | None    # the optimiser's state_dict (torch's layout in numpy, optim.py); None for a fresh one
    seconds: float = 0.0


def adam_state(lr: float, moments: np.ndarray, steps: int) -> dict:
    """TrainState.optimizer (an Adam state_dict for θ) rebuilt from stored moments [2, P]
    (exp_avg, exp_avg_sq) and the step count: continuing from it is bit for bit the
    continuation of the run that stored them."""
    moments = np.asarray(moments, dtype=np.float64)
    state = Adam(np.zeros(moments.shape[1:]), lr).state_dict()
    state["state"] = {0: {"step": float(steps), "exp_avg": moments[0].copy(), "exp_avg_sq": moments[1].copy()}}
    return state


def make_optimizer(config: RunConfig, theta: np.ndarray) -> Adam | SGD:
    """The run's optimiser on θ (updated in place): Adam (the paper, App. E.1.1), or SGD with the
    config's momentum for sgd (minibatches) and gd (full batch; the batch size is the config's);
    optim.py's, torch.optim's formulas in numpy."""
    if config.optimizer == "adam":
        return Adam(theta, lr=config.lr)
    return SGD(theta, lr=config.lr, momentum=config.momentum)


def minibatches(config: RunConfig, task: markov.Task, epoch: int) -> Iterator[np.ndarray]:
    """The count tables [27, V] of an epoch's minibatches, in order: the order comes from a
    generator seeded by (seed, epoch), so a run resumed at any epoch is the uninterrupted one."""
    order = np.random.default_rng([config.seed, epoch]).permutation(len(task.train))
    for begin in range(0, len(order), config.batch_size):
        yield markov.count_table(task.train[order[begin:begin + config.batch_size]])


def full_batch(config: RunConfig) -> bool:
    """Whether each epoch is one step on the full training data's gradient."""
    return config.batch_size in (0, config.n_train)


def train_epoch(configs: list[RunConfig], tasks: list[markov.Task], runs: Runs, theta: np.ndarray,
                optimizer: Adam | SGD, epoch: int, grad: np.ndarray | None) -> Adam | SGD:
    """The update that produces `epoch`, of one run (Trainer) or of R runs side by side (toy/batched.py).

    θ is one run's [P] or R runs' [R, P], updated in place by `optimizer`; `runs` holds their
    data; configs[r] and tasks[r] are run r's config (its seed orders the minibatches) and
    training sequences. The schedule (loop count, SHIFT, batch size, optimiser) is configs[0]'s,
    the same for all. At SHIFT's switch with reset_optimizer the optimiser is a fresh one: the
    optimiser to keep is returned.
    A full-batch epoch is one step on `grad`, the full-batch gradient at θ for the previous
    epoch's loop count (the record has just computed it), recomputed when it is None or the
    loop count changes; otherwise one step per minibatch, in each run's (seed, epoch) order.
    """
    first = configs[0]
    loops = first.loops_at(epoch)
    if first.model == "shift" and first.reset_optimizer and epoch == first.shift_epoch + 1:
        optimizer = make_optimizer(first, theta)
    rows = theta if theta.ndim == 2 else theta[None]    # the run axis: a view, so it sees every step
    with np.errstate(all="ignore"):     # a diverging run's infinities are recorded, not warned about
        if full_batch(first):
            if grad is None or loops != first.loops_at(epoch - 1):
                grad = runs.loss_and_gradient(rows, loops)[2]
            optimizer.step(grad.reshape(theta.shape))
        else:
            for counts in zip(*(minibatches(c, task, epoch) for c, task in zip(configs, tasks))):
                optimizer.step(runs.loss_and_gradient(rows, loops, np.array(counts))[2].reshape(theta.shape))
    return optimizer


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
        init = resume.theta if resume else init_weights(config.d, config.init_scale, config.seed)
        self.theta = np.array(init, dtype=np.float64)      # [P], updated in place by the optimiser
        self.optimizer = make_optimizer(config, self.theta)
        if resume and resume.optimizer is not None:
            self.optimizer.load_state_dict(resume.optimizer)
        self.seconds = resume.seconds if resume else 0.0
        self._grad: np.ndarray | None = None     # the record's full-batch gradient at θ, until the next step

    def state(self) -> TrainState:
        return TrainState(self.epoch, self.theta.copy(), copy.deepcopy(self.optimizer.state_dict()), self.seconds)

    def record(self) -> EpochRecord:
        """Evaluate at the current θ; the gradient is kept for a full-batch step."""
        loops = self.config.loops_at(self.epoch)
        tick = time.thread_time()
        metrics, self._grad = evaluate(self.problem, self.theta, loops)
        if full_batch(self.config):  # that gradient is the next step's: training time, too
            self.seconds += time.thread_time() - tick
        adam, steps = None, 0
        # Adam's moments are stored (optimizer.npz); SGD's momentum buffer is not
        if self.config.optimizer == "adam" and (state := self.optimizer.state):
            adam = np.stack([state["exp_avg"], state["exp_avg_sq"]])
            steps = int(state["step"])
        return EpochRecord(self.epoch, loops, metrics, self.theta.copy(), self.seconds, adam, steps)

    def step_epoch(self) -> None:
        """Train one epoch: train_epoch on this one run, the update that produces epoch self.epoch + 1."""
        tick = time.thread_time()
        self.optimizer = train_epoch([self.config], [self.problem.task], self.problem.runs, self.theta,
                                     self.optimizer, self.epoch + 1, self._grad)
        self.seconds += time.thread_time() - tick
        self._grad = None
        self.epoch += 1

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
