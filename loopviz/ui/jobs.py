"""Pages' view of runs: stored or live, the Train / Cancel controls, progress and ETA."""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

import streamlit as st

from ..algo import rundir
from ..config import RunConfig
from ..runs.log import spectrum_epochs
from ..runs.status import Status
from ..runs.format import RunData, RunFormatError, read_run, run_data_from_log, task_arrays
from ..runs.store import STORED_STATUSES, JobRegistry, QueueFull, RunStore, operator_setting
from . import present

SEEN_KEY = "jobs_seen_running"     # config keys this session saw training (their end is news to it)
WATCH_KEY = "jobs_watched"         # slot → config key this session follows (see follow())
# How long a page may hold its run for a just-started job's training (wait_for_training): a
# SHIFT slider move's Stage II trains in ~0.3-0.5 s (bench/bench_slider.py); a longer job is
# drawn live after this.
TRAINING_WAIT = 1.2
# How long after a job was started a page may hold its run for the job's spectra
# (wait_for_spectra): a SHIFT slider move's are done ~1 s after the key, at the defaults.
SPECTRA_WAIT = 1.6


@st.cache_resource
def registry() -> JobRegistry:
    """One registry per server process: every session sees the same jobs."""
    # Two jobs (Single and Looped of one config) with one spectrum worker each keep both cores busy.
    # Read once per process; a bad value falls back to the default with a warning on every page.
    max_running, bad_jobs = operator_setting("LOOPVIZ_MAX_JOBS", 2, 1, 64)
    workers, bad_workers = operator_setting("LOOPVIZ_SPECTRUM_WORKERS", 1, 0, 64)
    return JobRegistry(RunStore(), max_running=max_running, spectrum_workers=workers,
                       warnings=tuple(w for w in (bad_jobs, bad_workers) if w))


@st.cache_resource(max_entries=32)
def _read_cached(path: str, stamp: float) -> RunData:
    return read_run(path)


@st.cache_data(max_entries=32)
def _task_cached(config_json: str) -> dict:
    return task_arrays(RunConfig.from_json(config_json))


def current_run(config: RunConfig) -> RunData | None:
    """The live job's snapshot if there is a job for `config`, else the stored run, else None."""
    reg = registry()
    job = reg.get(config)
    if job is not None and not job.saved:
        log = job.log.snapshot()
        if log.records:
            return run_data_from_log(log, _task_cached(config.to_json()))
        return None
    path = reg.store.path(config)
    if not (path / "records.csv").exists():
        return None
    try:
        run = _read_cached(str(path), (path / "records.csv").stat().st_mtime)
    except RunFormatError:
        reg.store.load(config)  # reports the problem and sets the corrupt run aside
        return None
    return run if run.status in STORED_STATUSES else None


def store_problems() -> list[str]:
    """Operator-setting warnings (every time) and store problems found since the last call."""
    reg = registry()
    problems, reg.store.problems[:] = list(reg.store.problems), []
    return reg.warnings + problems


def any_running(configs: dict[str, RunConfig]) -> bool:
    reg = registry()
    return any((job := reg.get(c)) is not None and job.busy for c in configs.values())


def train_controls(configs: dict[str, RunConfig]) -> None:
    """Sidebar: Train (starts or reattaches to jobs) and Cancel for the given configs.
    Presenter mode draws neither (the sidebar is hidden)."""
    if present.enabled():
        return
    side = st.sidebar
    missing = train_button(configs, side, key="train")
    running = any_running(configs)
    if not missing and not running:
        side.caption("These runs are stored: change a setting to train a new one.")
    if running:
        cancel_button(configs, side, key="cancel")


def train_button(configs: dict, where, key: str, directories: dict[str, Path] | None = None,
                 refused: bool = False) -> dict:
    """A Train button that starts a server job for each config (by label) that needs one, owned
    by this session (the registry's per-session and server caps apply). `directories` (by
    label) name where algorithmic-task runs are written. Returns the configs that need training."""
    directories = directories or {}
    missing = {label: c for label, c in configs.items() if needs_training(c, directories.get(label))}
    if where.button("Train " + " + ".join(configs), key=key, type="primary",
                    disabled=refused or not missing or any_running(configs)):
        try:
            for label, config in missing.items():
                registry().start(config, owner=_session_id(), directory=directories.get(label))
                st.session_state.setdefault(SEEN_KEY, set()).add(config.key())
        except QueueFull as exc:
            where.error(f"Not queued: {exc}.")
        else:
            wait_for_training(list(missing.values()))
            st.rerun()
    return missing


def cancel_button(configs: dict[str, RunConfig], where, key: str, label: str = "Cancel") -> None:
    """Cancel, or a disabled "cancelling…" from the click until the jobs have stopped."""
    if present.enabled():
        return
    reg = registry()
    live = [job for c in configs.values() if (job := reg.get(c)) is not None and not job.log.done]
    if not live:
        return
    if any(job.cancel.is_set() for job in live):
        where.button("cancelling…", key=key, disabled=True)
    else:
        # A callback, and no full rerun: inside a live fragment the click redraws only the
        # fragment, which then already says "cancelling…"; the job's end reruns the page.
        where.button(label, key=key, on_click=_cancel_all, args=(list(configs.values()),))


