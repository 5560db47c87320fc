"""One run, end to end: training records now, exact spectra right behind them.

`execute` trains in the calling thread and hands each epoch's weights to a pool of
worker processes that compute Hessian spectra, so accuracy curves never wait for
curvature, both cores work, and (in the app) the server's GIL stays free. Everything
lands in a RunLog that readers may snapshot at any time.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import RunConfig
from .training import METRICS, EpochRecord, Problem, Trainer, TrainState, prepare

STATUSES = ("running", "complete", "diverged", "cancelled", "failed")


@dataclass
class RunLog:
    """What a run has produced so far. One writer appends; readers call snapshot()."""

    config: RunConfig
    status: str = "running"
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

    def finish(self, status: str, message: str = "") -> None:
        with self.lock:
            self.status, self.message, self.finished = status, message, time.time()

    def snapshot(self) -> "RunLog":
        """A consistent copy for drawing (the arrays themselves are never mutated)."""
        with self.lock:
            return RunLog(self.config, self.status, self.message, self.diverged_epoch, list(self.records),
                          dict(self.spectra), self.started, self.finished)

    @property
    def done(self) -> bool:
        return self.status != "running"


def spectrum_epochs(config: RunConfig, last_epoch: int) -> list[int]:
    """Epochs that get a spectrum: every hessian_every-th, and always the last one."""
    if config.hessian_every <= 0:
        return []
    epochs = list(range(0, last_epoch + 1, config.hessian_every))
    if epochs[-1] != last_epoch:
        epochs.append(last_epoch)
    return epochs


# ------------------------------------------------------------ spectrum workers
_worker_problem: Problem | None = None


def _worker_init(config_json: str) -> None:
    global _worker_problem
    torch.set_num_threads(1)  # one core per worker; more threads only contend (DESIGN.md)
    _worker_problem = prepare(RunConfig.from_json(config_json).replace(device="cpu"))


def _worker_spectra(jobs: list[tuple[int, np.ndarray, int]]) -> list[tuple[int, np.ndarray]]:
    assert _worker_problem is not None
    return [(epoch, _worker_problem.hessian_spectrum(theta, loops)) for epoch, theta, loops in jobs]


class SpectrumPool:
    """Computes spectra for (epoch, θ, loops) jobs: in worker processes, or inline."""

    def __init__(self, config: RunConfig, problem: Problem, workers: int):
        self.problem = problem
        self.executor = None
        if workers > 0 and problem.device.type == "cpu":
            # spawn, not fork: forking a process that runs threads (Streamlit, torch) can deadlock.
            self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_worker_init, initargs=(config.to_json(),))
        self.pending: list[Future | list[tuple[int, np.ndarray]]] = []

    def submit(self, jobs: list[tuple[int, np.ndarray, int]]) -> None:
        if not jobs:
            return
        if self.executor is None:
            self.pending.append([(e, self.problem.hessian_spectrum(t, l)) for e, t, l in jobs])
        else:
            self.pending.append(self.executor.submit(_worker_spectra, jobs))

    def harvest(self, wait: bool, cancel: threading.Event | None = None):
        """Yield finished results in submission order; with wait, block for all of them."""
        while self.pending:
            head = self.pending[0]
            if isinstance(head, Future):
                while wait and not head.done():
                    if cancel is not None and cancel.is_set():
                        return
                    time.sleep(0.02)
                if not head.done():
                    return
                result = head.result()
            else:
                result = head
            self.pending.pop(0)
            yield from result

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)


def execute(config: RunConfig, log: RunLog | None = None, cancel: threading.Event | None = None,
            workers: int = 1, chunk: int = 10, resume: TrainState | None = None,
            prior: RunLog | None = None, problem: Problem | None = None) -> RunLog:
    """Train `config` and compute its spectra into `log`; never raises for a bad run.

    workers: spectrum worker processes (0 = compute inline). resume/prior: continue
    from a stored state and copy the prior run's records and spectra up to it (SHIFT
    reuses its Stage I this way). A non-finite loss ends the run as 'diverged' with
    every record so far kept; a set `cancel` ends it as 'cancelled', likewise.
    """
    log = log or RunLog(config)
    cancel = cancel or threading.Event()
    pool = None
    try:
        problem = problem or prepare(config)
        if prior is not None and resume is not None:
            for record in prior.records[:resume.epoch + 1]:
                log.add_record(record)
            for epoch, eig in prior.spectra.items():
                if epoch <= resume.epoch:
                    log.add_spectrum(epoch, eig)
        wanted = set(spectrum_epochs(config, config.epochs))
        pool = SpectrumPool(config, problem, workers)
        batch: list[tuple[int, np.ndarray, int]] = []
        trainer = Trainer(config, problem, resume)
        for record in trainer.run(include_current=resume is None):
            log.add_record(record)
            if record.diverged:
                log.diverged_epoch = record.epoch
                break
            if record.epoch in wanted and record.epoch not in log.spectra:
                batch.append((record.epoch, record.theta, record.loops))
            if len(batch) >= chunk:
                pool.submit(batch)
                batch = []
            for epoch, eig in pool.harvest(wait=False):
                log.add_spectrum(epoch, eig)
            if cancel.is_set():
                break
        last = log.records[-1].epoch
        if last not in log.spectra and not log.records[-1].diverged and config.hessian_every > 0:
            batch.append((last, log.records[-1].theta, log.records[-1].loops))
        pool.submit(batch)
        for epoch, eig in pool.harvest(wait=True, cancel=cancel):
            log.add_spectrum(epoch, eig)
        if cancel.is_set():
            log.finish("cancelled", f"cancelled at epoch {last}; {len(log.records)} records and "
                                    f"{len(log.spectra)} spectra kept")
        elif log.diverged_epoch is not None:
            log.finish("diverged", f"diverged at epoch {log.diverged_epoch}: the loss or gradient is not finite")
        else:
            log.finish("complete")
    except Exception as exc:  # a job must report, never crash its host (CLI or server)
        log.finish("failed", f"{type(exc).__name__}: {exc}")
    finally:
        if pool is not None:
            pool.close()
    return log


def metrics_table(log: RunLog) -> dict[str, np.ndarray]:
    """Per-record columns: epoch, loops, seconds and METRICS."""
    records = log.records
    table = {"epoch": np.array([r.epoch for r in records], dtype=np.int64),
             "loops": np.array([r.loops for r in records], dtype=np.int64),
             "seconds": np.array([r.seconds for r in records])}
    for name in METRICS:
        table[name] = np.array([r.metrics[name] for r in records])
    return table
