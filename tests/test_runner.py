"""The one runner (runs/runner.py) and the job registry with both experiment families:
toy and algorithmic-task jobs side by side, SHIFT's Stage I handed over, cancels, the
write policy, and the CLI and the registry producing the same run."""
import threading

import numpy as np
import pandas as pd
import pytest

from loopviz.__main__ import main
from loopviz.algo import rundir, training
from loopviz.algo.config import AlgoConfig
from loopviz.algo.job import AlgoLog
from loopviz.config import RunConfig
from loopviz.runs import runner
from loopviz.runs.format import read_run
from loopviz.runs.log import RunLog
from loopviz.runs.store import STORED_STATUSES, JobRegistry, RunStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALGO = AlgoConfig(task="parity", width=8, heads=2, steps=30, eval_every=10, eval_samples=8, train_max_len=3,
                  test_lengths=(2, 4), checkpoints=1, hessian_top=0, hessian_samples=4, batch_size=8, shift_step=10,
                  device="cpu")
TOY = RunConfig(d=2, epochs=4, hessian_every=2)
MODELS = ("single", "looped", "shift")


def wait(reg: JobRegistry, timeout: float = 120) -> None:
    for job in list(reg.jobs.values()):
        job.thread.join(timeout)
        assert not job.thread.is_alive()


def test_toy_and_algo_jobs_share_one_registry(tmp_path):
    reg = JobRegistry(RunStore(tmp_path / "store", bundled=None), max_running=2)
    algo = {m: reg.start(ALGO.replace(model=m), directory=tmp_path / "algo" / m) for m in MODELS}
    toy = [reg.start(TOY.replace(model=m)) for m in ("single", "looped")]
    assert len(reg.jobs) == 5 and isinstance(algo["single"].log, AlgoLog) and type(toy[0].log) is RunLog
    wait(reg)
    assert all(job.saved and job.log.status == "complete" for job in reg.jobs.values())
    for job in toy:   # the toy's runs go into the store, where pages find them
        assert reg.store.load(job.config).config == job.config
    runs = {m: rundir.read_run(tmp_path / "algo" / m) for m in MODELS}
    assert all(runs[m].config == ALGO.replace(model=m) for m in MODELS)
    # SHIFT waited for the Single job (two slots were free) and took its steps as Stage I: the
    # same rows to the switch, training times included (a replay would time them anew).
    single, shift = runs["single"].records, runs["shift"].records
    pd.testing.assert_frame_equal(shift[shift["step"] <= 10], single[single["step"] <= 10])
    assert runs["shift"].meta["shift_step"] == 10 and (shift[shift["step"] > 10]["phase"] == "looped").all()
    assert reg.counts() == {"running": 0, "stopping": 0, "queued": 0, "ended": 5}


def test_an_algo_job_needs_a_directory(tmp_path):
    reg = JobRegistry(RunStore(tmp_path, bundled=None))
    with pytest.raises(ValueError, match="directory"):
        reg.start(ALGO)
    assert reg.jobs == {}


def test_the_cli_and_the_registry_make_the_same_runs(tmp_path):
    """One runner: the same configs give the same numbers through either host."""
    tiny = ["--width", "8", "--heads", "2", "--steps", "30", "--eval-every", "10", "--eval-samples", "8",
            "--train-max-len", "3", "--test-lengths", "2,4", "--checkpoints", "1", "--hessian-top", "0",
            "--hessian-samples", "4", "--batch-size", "8", "--shift-step", "10", "--device", "cpu"]
    assert main(["algo", "run", "--task", "parity", "--out", str(tmp_path / "cli"), *tiny]) == 0
    assert main(["run", "--model", "single,shift", "--d", "2", "--epochs", "4", "--hessian-every", "2",
                 "--shift-epoch", "2", "--workers", "0", "--out", str(tmp_path / "cli-toy")]) == 0
    reg = JobRegistry(RunStore(tmp_path / "store", bundled=None), max_running=2)
    for m in MODELS:
        reg.start(ALGO.replace(model=m), directory=tmp_path / "app" / m)
    toy = [TOY.replace(model=m, shift_epoch=2) for m in ("single", "shift")]
    reg.start(toy[0])
    wait(reg)
    reg.start(toy[1])   # as the SHIFT page does: once the Single run is stored
    wait(reg)
    for m in MODELS:
        cli, app = (rundir.read_run(tmp_path / where / m) for where in ("cli", "app"))
        assert cli.config == app.config
        pd.testing.assert_frame_equal(cli.records.drop(columns="seconds"), app.records.drop(columns="seconds"))
        for name in cli.weights:
            np.testing.assert_array_equal(cli.weights[name], app.weights[name])
    for config in toy:
        cli, app = read_run(tmp_path / "cli-toy" / config.model), reg.store.load(config)
        assert cli.config == app.config
        pd.testing.assert_frame_equal(cli.records.drop(columns="seconds"), app.records.drop(columns="seconds"))
        np.testing.assert_array_equal(cli.eigenvalues, app.eigenvalues)


def test_an_algo_cancel_stops_within_one_step_and_keeps_the_records(monkeypatch):
    cancel = threading.Event()
    steps = []
    real = training.Trainer.train_step

    def counted(self):
        steps.append(self.step)
        if self.step == 14:
            cancel.set()
        return real(self)

    monkeypatch.setattr(training.Trainer, "train_step", counted)
    log = runner.new_log(ALGO)
    assert runner.run(ALGO, log, cancel, target=None).run is None
    assert log.status == "cancelled" and log.message == "cancelled after step 10; 2 records kept"
    assert steps[-1] == 14 and [r.step for r in log.records] == [0, 10]


def test_a_cancelled_shift_never_starts_stage_two(monkeypatch):
    cancel = threading.Event()
    looped = []
    real = training.Trainer.train_step

    def counted(self):
        if self.looped:
            looped.append(self.step)
        if self.step == 5:
            cancel.set()
        return real(self)

    monkeypatch.setattr(training.Trainer, "train_step", counted)
    log = runner.new_log(ALGO.replace(model="shift"))
    runner.run(log.config, log, cancel)
    assert log.status == "cancelled" and looped == [] and [r.step for r in log.records] == [0]


def test_the_keep_policy_and_a_failed_write(tmp_path):
    cancel = threading.Event()
    cancel.set()
    log = runner.new_log(TOY)
    assert runner.run(TOY, log, cancel, target=tmp_path / "a") == runner.Outcome()   # nothing computed
    log = runner.new_log(TOY)
    half = threading.Event()

    class CancelAfterTwo(RunLog):
        def add_record(self, record):
            super().add_record(record)
            if len(self.records) == 2:
                half.set()

    log = CancelAfterTwo(TOY)
    out = runner.run(TOY, log, half, target=tmp_path / "b", keep=STORED_STATUSES, workers=0)
    assert log.status == "cancelled" and out.run is None and not (tmp_path / "b").exists()   # the app's policy
    (tmp_path / "file").write_text("not a directory")
    log = runner.new_log(TOY)
    out = runner.run(TOY, log, threading.Event(), target=tmp_path / "file" / "run", workers=0)
    assert log.status == "complete" and out.run is not None and out.path is None and out.error
