"""Training on an algorithmic task: a generator of evaluation records (App. E.2).

Every step draws one length n uniformly from the training range and a batch at that
length from a stream seeded by (data_seed, step), so all paradigms see the same
batches. Single-Attn computes the loss after one pass (T = 1), Looped-Attn after
exactly T = n loops (loss at the last loop only). AdamW throughout.

Every `eval_every` steps a record holds: the training loss and its gradient norm on a
fixed training-distribution sample (T = 1 or n, as trained), training and validation
exact-match accuracy (T as trained), and per test length the accuracy with the
inference rule and the loops it chose, and the accuracy at T = n (the
training rule), scored from the same pass. `seconds` is training time only: CPU time of
the training thread on a CPU, synchronised wall-clock on a GPU; evaluation excluded.

SHIFT: the Single trainer applies SCP (loopviz.shift.scp, over evaluation records) as
it goes, and at E_shift keeps a Handoff (weights, AdamW state, seconds); Stage II is a
Looped trainer started from it. So SHIFT's Stage I is the Single run's own steps. A Single
run's directory keeps the Handoff (handoff.npz, `handoff_arrays` / `handoff_from_arrays`), so a
SHIFT run started later reads Stage I instead of training it again.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..shift import scp
from ..toy.training import resolve_device
from . import curvature, models, tasks
from .config import SHIFT_RULES, AlgoConfig

TRAIN_STREAM, EVAL_TRAIN_STREAM, VAL_STREAM, TEST_STREAM, CURV_STREAM = range(5)
SCALARS = ("loss", "val_loss", "grad_norm", "train_acc", "val_acc")


@dataclass
class Batch:
    n: int
    x: torch.Tensor        # [B, seq_len]
    y: torch.Tensor        # [B, output_len]

    @property
    def output_len(self) -> int:
        return self.y.shape[1]


@dataclass
class Problem:
    """The task and its fixed evaluation sets on one device."""

    config: AlgoConfig
    task: tasks.Task
    device: torch.device
    train_eval: list[Batch]          # one batch per training length
    val: list[Batch]
    test: list[Batch]                # one batch per test length
    curvature_batches: list[Batch]

    @property
    def max_len(self) -> int:
        return max(self.task.seq_len(n) for n in (self.config.max_test_len, self.config.train_max_len))


def make_batch(task: tasks.Task, rng: np.random.Generator, n: int, count: int, device: torch.device) -> Batch:
    inputs, targets = task.sample(rng, n, count)
    x = tasks.sequence(inputs, targets.shape[1])
    return Batch(n, torch.as_tensor(x, device=device), torch.as_tensor(targets, device=device))


def prepare(config: AlgoConfig) -> Problem:
    task = tasks.make_task(config.task, config.alphabet)
    device = resolve_device(config.device)
    lengths = range(config.train_min_len, config.train_max_len + 1)
    per_len = max(1, config.eval_samples // len(lengths))

    def sets(stream: int, ns, count: int) -> list[Batch]:
        return [make_batch(task, tasks.batch_rng(config.data_seed, stream, n), n, count, device) for n in ns]

    return Problem(config, task, device, sets(EVAL_TRAIN_STREAM, lengths, per_len), sets(VAL_STREAM, lengths, per_len),
                   sets(TEST_STREAM, config.test_lengths, config.eval_samples),
                   sets(CURV_STREAM, lengths, config.hessian_samples))


def batch_loss(forward, batch: Batch, loops: int) -> torch.Tensor:
    logits = forward(batch.x, loops, batch.output_len)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1))


def exact_match(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of samples whose every output token is right (Fan et al.'s accuracy)."""
    return float((logits.argmax(-1) == y).all(-1).float().mean())


@dataclass
class Handoff:
    """Where SHIFT switches: the Single run's state after `step`."""

    step: int
    model_state: dict
    optimizer_state: dict
    seconds: float
    rule: str                        # scp | fixed | fallback
    plateau_step: int | None = None


HYPER = ("lr", "beta1", "beta2", "eps", "weight_decay")


def shaped_model(config: AlgoConfig, max_len: int) -> models.LoopNet:
    """A model of `config`'s shapes whose weights are never used (parameter count, shapes to
    check). Built under _INIT_LOCK: its init draws from torch's global RNG, and must not draw
    between another job's seeding and building (that job's weights would then depend on timing)."""
    with _INIT_LOCK:
        return models.build(config, tasks.VOCAB, max_len)


