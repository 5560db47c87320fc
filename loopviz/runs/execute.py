"""One run, end to end: training records now, exact spectra right behind them.

`execute` trains in the calling thread and hands each epoch's weights to a pool of
worker processes that compute Hessian spectra, so accuracy curves never wait for
curvature, both cores work, and (in the app) the server's GIL stays free. Everything
lands in a RunLog that readers may snapshot at any time.
"""
from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from typing import Iterable

import numpy as np

from ..config import RunConfig
from .spectrum_worker import SpectrumWorker, WorkerPool
from .log import METRICS, EpochRecord, RunLog, metrics_table, spectrum_epochs  # noqa: F401 (re-exported)
from ..toy.embedding import param_count
from ..toy.training import Problem, Trainer, TrainState, adam_state, prepare

# Up to this many parameters spectra are computed in the training thread: a chunk of ten
# costs a few milliseconds there (d = 4: ~0.5 ms per looped spectrum), less than a worker's
# start-up and pipe round trips, and a live run shows its first spectrum at once...
INLINE_MAX_P = 150
# ...unless the run wants this many spectra: then they add up to more than a worker's
# start-up (~0.4 s on the other core), and workers keep them off the training thread
# (the default run's 1501 Looped spectra at d = 4: ~0.7 s; a SHIFT slider move's 1350).
WORKER_MIN_SPECTRA = 500
# Chunks a worker holds at once: one computing and one in its pipe, so that it never waits
# for a round trip. The others wait in the pool's backlog for whichever worker frees up
# first, so a worker that joins late (borrowed once training has ended) shares the rest.
IN_FLIGHT = 2


class SpectrumPool:
    """Computes spectra for chunks of (epoch, θ, loops): in worker subprocesses, or inline.

    Inline when there are no workers, on a GPU, or at P ≤ INLINE_MAX_P for fewer than
    WORKER_MIN_SPECTRA spectra. Otherwise `workers` worker processes of its own (the CLI;
    one at P ≤ INLINE_MAX_P, where a spectrum costs less than a training epoch), or, given
    a WorkerPool (the app server), `per_job` of its warm workers. At P ≤ INLINE_MAX_P the
    backlog left when training ends (`training_ended`) is shared with the core training
    frees: the server's idle warm workers join (its own thread stays light: the GIL serves
    the pages), the CLI's training thread computes chunks itself (a cold worker's ~0.4 s
    start-up would cost more). Workers go back to the WorkerPool at `close`. `harvest`
    yields finished chunks, in submission order among those it takes at once.
    """

    def __init__(self, config: RunConfig, problem: Problem, workers: int | WorkerPool, spectra: int = 0):
        self.problem = problem
        self.config_json = config.to_json()
        self.shared = workers if isinstance(workers, WorkerPool) else None
        count = self.shared.per_job if self.shared is not None else workers
        self.small = param_count(config.d) <= INLINE_MAX_P
        self.results: queue.Queue = queue.Queue()    # (worker, answer) from every worker in use
        self.workers: list[SpectrumWorker] = []
        self.flight: dict[SpectrumWorker, deque[int]] = {}   # chunk numbers a worker holds, in order
        self.backlog: deque[tuple[int, list]] = deque()      # chunks not yet sent
        self.done: dict[int, list[tuple[int, np.ndarray]]] = {}
        self.open = 0                                        # chunks submitted, not yet done
        self.chunks = 0
        self.helping = False                                 # this thread computes backlog chunks too
        if count > 0 and problem.device.type == "cpu" and (not self.small or spectra >= WORKER_MIN_SPECTRA):
            self._adopt(self.shared.lease(count) if self.shared is not None
                        else [SpectrumWorker() for _ in range(1 if self.small else count)])

    def _adopt(self, workers: list[SpectrumWorker]) -> None:
        for worker in workers:
            worker.results = self.results
            try:
                worker.configure(self.config_json)
            except RuntimeError:
                if self.shared is None:   # its own worker died at start: the run fails, saying why
                    for started in workers:
                        started.close()
                    raise
                self.shared.give_back([worker])   # a warm one died while idle: the pool replaces it
                continue
            self.workers.append(worker)
            self.flight[worker] = deque()
        self._send()

    def submit(self, jobs: list[tuple[int, np.ndarray, int]]) -> None:
        if not jobs:
            return
        number, self.chunks = self.chunks, self.chunks + 1
        self.open += 1
        if not self.workers:
            self._inline(number, jobs)
            return
        self.backlog.append((number, jobs))
        self._send()

    def _inline(self, number: int, jobs: list[tuple[int, np.ndarray, int]]) -> None:
        epochs, thetas, loops = zip(*jobs)
        self._finish(number, list(zip(epochs, self.problem.hessian_spectra(list(thetas), list(loops)))))

    def training_ended(self) -> None:
        """Training's core is free now: share the backlog with it (see the class)."""
        if not (self.small and self.workers and self.backlog):
            return
        if self.shared is not None:
            self._adopt(self.shared.lease(len(self.backlog), start=False))
        else:
            self.helping = True

    def _send(self) -> None:
        for worker in self.workers:
            while self.backlog and len(self.flight[worker]) < IN_FLIGHT:
                number, jobs = self.backlog.popleft()
                worker.submit(jobs)
                self.flight[worker].append(number)

    def _finish(self, number: int, result: list[tuple[int, np.ndarray]]) -> None:
        self.done[number] = result
        self.open -= 1

    def _collect(self, timeout: float) -> None:
        """Take every answer that has come back, waiting up to `timeout` for the first."""
        while True:
            try:
                worker, answer = self.results.get(timeout=timeout) if timeout > 0 else self.results.get_nowait()
            except queue.Empty:
                return
            if isinstance(answer, Exception):
                raise answer
            self._finish(self.flight[worker].popleft(), answer)
            self._send()
            timeout = 0

    def harvest(self, wait: bool, cancel: threading.Event | None = None):
        """Yield the finished results; with wait, block until every chunk is done.

        Without wait, or once `cancel` is set, take every chunk that has finished, also
        those behind an unfinished one, and leave the rest: a cancel keeps what was computed.
        """
        while True:
            self._collect(0)
            for number in sorted(self.done):
                yield from self.done.pop(number)
            if not self.open or not wait or (cancel is not None and cancel.is_set()):
                return
            if self.helping and self.backlog:   # the last chunks: the workers take from the front
                self._inline(*self.backlog.pop())
            else:
                self._collect(0.05)

    def close(self) -> None:
        """Stop or give back the workers; chunks not yet sent are dropped."""
        self.backlog.clear()
        if self.shared is not None:
            self.shared.give_back(self.workers)
        else:
            for worker in self.workers:
                worker.close()
        self.workers = []


