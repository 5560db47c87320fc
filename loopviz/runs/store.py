"""The run store on disk and the background jobs that fill it, shared by every session.

A run is found by its config's key: first among the bundled runs in assets/ (read
only), then in the store directory. Jobs live in one JobRegistry per server process:
the same config is one job for every session; at most `max_running` jobs train at
once and the rest wait in order. A job is a toy RunConfig (written into the store) or an
algorithmic task's AlgoConfig (written into the directory its page names); both run
through the one runner (runner.py). A job's thread never touches Streamlit.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RunConfig
from . import runner
from .log import RunLog
from .spectrum_worker import WorkerPool
from .status import Status
from .format import RunData, RunFormatError, read_run

if TYPE_CHECKING:
    from ..algo.config import AlgoConfig

REPO = Path(__file__).resolve().parent.parent.parent
BUNDLED_DIR = REPO / "assets"
DEFAULT_STORE = Path(os.environ.get("LOOPVIZ_STORE", REPO / "runs"))
STORED_STATUSES = (Status.COMPLETE, Status.DIVERGED)
FINISHED_KEPT = 8        # ended jobs a registry remembers (for their messages); older ones are dropped
MAX_PER_OWNER = 6        # unfinished jobs one session may have: the server is shared
MAX_WAITING = 16         # jobs waiting in all: beyond this, Train is refused until the queue drains


class QueueFull(RuntimeError):
    """A job was refused because its session, or the server, has too many waiting."""


def operator_setting(name: str, default: int, low: int, high: int,
                     environ: dict[str, str] | None = None) -> tuple[int, str]:
    """An integer setting from the environment: (value, warning). A bad value never raises:
    it falls back to the default, and the warning says so (pages show it)."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None or raw.strip() == "":
        return default, ""
    try:
        value = int(raw.strip())
    except ValueError:
        return default, f"{name}={raw!r} is not an integer; using the default {default}"
    if not low <= value <= high:
        return default, f"{name}={value} is outside [{low}, {high}]; using the default {default}"
    return value, ""


class RunStore:
    """Finished runs on disk, keyed by config; bundled runs are found the same way."""

    def __init__(self, root: Path = DEFAULT_STORE, bundled: Path | None = BUNDLED_DIR):
        self.root = Path(root)
        self.bundled: dict[str, Path] = {}
        if bundled is not None and bundled.is_dir():
            for config_file in sorted(bundled.glob("**/config.json")):
                try:
                    self.bundled[RunConfig.from_json(config_file.read_text()).key()] = config_file.parent
                except Exception:  # a bad bundled file must not stop the app; it is simply not offered
                    continue
        self.problems: list[str] = []

    def path(self, config: RunConfig) -> Path:
        return self.bundled.get(config.key()) or self.root / config.key()

    def load(self, config: RunConfig) -> RunData | None:
        """The stored run for `config`, or None. A corrupt run is set aside and reported."""
        path = self.path(config)
        if not path.exists():
            return None
        try:
            run = read_run(path)
        except RunFormatError as exc:
            self.set_aside(path, str(exc))
            return None
        if run.status not in STORED_STATUSES:
            return None
        return run

    def set_aside(self, path: Path, problem: str) -> None:
        """Report a corrupt run and, when it lives in the store (never assets/), rename it to
        .corrupt-NAME-TIME beside the others so that it is recomputed, not re-read on every visit."""
        path = Path(path)
        if path.parent != self.root:
            self.problems.append(f"bundled run {path.name} is unreadable ({problem}); it is not offered")
            return
        aside = path.with_name(f".corrupt-{path.name}-{time.time_ns()}")
        try:
            os.rename(path, aside)
        except OSError as exc:
            self.problems.append(f"stored run {path.name} is unreadable ({problem}) and could not be set aside "
                                 f"({exc.strerror})")
            return
        self.problems.append(f"stored run {path.name} was unreadable ({problem}); it was moved to {aside.name} "
                             "and will be recomputed")