def _hyper(group: dict) -> np.ndarray:
    """An AdamW param group's HYPER values, in that order, as handoff.npz stores them."""
    return np.array([group["lr"], *group["betas"], group["eps"], group["weight_decay"]], dtype=np.float64)


def handoff_arrays(handoff: Handoff) -> dict[str, np.ndarray]:
    """handoff.npz's contents: plain numeric arrays, no pickle. step, rule (index into config.SHIFT_RULES),
    plateau_step (-1: none), seconds; model/<name> per parameter; adam/<name>/{exp_avg,
    exp_avg_sq,step} per parameter AdamW has stepped; hyper = HYPER of the one param group."""
    names = list(handoff.model_state)
    group = handoff.optimizer_state["param_groups"][0]
    arrays = {"step": np.array(handoff.step, dtype=np.int64), "rule": np.array(SHIFT_RULES.index(handoff.rule)),
              "plateau_step": np.array(-1 if handoff.plateau_step is None else handoff.plateau_step),
              "seconds": np.array(handoff.seconds, dtype=np.float64),
              "hyper": _hyper(group)}
    for name, tensor in handoff.model_state.items():
        arrays[f"model/{name}"] = tensor.detach().cpu().numpy()
    for index, state in handoff.optimizer_state["state"].items():
        name = names[group["params"].index(index)]
        arrays[f"adam/{name}/exp_avg"] = state["exp_avg"].detach().cpu().numpy()
        arrays[f"adam/{name}/exp_avg_sq"] = state["exp_avg_sq"].detach().cpu().numpy()
        arrays[f"adam/{name}/step"] = np.array(float(state["step"]), dtype=np.float64)
    return arrays


def handoff_from_arrays(config: AlgoConfig, arrays: dict[str, np.ndarray], max_len: int) -> Handoff:
    """The Handoff stored as `handoff_arrays` wrote it, checked against the model and AdamW that
    `config` builds (names, shapes, hyperparameters); RunFormatError names what does not fit.
    Arrays are otherwise checked by rundir.read_handoff (keys, finiteness, records)."""
    from ..runs.format import RunFormatError

    model = shaped_model(config, max_len)
    names = [name for name, _ in model.named_parameters()]
    if list(model.state_dict()) != names:
        raise RunFormatError("handoff.npz: the model has buffers or shared parameters; cannot rebuild its state")
    stored = sorted(k[len("model/"):] for k in arrays if k.startswith("model/"))
    if stored != sorted(names):
        raise RunFormatError(f"handoff.npz: its parameters ({len(stored)}) are not the config's model's ({len(names)})")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    template = optimizer.state_dict()
    group = template["param_groups"][0]
    expected = _hyper(group)
    if arrays["hyper"].shape != expected.shape or not np.array_equal(arrays["hyper"], expected):
        raise RunFormatError(f"handoff.npz: AdamW's {', '.join(HYPER)} {arrays['hyper'].tolist()} are not the "
                             f"config's {expected.tolist()}")
    model_state, state = {}, {}
    for index, (name, param) in enumerate(model.named_parameters()):
        shape = tuple(param.shape)
        weights = arrays[f"model/{name}"]
        if weights.shape != shape or weights.dtype != np.float32:
            raise RunFormatError(f"handoff.npz: model/{name} is {weights.dtype} {weights.shape}, "
                                 f"the config's model has float32 {shape}")
        model_state[name] = torch.from_numpy(weights.copy())
        if f"adam/{name}/step" not in arrays:
            continue   # AdamW never stepped this parameter (no gradient reached it)
        moments = [arrays[f"adam/{name}/{k}"] for k in ("exp_avg", "exp_avg_sq")]
        if any(m.shape != shape or m.dtype != np.float32 for m in moments):
            raise RunFormatError(f"handoff.npz: adam/{name}'s moments do not have the parameter's shape {shape}")
        # torch keeps AdamW's step as a float32 scalar tensor (not capturable): the same here.
        state[index] = {"step": torch.tensor(float(arrays[f"adam/{name}/step"]), dtype=torch.float32),
                        "exp_avg": torch.from_numpy(moments[0].copy()),
                        "exp_avg_sq": torch.from_numpy(moments[1].copy())}
    plateau = int(arrays["plateau_step"])
    return Handoff(int(arrays["step"]), model_state, {"state": state, "param_groups": template["param_groups"]},
                   float(arrays["seconds"]), SHIFT_RULES[int(arrays["rule"])], None if plateau < 0 else plateau)


