"""`python -m loopviz algo run`: files, exit codes, Ctrl-C, divergence, SHIFT's Stage I."""
import json
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from loopviz.__main__ import main
from loopviz.algo import rundir


pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--width", "8", "--heads", "2", "--steps", "30", "--eval-every", "10", "--eval-samples", "8",
        "--train-max-len", "3", "--test-lengths", "2,4", "--checkpoints", "2", "--hessian-top", "2",
        "--hessian-samples", "4", "--batch-size", "8", "--shift-step", "10"]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("algo") / "parity"
    assert main(["algo", "run", "--task", "parity", "--model", "shift,single,looped", "--out", str(out), *TINY]) == 0
    return out


def test_every_file_is_written_and_numpy_reads_it_without_pickle(tiny_runs):
    for model in ("single", "looped", "shift"):
        d = tiny_runs / model
        # The Single run also keeps SHIFT's handoff (weights and AdamW state at the switch).
        extra = ("handoff.npz",) if model == "single" else ()
        assert sorted(p.name for p in d.iterdir()) == sorted(rundir.FILES + extra)
        meta = json.loads((d / "meta.json").read_text())
        assert meta["status"] == "complete" and meta["params"] > 0
        records = pd.read_csv(d / "records.csv")
        assert list(records["step"]) == [0, 10, 20, 30]
        assert {"acc_2", "acc_4", "loops_2", "loops_4", "train_acc", "val_acc"} <= set(records.columns)
        with np.load(d / "weights.npz", allow_pickle=False) as w:
            assert len(w["steps"]) >= 2 and all(len(w[k]) == len(w["steps"]) for k in w.files)
        with np.load(d / "curvature.npz", allow_pickle=False) as c:
            assert c["top"].shape == (len(c["steps"]), 2) and np.isfinite(c["top"]).all()
        run = rundir.read_run(d)
        assert run.config.model == model


def test_shift_reuses_the_single_steps_and_then_loops(tiny_runs):
    single, shift = (pd.read_csv(tiny_runs / m / "records.csv") for m in ("single", "shift"))
    meta = json.loads((tiny_runs / "shift" / "meta.json").read_text())
    assert meta["shift_step"] == 10 and meta["shift_rule"] == "fixed"
    stage1 = shift[shift["step"] <= 10]
    pd.testing.assert_frame_equal(stage1, single[single["step"] <= 10])  # same rows, seconds included
    assert (shift[shift["step"] > 10]["phase"] == "looped").all()
    assert not np.allclose(shift[shift["step"] > 10]["loss"], single[single["step"] > 10]["loss"])
    looped = pd.read_csv(tiny_runs / "looped" / "records.csv")
    assert (looped["phase"] == "looped").all() and (single["phase"] == "single").all()
    assert (single["loops_4"] == 1).all() and (looped["loops_4"] >= 1).all()


@pytest.mark.parametrize("argv, message", [
    (["--task", "sorting"], "task must be one of"),
    (["--model", "single,deep"], "unknown model"),
    (["--preset", "gpu"], "preset must be one of"),
    (["--steps", "ten"], "steps must be int"),
    (["--test-lengths", "4,x"], "test_lengths"),
])
def test_bad_input_is_one_error_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "o"
    assert main(["algo", "run", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not out.exists()


def test_existing_output_is_refused(tiny_runs, capsys):
    assert main(["algo", "run", "--model", "single", "--out", str(tiny_runs), *TINY]) == 2
    assert "already exists" in capsys.readouterr().err


def test_divergence_keeps_the_records_and_exits_3(tmp_path, monkeypatch):
    from loopviz.algo import training

    real = training.Trainer.train_step

    def blow_up(self):
        return float("nan") if self.step >= 15 else real(self)

    monkeypatch.setattr(training.Trainer, "train_step", blow_up)
    out = tmp_path / "o"
    assert main(["algo", "run", "--model", "looped", "--out", str(out), *TINY]) == 3
    meta = json.loads((out / "looped" / "meta.json").read_text())
    assert meta["status"] == "diverged" and meta["diverged_step"] == 15
    records = pd.read_csv(out / "looped" / "records.csv")
    assert list(records["step"]) == [0, 10, 15] and np.isnan(records["loss"].iloc[-1])


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_writes_what_was_computed_and_exits_128_plus_the_signal(tmp_path, signum, code):
    out = tmp_path / "o"
    args = [a for a in TINY]
    args[args.index("--steps") + 1] = "100000"
    args[args.index("--eval-every") + 1] = "20"
    proc = subprocess.Popen([sys.executable, "-m", "loopviz", "algo", "run", "--model", "looped", "--out", str(out),
                             *args], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    for line in proc.stderr:  # wait for a record past step 0
        seen += line
        if "step 20/" in line:
            break
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, seen + err
    meta = json.loads((out / "looped" / "meta.json").read_text())
    assert meta["status"] == "cancelled"
    assert len(pd.read_csv(out / "looped" / "records.csv")) >= 2