@dataclass
class Job:
    """One config (RunConfig or AlgoConfig) being trained in a daemon thread; read it through
    `log.snapshot()`. It ends written into `directory` when complete or diverged."""

    config: RunConfig | AlgoConfig
    log: RunLog
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    saved: bool = False
    error: str = ""
    owner: str | None = None   # the session that started it (for the per-session cap)
    watchers: set[str] = field(default_factory=set)   # sessions that show this job (see JobRegistry.watch)
    directory: Path | None = None

    @property
    def waiting(self) -> bool:
        return self.started_at is None and not self.log.done

    @property
    def busy(self) -> bool:
        """Queued, training, or still writing its run: a page waits for this before it lists the run."""
        return not self.log.done or (self.thread is not None and self.thread.is_alive())

    @property
    def retryable(self) -> bool:
        """Ended without a result (cancelled or failed): training it again starts a new job."""
        return self.log.done and self.log.status in (Status.CANCELLED, Status.FAILED)


class JobRegistry:
    """All jobs of one server process, keyed by config key."""

    def __init__(self, store: RunStore, max_running: int = 1, spectrum_workers: int = 1,
                 warnings: tuple[str, ...] = ()):
        if max_running < 1:
            raise ValueError(f"max_running must be >= 1, got {max_running}")  # 0 would queue forever
        self.store = store
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(max_running)
        self.spectrum_workers = spectrum_workers
        # Warm spectrum workers, `spectrum_workers` per running job, started with the first job
        # that needs one and kept for the next (no ~0.4 s start-up per job); closed at exit.
        self.workers = WorkerPool(spectrum_workers, max_running * spectrum_workers) if spectrum_workers else None
        self.warnings = list(warnings)   # operator-setting problems, shown on every page

    def get(self, config: RunConfig) -> Job | None:
        with self.lock:
            return self.jobs.get(config.key())

    def start(self, config: RunConfig | AlgoConfig, owner: str | None = None, directory: Path | None = None) -> Job:
        """The job for `config`: the running one if any, else a new one (queued if busy).

        directory: where the ended run is written; a toy run goes into the store by default,
        an algorithmic task's must be named. Raises QueueFull when `owner` (a session) already
        has MAX_PER_OWNER unfinished jobs or MAX_WAITING jobs wait: one visitor must not fill
        a shared server's queue.
        """
        key = config.key()
        if directory is None:
            if not isinstance(config, RunConfig):
                raise ValueError(f"a {type(config).__name__} job needs the directory its run is written to")
            directory = self.store.root / key
        with self.lock:
            job = self.jobs.get(key)
            if job is not None and not job.retryable:
                return job
            unfinished = [j for j in self.jobs.values() if not j.log.done]
            if owner is not None and sum(j.owner == owner for j in unfinished) >= MAX_PER_OWNER:
                raise QueueFull(f"this session already has {MAX_PER_OWNER} jobs training or queued; "
                                "wait for one to finish or cancel it")
            if sum(j.waiting for j in unfinished) >= MAX_WAITING:
                raise QueueFull(f"{MAX_WAITING} jobs are already queued on this server; try again later")
            job = Job(config, runner.new_log(config), owner=owner, directory=Path(directory))
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"loopviz-{key}", daemon=True)
            self.jobs[key] = job
            self._forget_finished()
        job.thread.start()
        return job

    def _forget_finished(self) -> None:
        """Keep the FINISHED_KEPT most recently ended jobs (their runs are on disk or were
        retryable anyway): a long-lived server's memory stays bounded. Call under the lock."""
        ended = sorted((j for j in self.jobs.values() if j.log.done), key=lambda j: j.log.finished or 0.0)
        for job in ended[:max(0, len(ended) - FINISHED_KEPT)]:
            del self.jobs[job.config.key()]

    def queue_position(self, job: Job) -> tuple[int, int]:
        """(jobs training now, waiting jobs queued before this one); (0, 0) unless it waits."""
        if not job.waiting:
            return 0, 0
        with self.lock:
            others = [j for j in self.jobs.values() if j is not job]
            running = sum(1 for j in others if j.started_at is not None and not j.log.done)
            ahead = sum(1 for j in others if j.waiting and j.queued_at < job.queued_at)
            return running, ahead

    def _run(self, job: Job) -> None:
        if job.config.model == "shift":
            self._await_single(job)
        with self.slots:
            with self.lock:  # against _cancel: a job is either still waiting (and ended there) or started
                if job.cancel.is_set():
                    if not job.log.done:
                        job.log.finish(Status.CANCELLED, "cancelled before it started")
                    return
                job.started_at = time.time()
            outcome = runner.run(job.config, job.log, job.cancel, prior=lambda: self._stage_one(job.config),
                                 target=job.directory, keep=STORED_STATUSES, workers=self.workers or 0)
        job.saved = outcome.path is not None
        if outcome.error:
            job.error = f"the run finished but could not be saved: {outcome.error}"
        with self.lock:
            self._forget_finished()

    def _await_single(self, job: Job) -> None:
        """A SHIFT job waits, queued and holding no slot, while this registry queues, trains or
        writes the Single run of its config: its Stage I is then read or handed over, not trained
        twice."""
        single = self.get(job.config.replace(model="single"))
        while single is not None and single.busy and not job.cancel.wait(0.2):
            pass

    def _stage_one(self, config: RunConfig | AlgoConfig):
        """Where a SHIFT run's Stage I comes from: for the toy the stored Single run (weights and
        Adam state are on disk); for an algorithmic task the Single job of this registry, whose
        handoff (weights and AdamW state at the switch) is in memory (without it, the runner reads
        the Single run's handoff.npz beside the SHIFT job's directory)."""
        single = config.replace(model="single")
        if isinstance(config, RunConfig):
            return self.store.load(single)
        job = self.get(single)
        return job.log if job is not None and job.log.done else None

    def cancel(self, config: RunConfig) -> None:
        job = self.get(config)
        if job is not None:
            self._cancel(job)

    def _cancel(self, job: Job) -> None:
        job.cancel.set()
        with self.lock:  # a queued job ends now, not when a slot frees up: it leaves the queue at once
            if job.waiting:
                job.log.finish("cancelled", "cancelled before it started")

    def watch(self, config: RunConfig, session: str) -> None:
        """Mark `session` as showing the job for `config` (no-op when there is none)."""
        job = self.get(config)
        if job is not None:
            with self.lock:
                job.watchers.add(session)

    def release(self, config: RunConfig, session: str) -> None:
        """`session` stops showing this job; a job nobody shows any more is cancelled
        (a superseded SHIFT slider position must not hold the queue)."""
        job = self.get(config)
        if job is None:
            return
        with self.lock:
            job.watchers.discard(session)
            orphan = not job.watchers and not job.log.done
        if orphan:
            self._cancel(job)

    def counts(self) -> dict[str, int]:
        """Jobs by state: running, stopping (cancelled, not yet ended), queued, ended (any status)."""
        with self.lock:
            jobs = list(self.jobs.values())
        live = [j for j in jobs if j.started_at is not None and not j.log.done]
        return {"running": sum(not j.cancel.is_set() for j in live), "stopping": sum(j.cancel.is_set() for j in live),
                "queued": sum(j.waiting for j in jobs), "ended": sum(j.log.done for j in jobs)}

    def clear(self) -> None:
        """Cancel and forget every job and stop the spectrum workers (tests use this between cases)."""
        with self.lock:
            jobs = list(self.jobs.values())
            self.jobs.clear()
        for job in jobs:
            job.cancel.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=30)
        if self.workers is not None:
            self.workers.close()