def records_from_run(run, upto: int) -> list[EvalRecord]:
    """EvalRecords of a stored run (rundir.AlgoRun) up to step `upto`, with its weights and
    Hessian eigenvalues where stored: SHIFT's Stage I read back, timings included."""
    config, table = run.config, run.records
    weight_at = {int(s): i for i, s in enumerate(run.weight_steps)}
    top_at = {int(s): i for i, s in enumerate(run.curvature_steps)}
    records = []
    for row in table[table["step"] <= upto].itertuples(index=False):
        row = row._asdict()
        step = int(row["step"])
        loops = {n: row[f"loops_{n}"] for n in config.test_lengths}
        records.append(EvalRecord(
            step, row["phase"], {k: float(row[k]) for k in SCALARS},
            {n: float(row[f"acc_{n}"]) for n in config.test_lengths if not math.isnan(row[f"acc_{n}"])},
            {n: int(v) for n, v in loops.items() if not math.isnan(v)}, float(row["seconds"]),
            {n: float(row[f"oracle_acc_{n}"]) for n in config.test_lengths if not math.isnan(row[f"oracle_acc_{n}"])},
            {k: v[weight_at[step]] for k, v in run.weights.items()} if step in weight_at else None,
            run.curvature_top[top_at[step]] if step in top_at else None))
    return records


@dataclass
class EvalRecord:
    step: int
    phase: str                       # the paradigm trained at this step: single | looped
    metrics: dict[str, float]
    acc_by_len: dict[int, float]
    loops_by_len: dict[int, int]
    seconds: float
    oracle_by_len: dict[int, float] = field(default_factory=dict)  # accuracy at T = n (Single: T = 1)
    weights: dict[str, np.ndarray] | None = None   # at checkpoints
    hessian_top: np.ndarray | None = None           # at checkpoints, when asked

    @property
    def diverged(self) -> bool:
        return not all(math.isfinite(self.metrics[k]) for k in ("loss", "grad_norm"))


def checkpoint_steps(config: AlgoConfig) -> set[int]:
    """Evenly spaced evaluation steps for weight snapshots, and the last step."""
    evals = eval_steps(config)
    picks = {evals[int(round(i * (len(evals) - 1) / config.checkpoints))] for i in range(config.checkpoints + 1)} \
        if config.checkpoints else set()
    return picks | {evals[-1]}


def eval_steps(config: AlgoConfig) -> list[int]:
    steps = list(range(0, config.steps + 1, config.eval_every))
    if steps[-1] != config.steps:
        steps.append(config.steps)
    if config.shift_step and config.shift_step not in steps:
        steps = sorted(steps + [config.shift_step])
    return steps


# Seeding and building a model is one step under this lock: two jobs of the app's registry
# (Single and Looped side by side) would otherwise interleave their draws from torch's
# global RNG and start from weights that depend on thread timing.
_INIT_LOCK = threading.Lock()


