"""The one runner: a config trained into its log and written where it belongs.

Both experiment families (the toy: execute.py; App. E.2's algorithmic tasks: algo/job.py)
and both hosts use it: the CLI (`python -m loopviz run`, `algo run`; it adds the progress
bar, Ctrl-C and exit codes, see foreground.py) and the app's JobRegistry (store.py; it adds
the queue, slots and watchers). Light at import: the CLI's parser loads it without torch.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..config import RunConfig
from .log import RunLog
from .status import Status

if TYPE_CHECKING:
    from ..algo.config import AlgoConfig

EVERY_STATUS = tuple(Status)   # what the CLI writes: whatever a run computed, cancelled or failed too


@dataclass
class Outcome:
    """What became of an ended run."""

    run: Any = None          # RunData (toy) or AlgoRun (algo) when it was kept, else None
    path: Path | None = None   # where it was written
    error: str = ""          # why it could not be written (the OSError's text)


def new_log(config: RunConfig | AlgoConfig) -> RunLog:
    """A fresh log for `config`: RunLog for the toy, AlgoLog for an algorithmic task."""
    if isinstance(config, RunConfig):
        return RunLog(config)
    from ..algo.job import AlgoLog
    return AlgoLog(config)


def _pin_torch_threads(config: RunConfig | AlgoConfig) -> None:
    """Tiny tensors beside a server or spectrum workers: one torch thread is ~10× faster
    (docs/background.md §4). torch is loaded here for an algorithmic task, and for a toy run
    only where a CUDA device may be present (on the CPU the toy trains in numpy, without torch)."""
    from ..toy.training import cuda_possible

    if not isinstance(config, RunConfig) or "torch" in sys.modules or (config.device != "cpu" and cuda_possible()):
        import torch

        torch.set_num_threads(1)


def run(config: RunConfig | AlgoConfig, log: RunLog, cancel: threading.Event, prior: Callable[[], Any] | None = None,
        target: Path | None = None, keep: tuple[Status, ...] = EVERY_STATUS, overwrite: bool = True,
        workers: int = 1) -> Outcome:
    """Train `config` into `log` (never raises for a bad run), then write it to `target`
    when it has records and its status is in `keep`.

    prior: called once, for a SHIFT run only, it returns where Stage I comes from: the
    Single run of the same config (toy: its RunData, stored with Adam's state; algo: its
    ended AlgoLog, whose handoff lives in memory), or None. An algo SHIFT run then reads
    the Single run stored beside `target` (its handoff.npz; the CLI's OUT/single, the app's
    group/single), else trains Stage I again.
    workers: the toy's spectrum worker processes (0 = inline).
    """
    _pin_torch_threads(config)
    stage_one = None
    if config.model == "shift" and prior is not None and not cancel.is_set():
        stage_one = prior()
    if isinstance(config, RunConfig):
        from .execute import execute
        from .format import run_data_from_log as result, write_run as write

        execute(config, log, cancel, workers=workers, prior=stage_one)
    else:
        from ..algo import job, rundir

        stored = None if target is None or config.model != "shift" else Path(target).parent / "single"
        job.train(config, log, cancel, prior=stage_one, stored=stored)
        result, write = job.result, rundir.write_run
    if target is None or not log.records or log.status not in keep:
        return Outcome()
    kept = result(log)
    try:
        return Outcome(kept, write(kept, target, overwrite=overwrite))
    except OSError as exc:
        return Outcome(kept, None, str(exc))
