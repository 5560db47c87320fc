"""Pages' view of runs: stored or live, the Train / Cancel controls, progress and ETA."""
from __future__ import annotations

import time
from typing import Callable

import streamlit as st

from ..config import RunConfig
from ..runs.log import spectrum_epochs
from ..runs.status import Status
from ..runs.format import RunData, RunFormatError, read_run, run_data_from_log, task_arrays
from ..runs.store import STORED_STATUSES, JobRegistry, QueueFull, RunStore, operator_setting


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


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def any_running(configs: dict[str, RunConfig]) -> bool:
    reg = registry()
    return any((job := reg.get(c)) is not None and not job.log.done for c in configs.values())


def train_controls(configs: dict[str, RunConfig]) -> None:
    """Sidebar: Train (starts or reattaches to jobs) and Cancel for the given configs."""
    reg = registry()
    missing = {label: c for label, c in configs.items() if _needs_training(c)}
    side = st.sidebar
    running = any_running(configs)
    if side.button("Train " + " + ".join(configs), key="train", type="primary", disabled=not missing or running):
        try:
            for config in missing.values():
                reg.start(config, owner=_session_id())
        except QueueFull as exc:
            side.error(f"Not queued: {exc}.")
        else:
            st.rerun()
    if not missing and not running:
        side.caption("These runs are stored: change a setting to train a new one.")
    if running and side.button("Cancel", key="cancel"):
        for config in configs.values():
            reg.cancel(config)
        st.rerun()


def _needs_training(config: RunConfig) -> bool:
    """No job and nothing stored, or a job that was cancelled or failed (cheap: no tables built)."""
    job = registry().get(config)
    if job is not None:
        return job.retryable
    return current_run(config) is None


def progress_panel(configs: dict[str, RunConfig]) -> None:
    """Per model: status, epoch and spectrum progress bars, an ETA; messages of ended jobs."""
    reg = registry()
    for label, config in configs.items():
        job = reg.get(config)
        if job is None:
            # A stored diverged run says so in every process, not only in the one that trained it.
            stored = current_run(config)
            if stored is not None and stored.status == Status.DIVERGED:
                st.error(f"{label}: {stored.meta.get('message') or 'diverged'}; the curves up to it are kept")
            continue
        log = job.log.snapshot()
        if job.waiting:
            running, ahead = reg.queue_position(job)
            st.info(f"{label}: queued behind {running} training and {ahead} waiting job(s)")
            continue
        n_spectra = len(spectrum_epochs(config, config.epochs))
        epoch = log.records[-1].epoch if log.records else 0
        units, total = log.work()
        done = units / max(total, 1)
        elapsed = (log.finished or time.time()) - (job.started_at or log.started)
        if log.status == Status.RUNNING:
            eta = log.eta(elapsed)
            st.progress(min(done, 1.0), text=f"{label}: epoch {epoch}/{config.epochs}, spectra "
                                             f"{len(log.spectra)}/{n_spectra}, {elapsed:.0f} s, ETA {eta:.0f} s")
        elif log.status == Status.COMPLETE:
            st.success(f"{label}: complete in {elapsed:.1f} s ({len(log.records)} epochs, {len(log.spectra)} spectra)")
        elif log.status == Status.DIVERGED:
            st.error(f"{label}: {log.message}; the curves up to it are kept")
        elif log.status == Status.CANCELLED:
            st.warning(f"{label}: {log.message}")
        else:
            st.error(f"{label}: failed: {log.message}")
        if job.error:
            st.error(job.error)


def model_pair(config: RunConfig) -> dict[str, RunConfig]:
    """The Single-Attn and Looped-Attn configs that a page compares, by display label."""
    return {"Single-Attn": config.replace(model="single"), "Looped-Attn": config.replace(model="looped")}


def show_store_problems() -> None:
    for problem in store_problems():
        st.warning(problem)


def live_fragment(body: Callable[[], None], configs: dict[str, RunConfig]) -> None:
    """Draw `body` as a fragment that redraws every second while any of `configs` trains.

    AppTest does not fire run_every by itself; tests poll with at.run(). When the jobs
    end, one full rerun redraws the sidebar and stops the polling.
    """
    if not any_running(configs):
        st.fragment(body)()
        return

    def polling() -> None:
        body()
        if not any_running(configs):
            st.rerun()

    st.fragment(polling, run_every=1.0)()