class Trainer:
    """One paradigm's training; `looped` selects T = n (else T = 1)."""

    def __init__(self, config: AlgoConfig, looped: bool, problem: Problem | None = None,
                 handoff: Handoff | None = None, cancel: threading.Event | None = None):
        self.config, self.looped = config, looped
        self.cancel = cancel   # when set, run() stops before the next step (records so far stand)
        self.problem = problem or prepare(config)
        with _INIT_LOCK:  # torch's default init draws from the one global RNG, which concurrent jobs share
            torch.manual_seed(config.seed)
            model = models.build(config, tasks.VOCAB, self.problem.max_len)
        self.model = model.to(self.problem.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.step, self.seconds = 0, 0.0
        if handoff is not None:
            self.model.load_state_dict(handoff.model_state)
            self.optimizer.load_state_dict(handoff.optimizer_state)
            self.step, self.seconds = handoff.step, handoff.seconds
        self.handoff: Handoff | None = None      # set by a Single trainer when SCP (or the fixed step) fires
        self.fallback: Handoff | None = None
        self.history: list[tuple[float, float]] = []  # (val_loss, grad_norm) per evaluation, for SCP

    def loops(self, n: int) -> int:
        return self.problem.task.loops(n) if self.looped else 1

    # ------------------------------------------------------------------ steps
    def _clock(self) -> float:
        if self.problem.device.type == "cuda":
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.thread_time()

    def train_step(self) -> float:
        config, task = self.config, self.problem.task
        rng = tasks.batch_rng(config.data_seed, TRAIN_STREAM, self.step)
        n = int(rng.integers(config.train_min_len, config.train_max_len + 1))
        batch = make_batch(task, rng, n, config.batch_size, self.problem.device)
        tick = self._clock()
        self.model.train()
        loss = batch_loss(self.model, batch, self.loops(n))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.step += 1
        self.seconds += self._clock() - tick
        return float(loss.detach())

    # ------------------------------------------------------------- evaluation
    def train_loss(self, forward, batches: list[Batch]) -> torch.Tensor:
        """Mean over lengths of the per-length loss, each at its training loop count."""
        return torch.stack([batch_loss(forward, b, self.loops(b.n)) for b in batches]).mean()

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise curvature.Cancelled

    def evaluate(self) -> EvalRecord:
        """One record's measurements; raises curvature.Cancelled when `cancel` is set before it or
        between test lengths (the Looped-Attn test lengths take ~0.5 s of a cpu preset's ~0.6 s)."""
        p, config = self.problem, self.config
        self._check_cancel()
        self.model.eval()
        loss = self.train_loss(self.model, p.train_eval)
        grads = torch.autograd.grad(loss, [q for q in self.model.parameters()], allow_unused=True)
        grad_norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))
        with torch.no_grad():
            train_acc = np.mean([exact_match(self.model(b.x, self.loops(b.n), b.output_len), b.y)
                                 for b in p.train_eval])
            val_loss = float(self.train_loss(self.model, p.val))
            val_acc = np.mean([exact_match(self.model(b.x, self.loops(b.n), b.output_len), b.y) for b in p.val])
            acc, chosen, oracle = {}, {}, {}
            for b in p.test:
                self._check_cancel()
                if not self.looped:
                    loops, logits = 1, self.model(b.x, 1, b.output_len)
                    oracle[b.n] = exact_match(logits, b.y)
                else:
                    n_loops = p.task.loops(b.n)
                    loops, logits, every = models.choose_loops(
                        self.model, b.x, b.output_len, max(n_loops, math.ceil(config.max_loops_factor * n_loops)))
                    oracle[b.n] = exact_match(every[n_loops - 1], b.y)
                    if config.stopping == "oracle":
                        loops, logits = n_loops, every[n_loops - 1]
                acc[b.n], chosen[b.n] = exact_match(logits, b.y), loops
        metrics = {"loss": float(loss.detach()), "val_loss": val_loss, "grad_norm": grad_norm,
                   "train_acc": float(train_acc), "val_acc": float(val_acc)}
        return EvalRecord(self.step, "looped" if self.looped else "single", metrics, acc, chosen, self.seconds, oracle)

    def weights(self) -> dict[str, np.ndarray]:
        return {n: q.detach().cpu().numpy().astype(np.float32) for n, q in self.model.state_dict().items()}

    def hessian_top(self) -> np.ndarray:
        """Top eigenvalues of the Hessian of the training loss (as trained) on the curvature batch, float64;
        raises curvature.Cancelled when `cancel` is set meanwhile."""
        model64 = copy.deepcopy(self.model).double().eval()
        theta, f = curvature.flat_loss(model64, lambda fwd: self.train_loss(fwd, self.problem.curvature_batches))
        return curvature.top_eigenvalues(f, theta, self.config.hessian_top, cancel=self.cancel)

    def _snapshot(self, rule: str, plateau: int | None = None) -> Handoff:
        return Handoff(self.step, copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()),
                       self.seconds, rule, plateau)

    def _maybe_hand_off(self, record: EvalRecord, steps: list[int]) -> None:
        """A Single trainer decides SHIFT's switch as it goes (SCP only looks back). The
        half-way snapshot is a last resort, used only if SCP never fires (rule "fallback",
        flagged on the page as not the paper's rule)."""
        config = self.config
        if self.looped or self.handoff is not None:
            return
        if config.shift_step:
            if record.step == config.shift_step:
                self.handoff = self._snapshot("fixed")
            return
        self.history.append((record.metrics["val_loss"], record.metrics["grad_norm"]))
        val, grad = np.array(self.history).T
        plateau, shift = scp(val, grad, delta1=config.scp_delta1, plateau_epochs=config.scp_window,
                             patience=config.scp_patience, plateau=config.scp_plateau)
        if shift is not None and shift <= len(self.history) - 1 and record.step < config.steps:
            self.handoff = self._snapshot("scp", steps[plateau])
        elif self.fallback is None and record.step >= config.steps // 2:
            self.fallback = self._snapshot("fallback")
        if self.fallback is not None and plateau is not None:  # say what SCP saw, even when it never fired
            self.fallback.plateau_step = steps[plateau]

    def run(self, until: int | None = None, stop_at_handoff: bool = False) -> Iterator[EvalRecord]:
        """Evaluate, then train to the next evaluation step, ...; the first record is at
        the current step (0, or the handoff step for Stage II, which is then skipped)."""
        config = self.config
        steps = eval_steps(config)
        marks = checkpoint_steps(config)
        last = config.steps if until is None else until
        todo = [s for s in steps if s >= self.step and s <= last]
        if todo and todo[0] == self.step and self.step > 0:
            todo = todo[1:]        # Stage II: the handoff step's record belongs to Stage I
        for target in todo:
            diverged = False
            while self.step < target:
                if self.cancel is not None and self.cancel.is_set():
                    return
                if not math.isfinite(self.train_step()):
                    diverged = True
                    break
            had = self.handoff
            try:
                record = self._record(diverged, steps, marks)
            except curvature.Cancelled:
                self.handoff = had   # an incomplete record is not kept, nor a switch decided at it
                return
            yield record
            if record.diverged or (stop_at_handoff and self.handoff is not None):
                return

    def _record(self, diverged: bool, steps: list[int], marks: set[int]) -> EvalRecord:
        """The record at this step: the evaluation, SHIFT's switch decided on it, and the weights
        and Hessian eigenvalues at a checkpoint or the switch. Raises curvature.Cancelled when
        `cancel` is set meanwhile (checked between test lengths and Hessian-vector products)."""
        if diverged:
            return EvalRecord(self.step, "looped" if self.looped else "single",
                              {k: float("nan") for k in SCALARS}, {}, {}, self.seconds)
        record = self.evaluate()
        if record.diverged:
            return record
        had = self.handoff
        self._maybe_hand_off(record, steps)
        if record.step in marks or (self.handoff is not None and had is None):
            record.weights = self.weights()
            if self.config.hessian_top:
                record.hessian_top = self.hessian_top()
        return record