def _cancel_all(configs: list[RunConfig]) -> None:
    for config in configs:
        registry().cancel(config)


def needs_training(config, directory: Path | None = None) -> bool:
    """No job and nothing stored (a toy run in the store, an algorithmic task's at `directory`),
    or a job that was cancelled or failed (cheap: no tables built)."""
    job = registry().get(config)
    if job is not None:
        return job.retryable
    if directory is not None:
        return not is_stored(directory)
    return current_run(config) is None


def is_stored(directory: Path) -> bool:
    """An algorithmic task's run is written at `directory`, complete or diverged (cheap: meta.json only)."""
    return rundir.stored_status(directory) in STORED_STATUSES


def cuda_available() -> bool:
    """Whether this server's torch sees a CUDA device; imports torch where a device may be
    present (an NVIDIA driver), so a page calls it only when the user asks for something that
    needs a GPU; on a machine without one it answers without torch."""
    from ..toy.training import cuda_possible

    if not cuda_possible():
        return False
    import torch

    return torch.cuda.is_available()


def progress_panel(configs: dict[str, RunConfig]) -> None:
    """Per model: status, epoch (or step) and spectrum progress bars, an ETA; how jobs this session
    watched ended (a run finished before this session came is simply shown, not announced)."""
    reg = registry()
    seen = st.session_state.setdefault(SEEN_KEY, set())
    for label, config in configs.items():
        job = reg.get(config)
        toy = isinstance(config, RunConfig)
        if job is None:
            # A stored diverged run says so in every process, not only in the one that trained it.
            stored = current_run(config) if toy else None
            if stored is not None and stored.status == Status.DIVERGED:
                st.error(f"{label}: {stored.meta.get('message') or 'diverged'}; the curves up to it are kept")
            continue
        log = job.log.snapshot()
        if not log.done:
            seen.add(config.key())
        elif log.status == "complete" and config.key() not in seen:
            continue  # finished before this session came: the run is shown, its end is no news
        if job.waiting:
            running, ahead = reg.queue_position(job)
            st.info(f"{label}: queued behind {running} training and {ahead} waiting job(s)")
            continue
        if not log.done and job.cancel.is_set():
            st.warning(f"{label}: cancelling… (stops at the end of the current {'epoch' if toy else 'step'})")
            continue
        units, total = log.work()
        done = units / max(total, 1)
        elapsed = (log.finished or time.time()) - (job.started_at or log.started)
        if log.status == Status.RUNNING:
            eta = log.eta(elapsed)
            eta_text = f"ETA {eta:.0f} s" if eta == eta else f"ETA after the first {'epoch' if toy else 'evaluation'}"
            st.progress(min(done, 1.0), text=f"{label}: {_position(config, log)}, {elapsed:.0f} s, {eta_text}")
        elif log.status == Status.COMPLETE:
            made = (f"{len(log.records)} epochs, {len(log.spectra)} spectra" if toy
                    else f"{len(log.records)} evaluations up to step {units}")
            st.success(f"{label}: complete in {elapsed:.1f} s ({made})")
        elif log.status == Status.DIVERGED:
            st.error(f"{label}: {log.message}; the curves up to it are kept")
        elif log.status == Status.CANCELLED:
            st.warning(f"{label}: {log.message}")
        else:
            st.error(f"{label}: failed: {log.message}")
        if job.error:
            st.error(job.error)


def _position(config, log) -> str:
    """Where a live run is: the toy's epoch and spectra, an algorithmic task's step."""
    if not isinstance(config, RunConfig):
        return f"step {log.work()[0]}/{config.steps}"
    n_spectra = len(spectrum_epochs(config, config.epochs))
    epoch = log.records[-1].epoch if log.records else 0
    spectra = f"spectra {len(log.spectra)}/{n_spectra}" if log.spectra or not n_spectra else "spectra: starting"
    return f"epoch {epoch}/{config.epochs}, {spectra}"


def follow(slot: str, config: RunConfig) -> None:
    """This session now shows `config`'s job in `slot` (e.g. the SHIFT slider's run). The job it
    showed there before is released, and cancelled when no other session shows it: only the
    position a user is looking at keeps its place in the queue."""
    reg = registry()
    session = _session_id()
    watched = st.session_state.setdefault(WATCH_KEY, {})
    previous = watched.get(slot)
    if previous is not None and previous.key() != config.key():
        reg.release(previous, session)
    reg.watch(config, session)
    watched[slot] = config


def _session_id() -> str:
    """An id of this browser session, kept in its own state (AppTest gives every session one id)."""
    return st.session_state.setdefault("jobs_session_id", uuid.uuid4().hex)


