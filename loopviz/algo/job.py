"""An algorithmic-task run as a job (App. E.2): its log, its training into that log, its result.

The one runner (runs/runner.py) uses these for the CLI and the app's job registry alike, as
it uses runs/execute.py for the toy. torch is imported by `train`, not with this module.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..runs.format import RunFormatError
from ..runs.log import RunLog
from ..runs.status import Status
from .config import AlgoConfig


@dataclass
class AlgoLog(RunLog):
    """A RunLog of EvalRecords (training.py): progress counts steps, there are no spectra.

    `diverged_epoch` holds the step of the first non-finite loss. A Single run keeps its
    `handoff` (where SHIFT switches, weights and AdamW state; written as handoff.npz): a SHIFT
    run of the same config starts its Stage II from it instead of training Stage I again.
    """

    info: dict = field(default_factory=dict)   # SHIFT: switch step, its rule, SCP's plateau step
    params: int | None = None
    device: str = ""
    handoff: object | None = field(default=None, repr=False)   # training.Handoff of a Single run

    def work(self) -> tuple[int, int]:
        return (self.records[-1].step if self.records else 0), self.config.steps

    def snapshot(self) -> AlgoLog:
        with self.lock:
            return dataclasses.replace(self, records=list(self.records), info=dict(self.info),
                                       lock=threading.Lock())


def stage_one(config: AlgoConfig, prior: AlgoLog | None) -> tuple[list | None, object | None]:
    """(records, handoff) of the Single run that `prior` is, when it is this SHIFT config's
    Single run and reached the switch; else (None, None): Stage I is then trained again."""
    if (prior is None or prior.handoff is None
            or prior.config.key() != config.replace(model="single").key()):
        return None, None
    return list(prior.records), prior.handoff


def stored_stage_one(config: AlgoConfig, directory: Path, max_len: int) -> tuple[list | None, object | None, str]:
    """(records, handoff, note) of the Single run stored in `directory`, read from its
    handoff.npz, when it is this SHIFT config's Single run. (None, None, note) otherwise:
    Stage I is then trained again and the note says why; it is empty when there is nothing to
    say (no run there, or a run written before handoffs were stored)."""
    from . import rundir, training

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        return None, None, ""
    again = f"Stage I trained again, not read from {directory}"
    try:
        run = rundir.read_run(directory)
    except RunFormatError as exc:
        return None, None, f"{again}: {exc}"
    if run.config.key() != config.replace(model="single").key():
        return None, None, f"{again}: it holds a Single run of another config"
    try:
        arrays = rundir.read_handoff(directory, run)
        if arrays is None:
            return None, None, ""
        handoff = training.handoff_from_arrays(config, arrays, max_len)
    except RunFormatError as exc:
        return None, None, f"{again}: {exc}"
    return training.records_from_run(run, handoff.step), handoff, ""


def train(config: AlgoConfig, log: AlgoLog, cancel: threading.Event, prior: AlgoLog | None = None,
          stored: Path | None = None) -> AlgoLog:
    """Train `config` into `log`; never raises (a failed run reports in its log).

    prior: for SHIFT, the Single run of the same config (its ended AlgoLog), whose steps
    are Stage I. stored: else, the directory of that Single run on disk, whose handoff.npz
    gives Stage I (log.info's stage_one says where Stage I came from, stage_one_note why it was
    trained again if there was a run to read). A set `cancel` stops within one training step
    (or one test length of an evaluation, or one Hessian-vector product of a checkpoint's
    Lanczos), keeping the records so far.
    """
    try:
        if cancel.is_set():
            log.finish(Status.CANCELLED, "cancelled before its first step")
            return log
        from . import training
        from .models import param_count

        problem = training.prepare(config)
        log.device, log.params = str(problem.device), param_count(training.shaped_model(config, problem.max_len))
        trainer = None
        if config.model == "shift":
            records, handoff = stage_one(config, prior)
            log.info["stage_one"] = "the Single run in memory"
            if handoff is None and stored is not None:
                records, handoff, note = stored_stage_one(config, stored, problem.max_len)
                log.info["stage_one"] = str(Path(stored) / "handoff.npz")
                if note:
                    log.info["stage_one_note"] = note
            if handoff is None:
                log.info["stage_one"] = "trained"
            stream = training.train_shift(config, records, handoff, problem=problem, info=log.info, cancel=cancel)
        else:
            trainer = training.Trainer(config, config.model == "looped", problem, cancel=cancel)
            stream = trainer.run()
        for record in stream:
            log.add_record(record)
            if record.diverged:
                log.diverged_epoch = record.step
        if trainer is not None and not trainer.looped:
            # The half-way fallback is SHIFT's switch only if SCP never fired in the whole run.
            whole = log.diverged_epoch is None and not cancel.is_set()
            log.handoff = trainer.handoff or (trainer.fallback if whole else None)
        last = log.records[-1].step if log.records else 0
        if log.diverged_epoch is not None:
            log.finish(Status.DIVERGED, f"diverged at step {log.diverged_epoch}: the loss is not finite")
        elif cancel.is_set():
            log.finish(Status.CANCELLED, f"cancelled after step {last}; {len(log.records)} records kept")
        else:
            log.finish(Status.COMPLETE)
    except Exception as exc:  # a job must report, never crash its host (CLI or server)
        log.finish(Status.FAILED, f"{type(exc).__name__}: {exc}")
    return log


def result(log: AlgoLog):
    """The ended log as an AlgoRun (rundir.py), meta included."""
    from .rundir import run_from_records

    records = log.records
    meta = {"status": str(log.status), "message": log.message, "key": log.config.key(), "started": log.started,
            "finished": log.finished, "train_seconds": records[-1].seconds if records else 0.0,
            "diverged_step": log.diverged_epoch, "params": log.params, "device": log.device, **log.info}
    run = run_from_records(log.config, records, meta)
    if log.handoff is not None:
        from .training import handoff_arrays
        run.handoff = handoff_arrays(log.handoff)
    return run