def train(config: AlgoConfig, problem: Problem | None = None) -> Iterator[EvalRecord]:
    """Single or Looped: all records of one run."""
    if config.model == "shift":
        yield from train_shift(config, problem=problem)
        return
    yield from Trainer(config, config.model == "looped", problem).run()


def train_shift(config: AlgoConfig, single_records: list[EvalRecord] | None = None, handoff: Handoff | None = None,
                problem: Problem | None = None, info: dict | None = None,
                cancel: threading.Event | None = None) -> Iterator[EvalRecord]:
    """SHIFT: Stage I is the Single run up to the switch (`single_records` and `handoff`
    when that run is at hand, else trained here identically), Stage II Looped from there.
    `info` (if given) receives the switch step, its rule and SCP's plateau step; a set `cancel`
    stops either stage before its next step."""
    problem = problem or prepare(config)
    if handoff is None:
        single = Trainer(config, looped=False, problem=problem, cancel=cancel)
        single_records = []
        for record in single.run(stop_at_handoff=True):
            single_records.append(record)
            if record.diverged:
                yield from single_records
                return
        handoff = single.handoff or single.fallback
        if cancel is not None and cancel.is_set():  # cancelled during Stage I: its records, no Stage II
            yield from single_records
            return
    if handoff is None:  # a run too short for SCP or the fallback: SHIFT never switches
        yield from single_records
        return
    if info is not None:
        info.update(shift_step=handoff.step, shift_rule=handoff.rule, plateau_step=handoff.plateau_step)
    yield from (r for r in single_records if r.step <= handoff.step)
    yield from Trainer(config, looped=True, problem=problem, handoff=handoff, cancel=cancel).run()