def job_counts_caption() -> None:
    """The server's jobs in one line, so a user can see that nothing stale is queued."""
    counts = registry().counts()
    st.caption(f"Server jobs: {counts['running']} training, {counts['queued']} queued"
               + (f", {counts['stopping']} stopping after a cancel." if counts["stopping"] else "."))


def model_pair(config: RunConfig) -> dict[str, RunConfig]:
    """The Single-Attn and Looped-Attn configs that a page compares, by display label."""
    return {"Single-Attn": config.replace(model="single"), "Looped-Attn": config.replace(model="looped")}


def show_store_problems() -> None:
    for problem in store_problems():
        st.warning(problem)


def pair_controls(config: RunConfig) -> dict[str, RunConfig]:
    """The top of a page over one configuration: its Single/Looped pair (model_pair) with
    Train / Cancel in the sidebar, and any store problems as warnings. Returns the pair."""
    pair = model_pair(config)
    train_controls(pair)
    show_store_problems()
    return pair


def has_job(config: RunConfig) -> bool:
    """This server holds a job for `config` (running, queued or finished since it started)."""
    return registry().get(config) is not None


def start(config: RunConfig) -> str:
    """Start `config`'s job (or reattach to its running one) outside the Train button, e.g.
    the SHIFT slider's run: "" when started, else why it was not queued."""
    try:
        registry().start(config)
    except QueueFull as exc:
        return f"Not queued: {exc}."
    return ""


def wait_for_training(configs: list) -> None:
    """Hold this script run up to TRAINING_WAIT seconds while the toy jobs of `configs` train,
    so that quick jobs (a SHIFT slider move's Stage II: ~0.3 s; a default Single + Looped pair:
    ~0.6 s) are drawn with their curves complete by the next draw rather than by the live
    fragment's ticks a second apart; their spectra may still follow (wait_for_spectra)."""
    reg = registry()
    held = [(job, c.epochs) for c in configs if isinstance(c, RunConfig) and (job := reg.get(c)) is not None]
    _hold([(job, lambda job=job, last=last: _trained(job.log, last), time.monotonic() + TRAINING_WAIT)
           for job, last in held])


def wait_for_spectra(configs: list) -> None:
    """Hold this script run while the toy jobs of `configs` compute their spectra, up to
    SPECTRA_WAIT seconds after each job was started. A page calls it after drawing its
    training curves and before its landscape charts: a SHIFT slider move's ~1270 spectra are
    done ~1 s after the key (0.95-1.07 s in a traced bench/bench_slider.py run), and the key's
    own rerun then draws them complete, not the live fragment's next tick ~0.5 s later plus a
    redraw. The window counts from the job's start, so the fragment's later ticks never wait."""
    reg = registry()
    now, clock = time.monotonic(), time.time()
    held = [job for c in configs if isinstance(c, RunConfig) and (job := reg.get(c)) is not None]
    _hold([(job, lambda: False, now + job.queued_at + SPECTRA_WAIT - clock) for job in held])


def _hold(waits: list[tuple[object, Callable[[], bool], float]]) -> None:
    """Poll every 20 ms until each (job, ready, deadline) is done, ready or past its deadline
    (time.monotonic()). Each poll reads st.session_state, one of Streamlit's yield points: a
    newer widget value (the slider's next position) ends the wait at once, so quick moves
    never queue waits."""
    while True:
        waits = [(job, ready, deadline) for job, ready, deadline in waits
                 if not job.log.done and time.monotonic() < deadline and not ready()]
        if not waits:
            return
        _ = WATCH_KEY in st.session_state   # the yield point
        time.sleep(0.02)


def _trained(log, last_epoch: int) -> bool:
    with log.lock:
        return bool(log.records) and log.records[-1].epoch >= last_epoch


def all_trained_here(configs: dict[str, RunConfig]) -> bool:
    """Every config's run was trained to completion by this server (timed the same way)."""
    reg = registry()
    return all((job := reg.get(c)) is not None and job.log.status == Status.COMPLETE for c in configs.values())


def store_path(config: RunConfig):
    """The directory `config`'s run is stored in (or will be)."""
    return registry().store.path(config)


def live_fragment(body: Callable[[], None], configs: dict[str, RunConfig],
                  also_while: Callable[[], bool] = lambda: False, every: float = 1.0) -> None:
    """Draw `body` as a fragment that redraws every `every` seconds while any of `configs`
    trains (or `also_while()` holds, e.g. ▶ play).

    AppTest does not fire run_every by itself; tests poll with at.run(). When the polling
    ends, one full rerun redraws the sidebar and stops it. A faster pace for fresh jobs (0.25 s
    for the first 2 s) was measured and lost: a SHIFT slider move's curves completed 2.5–3.2 s
    after the key instead of 1.8–2.3 s, the browser redrawing every chart four times a second.
    """
    def active() -> bool:
        return any_running(configs) or also_while()

    polling = active()

    # One function whether polling or not: the fragment keeps its id, so the browser's last
    # timer never asks for a fragment a full rerun replaced.
    def live() -> None:
        body()
        if polling and not active():
            st.rerun()

    st.fragment(live, run_every=every if polling else None)()