def stage_one(config: RunConfig, problem: Problem, prior=None, cancel: threading.Event | None = None
              ) -> tuple[list[EpochRecord], TrainState | None, dict[int, np.ndarray]]:
    """SHIFT's Stage I: Single-Attn for epochs 0..shift_epoch, and the state to continue from.

    When `prior` (the Single run of the same config, a RunData) stores Adam's state
    (optimizer.npz), Stage I is read, not trained: its records, spectra, weights and
    Adam moments at the switch. Otherwise training is replayed, and the prior's records
    and spectra are reused if it holds the same weights at the switch. Either way
    epochs 0..S of the SHIFT run equal the Single run's exactly, and Stage II starts
    from the same state bit for bit (tested). A set `cancel` stops a replay between
    epochs: the records so far come back with no state (Stage II must not start).
    """
    single = config.replace(model="single")
    S = config.shift_epoch
    # Only Adam's state is stored; SGD's momentum buffer is not, so sgd/gd always replay.
    if (config.optimizer == "adam" and prior is not None and prior.optimizer is not None
            and prior.config.key() == single.key()
            and len(prior.thetas) > S and np.array_equal(prior.weight_epochs[:S + 1], np.arange(S + 1))):
        records = _prior_records(prior, S)
        optimizer = prior.optimizer
        moments = np.stack([optimizer["exp_avg"][S], optimizer["exp_avg_sq"][S]])
        adam = None if S == 0 else adam_state(config.lr, moments, int(optimizer["steps"][S]))
        state = TrainState(S, prior.thetas[S].copy(), adam, records[-1].seconds)
        return records, state, {int(e): eig for e, eig in zip(prior.spectrum_epochs, prior.eigenvalues) if e <= S}
    trainer = Trainer(single, problem)
    records = []
    for record in trainer.run(until=config.shift_epoch):
        records.append(record)
        if cancel is not None and cancel.is_set() and record.epoch < S:
            return records, None, {}
    state = trainer.state()
    spectra: dict[int, np.ndarray] = {}
    if (prior is not None and prior.config.key() == single.key() and len(prior.thetas) > S
            and not records[-1].diverged and np.array_equal(prior.thetas[S], state.theta)):
        records = _prior_records(prior, S)
        state.seconds = records[-1].seconds
        spectra = {int(e): eig for e, eig in zip(prior.spectrum_epochs, prior.eigenvalues) if e <= S}
    return records, state, spectra


