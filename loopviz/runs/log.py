"""What a run produces, epoch by epoch, and the bookkeeping around it (no torch here).

EpochRecord is one epoch's numbers and weights; RunLog collects a run's records and
spectra as they arrive, for any number of readers. Pages that only show stored runs
import this, not the training code, so they start without loading torch.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..config import RunConfig
from .status import Status

METRICS = ("loss", "val_loss", "grad_norm", "acc_low", "acc_high", "acc_all",
           "val_acc_low", "val_acc_high", "val_acc_all")


@dataclass
class EpochRecord:
    """The state after one epoch (epoch 0 is the initialisation)."""

    epoch: int
    loops: int            # loops of the model being trained at this epoch
    metrics: dict[str, float]
    theta: np.ndarray     # weights after the epoch, flat [P]
    seconds: float        # training time so far (CPU time of the training thread), evaluation excluded
    adam: np.ndarray | None = None  # [2, P] Adam's exp_avg, exp_avg_sq after the epoch (None before any step)
    adam_steps: int = 0   # Adam steps taken so far (with adam, what SHIFT's Stage II resumes from)

    @property
    def diverged(self) -> bool:
        return not all(np.isfinite(self.metrics[k]) for k in ("loss", "grad_norm"))


@dataclass
class RunLog:
    """What a run has produced so far. One writer appends; readers call snapshot()."""

    config: RunConfig
    status: Status = Status.RUNNING
    message: str = ""
    diverged_epoch: int | None = None
    records: list[EpochRecord] = field(default_factory=list)
    spectra: dict[int, np.ndarray] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_record(self, record: EpochRecord) -> None:
        with self.lock:
            self.records.append(record)

    def add_spectrum(self, epoch: int, eigenvalues: np.ndarray) -> None:
        with self.lock:
            self.spectra[epoch] = eigenvalues

    def finish(self, status: Status, message: str = "") -> None:
        with self.lock:
            self.status, self.message, self.finished = status, message, time.time()

    def snapshot(self) -> "RunLog":
        """A consistent copy for drawing (the arrays themselves are never mutated)."""
        with self.lock:
            return RunLog(self.config, self.status, self.message, self.diverged_epoch, list(self.records),
                          dict(self.spectra), self.started, self.finished)

    @property
    def done(self) -> bool:
        return self.status != Status.RUNNING

    def work(self) -> tuple[int, int]:
        """(units done, units in all) for progress bars: one per epoch, one per spectrum."""
        epoch = self.records[-1].epoch if self.records else 0
        total = self.config.epochs + len(spectrum_epochs(self.config, self.config.epochs))
        return epoch + len(self.spectra), total

    def eta(self, elapsed: float) -> float:
        """Seconds left at the rate so far, given the seconds spent (nan before any work)."""
        done, total = self.work()
        return remaining_seconds(done / max(total, 1), elapsed)


def remaining_seconds(fraction: float, elapsed: float) -> float:
    """Linear ETA: the time to finish at the pace so far, elapsed · (1 − f) / f (nan at f = 0)."""
    return elapsed / fraction - elapsed if fraction > 0 else float("nan")


def spectrum_epochs(config: RunConfig, last_epoch: int) -> list[int]:
    """Epochs that get a spectrum: every hessian_every-th, and always the last one."""
    if config.hessian_every <= 0:
        return []
    epochs = list(range(0, last_epoch + 1, config.hessian_every))
    if epochs[-1] != last_epoch:
        epochs.append(last_epoch)
    return epochs


def metrics_table(log: RunLog) -> dict[str, np.ndarray]:
    """Per-record columns: epoch, loops, seconds and METRICS."""
    records = log.records
    table = {"epoch": np.array([r.epoch for r in records], dtype=np.int64),
             "loops": np.array([r.loops for r in records], dtype=np.int64),
             "seconds": np.array([r.seconds for r in records])}
    for name in METRICS:
        table[name] = np.array([r.metrics[name] for r in records])
    return table

