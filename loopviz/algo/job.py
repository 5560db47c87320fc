"""An algorithmic-task run as a job (App. E.2): its log, its training into that log, its result.

The one runner (runs/runner.py) uses these for the CLI and the app's job registry alike, as
it uses runs/execute.py for the toy. torch is imported by `train`, not with this module.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

from ..runs.log import RunLog
from ..runs.status import Status
from .config import AlgoConfig


@dataclass
class AlgoLog(RunLog):
    """A RunLog of EvalRecords (training.py): progress counts steps, there are no spectra.

    `diverged_epoch` holds the step of the first non-finite loss. A Single run keeps its
    `handoff` (where SHIFT switches, weights and AdamW state): a SHIFT run of the same config
    starts its Stage II from it instead of training Stage I again.
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


def train(config: AlgoConfig, log: AlgoLog, cancel: threading.Event, prior: AlgoLog | None = None) -> AlgoLog:
    """Train `config` into `log`; never raises (a failed run reports in its log).

    prior: for SHIFT, the Single run of the same config (its ended AlgoLog), whose steps
    are Stage I. A set `cancel` stops within one training step, keeping the records so far.
    """
    try:
        if cancel.is_set():
            log.finish(Status.CANCELLED, "cancelled before its first step")
            return log
        from . import training
        from .models import build, param_count
        from .tasks import VOCAB

        problem = training.prepare(config)
        log.device, log.params = str(problem.device), param_count(build(config, VOCAB, problem.max_len))
        trainer = None
        if config.model == "shift":
            stream = training.train_shift(config, *stage_one(config, prior), problem=problem, info=log.info,
                                          cancel=cancel)
        else:
            trainer = training.Trainer(config, config.model == "looped", problem, cancel=cancel)
            stream = trainer.run()
        for record in stream:
            log.add_record(record)
            if record.diverged:
                log.diverged_epoch = record.step
        if trainer is not None and not trainer.looped:
            log.handoff = trainer.handoff or trainer.fallback
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
    return run_from_records(log.config, records, meta)
