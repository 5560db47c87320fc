"""A cancel ends a run at the next stage boundary or epoch, keeps what exists, starts nothing new
(issue #9: a cancelled or superseded job must free its core at once)."""
import threading

import numpy as np

from loopviz.config import RunConfig
from loopviz.runs import execute as execute_mod
from loopviz.runs.execute import RunLog, execute
from loopviz.runs.format import run_data_from_log

BASE = RunConfig(d=3, epochs=14, hessian_every=1)
SHIFT = BASE.replace(model="shift", shift_epoch=8)


class CancelAt(RunLog):
    """A log that sets `cancel` as its n-th record arrives: a cancel at a known moment."""

    def __init__(self, config, cancel, n):
        super().__init__(config)
        self.cancel, self.n = cancel, n

    def add_record(self, record):
        super().add_record(record)
        if len(self.records) == self.n:
            self.cancel.set()


def recording_pools(monkeypatch) -> list:
    """Every SpectrumPool that execute creates, and whether any made a worker process."""
    made = []

    class Pool(execute_mod.SpectrumPool):
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(execute_mod, "SpectrumPool", Pool)
    return made


def counting_trainers(monkeypatch, cancel=None, at_epoch=None) -> list:
    """(model, epoch) of every training step; with `cancel`, set it once a Single step reaches at_epoch."""
    steps = []

    class Trainer(execute_mod.Trainer):
        def step_epoch(self):
            super().step_epoch()
            steps.append((self.config.model, self.epoch))
            if cancel is not None and self.config.model == "single" and self.epoch == at_epoch:
                cancel.set()

    monkeypatch.setattr(execute_mod, "Trainer", Trainer)
    return steps


def test_a_cancel_before_the_start_builds_nothing_and_starts_no_worker(monkeypatch):
    pools = recording_pools(monkeypatch)
    steps = counting_trainers(monkeypatch)
    monkeypatch.setattr(execute_mod, "prepare", lambda config: (_ for _ in ()).throw(AssertionError("prepared")))
    cancel = threading.Event()
    cancel.set()
    for config in (BASE.replace(d=8), SHIFT):
        log = execute(config, cancel=cancel, workers=1)
        assert log.status == "cancelled", log.message
        assert log.records == [] and log.spectra == {}
        assert log.message == "cancelled before its first epoch; 0 records and 0 spectra kept"
    assert pools == [] and steps == []


def test_a_cancel_while_training_keeps_the_records_and_spectra_so_far():
    full = execute(BASE, workers=0, chunk=2)
    cancel = threading.Event()
    log = execute(BASE, CancelAt(BASE, cancel, 5), cancel, workers=0, chunk=2)
    assert log.status == "cancelled" and log.message.startswith("cancelled at epoch 4; 5 records")
    assert [r.epoch for r in log.records] == [0, 1, 2, 3, 4]
    # Chunks of two were computed inline at epochs 1 and 3; epoch 4's spectrum is not started.
    assert sorted(log.spectra) == [0, 1, 2, 3]
    for epoch, eig in log.spectra.items():
        np.testing.assert_array_equal(eig, full.spectra[epoch])
    for kept, ref in zip(log.records, full.records):
        np.testing.assert_array_equal(kept.theta, ref.theta)


def test_a_cancel_during_the_stage_one_replay_never_trains_stage_two(monkeypatch):
    pools = recording_pools(monkeypatch)
    cancel = threading.Event()
    steps = counting_trainers(monkeypatch, cancel, at_epoch=3)
    log = execute(SHIFT, cancel=cancel, workers=1)
    assert log.status == "cancelled", log.message
    assert steps == [("single", 1), ("single", 2), ("single", 3)]   # no Stage I epoch 4.., no Stage II
    assert [r.epoch for r in log.records] == [0, 1, 2, 3]           # the replayed records are kept
    assert pools == [] and log.spectra == {}


def test_a_cancel_after_stage_one_is_read_keeps_it_and_never_trains_stage_two(monkeypatch):
    single = run_data_from_log(execute(BASE.replace(model="single"), workers=0))
    assert single.optimizer is not None
    pools = recording_pools(monkeypatch)
    steps = counting_trainers(monkeypatch)
    cancel = threading.Event()
    read = execute_mod._prior_records

    def read_then_cancel(prior, S):
        records = read(prior, S)
        cancel.set()
        return records

    monkeypatch.setattr(execute_mod, "_prior_records", read_then_cancel)
    log = execute(SHIFT, cancel=cancel, workers=1, prior=single)
    assert log.status == "cancelled", log.message
    assert steps == [] and pools == []
    assert [r.epoch for r in log.records] == list(range(SHIFT.shift_epoch + 1))
    assert sorted(log.spectra) == list(range(SHIFT.shift_epoch + 1))   # Stage I's stored spectra
    assert log.message == "cancelled at epoch 8; 9 records and 9 spectra kept"


def test_an_uncancelled_shift_run_still_trains_stage_two(monkeypatch):
    """The checks above must not stop a run nobody cancelled."""
    steps = counting_trainers(monkeypatch)
    log = execute(SHIFT, workers=0)
    assert log.status == "complete"
    assert [r.epoch for r in log.records] == list(range(BASE.epochs + 1))
    assert steps == [("single", e) for e in range(1, 9)] + [("shift", e) for e in range(9, 15)]
    assert sorted(log.spectra) == list(range(BASE.epochs + 1))