def _prior_records(prior, S: int) -> list[EpochRecord]:
    """Records 0..S of a stored run (RunData), with its Adam state where stored."""
    rows = prior.records.iloc[:S + 1]
    opt = prior.optimizer
    return [EpochRecord(int(row.epoch), 1, {m: float(getattr(row, m)) for m in METRICS}, prior.thetas[i],
                        float(row.seconds),
                        None if opt is None or i == 0 else np.stack([opt["exp_avg"][i], opt["exp_avg_sq"][i]]),
                        0 if opt is None else int(opt["steps"][i]))
            for i, row in enumerate(rows.itertuples())]


def execute(config: RunConfig, log: RunLog | None = None, cancel: threading.Event | None = None,
            workers: int | WorkerPool = 1, chunk: int = 10, prior=None, problem: Problem | None = None) -> RunLog:
    """Train `config` and compute its spectra into `log`; never raises for a bad run.

    workers: spectrum worker processes of this run (0 = compute inline), or the WorkerPool
    whose warm workers it borrows (an app server's; see SpectrumPool). prior: for a SHIFT run,
    the stored Single run of the same config (a RunData), whose Stage I is reused.
    A non-finite loss ends the run as 'diverged' with every record so far kept; a set
    `cancel` ends it as 'cancelled', likewise.
    """
    log = log or RunLog(config)
    cancel = cancel or threading.Event()
    pool = None
    try:
        # The cancel event is checked at every stage boundary (problem, Stage I, worker
        # start) and once per epoch, so a cancelled or superseded job frees its core at once.
        first: list[EpochRecord] = []   # SHIFT's Stage I, read or replayed before the epoch loop
        later: Iterable[EpochRecord] = ()
        if not cancel.is_set():
            problem = problem or prepare(config)
        if config.model == "shift" and not cancel.is_set():
            first, resume, reused = stage_one(config, problem, prior, cancel)
            for epoch, eig in reused.items():
                log.add_spectrum(epoch, eig)
            if resume is not None:
                # Stage II is a lazy generator: the loop below stops at a diverged or cancelled
                # Stage I record before Stage II trains a single step.
                later = Trainer(config, problem, resume).run(include_current=False)
        elif not cancel.is_set():
            later = Trainer(config, problem).run()
        wanted = set(spectrum_epochs(config, config.epochs))
        if not cancel.is_set():
            pool = SpectrumPool(config, problem, workers, len(wanted - set(log.spectra)))
        batch: list[tuple[int, np.ndarray, int]] = []
        requested: set[int] = set()   # epochs whose spectrum is computed or on its way
        for n, record in enumerate(itertools.chain(first, later if pool is not None else ())):
            log.add_record(record)
            if record.diverged:
                log.diverged_epoch = record.epoch
                break
            if cancel.is_set():
                if n + 1 >= len(first):  # Stage I's records exist already: keep them all
                    break
                continue
            if record.epoch in wanted and record.epoch not in log.spectra:
                batch.append((record.epoch, record.theta, record.loops))
                requested.add(record.epoch)
            if len(batch) >= chunk:
                pool.submit(batch)
                batch = []
            for epoch, eig in pool.harvest(wait=False):
                log.add_spectrum(epoch, eig)
        if not cancel.is_set():  # a cancelled run waits for no new spectrum
            last = log.records[-1]
            if (last.epoch not in log.spectra and last.epoch not in requested and not last.diverged
                    and config.hessian_every > 0):
                batch.append((last.epoch, last.theta, last.loops))
            pool.submit(batch)
            pool.training_ended()
        # After a cancel, only what has already come back is taken.
        for epoch, eig in (pool.harvest(wait=not cancel.is_set(), cancel=cancel) if pool is not None else ()):
            log.add_spectrum(epoch, eig)
        if cancel.is_set():
            where = f"at epoch {log.records[-1].epoch}" if log.records else "before its first epoch"
            log.finish("cancelled", f"cancelled {where}; {len(log.records)} records and "
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
