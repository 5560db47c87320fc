import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from loopviz.__main__ import main
from loopviz.runs.format import CSV_COLUMNS, RunFormatError, read_run
from tests import reference

TINY = ["--d", "3", "--epochs", "6", "--hessian-every", "2", "--workers", "0"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    assert main(["run", "--model", "single,looped", *TINY, "--out", str(out)]) == 0
    return out


def test_run_writes_every_file_and_numpy_reads_them_without_pickle(tiny_run):
    for model in ("single", "looped"):
        folder = tiny_run / model
        config = json.loads((folder / "config.json").read_text())
        assert config["model"] == model and config["d"] == 3
        records = pd.read_csv(folder / "records.csv")
        assert list(records.columns) == list(CSV_COLUMNS)
        assert list(records["epoch"]) == list(range(7))
        with np.load(folder / "spectra.npz", allow_pickle=False) as s:
            assert list(s["epochs"]) == [0, 2, 4, 6]
            assert s["eigenvalues"].shape == (4, 3 * 9 + 9) and s["eigenvalues"].dtype == np.float64
            assert np.all(np.diff(s["eigenvalues"], axis=1) >= 0)
        with np.load(folder / "weights.npz", allow_pickle=False) as w:
            assert w["W_K"].shape == (7, 3, 3) and w["W_h"].shape == (7, 3, 3)
        with np.load(folder / "task.npz", allow_pickle=False) as t:
            assert t["train_inputs"].shape == (500, 3) and set(np.unique(t["train_bucket"])) <= {0, 1, 2}
        assert read_run(folder).status == "complete"


def test_the_files_alone_recompute_the_recorded_loss_and_spectrum_numbers(tiny_run):
    folder = tiny_run / "looped"
    config = json.loads((folder / "config.json").read_text())
    records = pd.read_csv(folder / "records.csv")
    w = np.load(folder / "weights.npz", allow_pickle=False)
    t = np.load(folder / "task.npz", allow_pickle=False)
    for i in (0, 6):
        theta = np.concatenate([w[k][i].ravel() for k in ("W_K", "W_Q", "W_V", "W_h")])
        loss = reference.mean_cross_entropy(theta, 3, t["token_embedding"], t["position_embedding"],
                                            t["train_inputs"], t["train_targets"], config["loops"])
        assert records.loc[i, "loss"] == pytest.approx(loss, rel=1e-12)
    eig = np.load(folder / "spectra.npz", allow_pickle=False)["eigenvalues"]
    assert records.loc[6, "lambda_max"] == pytest.approx(eig[-1, -1])
    assert np.isnan(records.loc[1, "entropy"]) and np.isfinite(records.loc[2, "entropy"])


def test_existing_output_is_not_overwritten(tiny_run, capsys):
    before = (tiny_run / "looped" / "records.csv").read_text()
    assert main(["run", "--model", "looped", *TINY, "--out", str(tiny_run)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tiny_run / "looped" / "records.csv").read_text() == before


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs"), (["--lr", "0"], "lr"), (["--d", "0"], "d must be"),
    (["--loops", "0"], "loops"), (["--model", "triple"], "unknown model"), (["--d", "x"], "d must be int"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    argv = ["run", "--out", str(out), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unreadable_config_file_is_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"d": 4, "depth": 2}')
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown config field" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2


def test_config_file_reruns_the_same_run(tiny_run, tmp_path):
    config_file = tiny_run / "looped" / "config.json"
    assert main(["run", "--model", "looped", "--config", str(config_file), "--workers", "0",
                 "--out", str(tmp_path)]) == 0
    a = pd.read_csv(tiny_run / "looped" / "records.csv")
    b = pd.read_csv(tmp_path / "looped" / "records.csv")
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_diverging_run_exits_non_zero_and_keeps_records(tmp_path, capsys):
    code = main(["run", "--model", "looped", "--d", "8", "--loops", "8", "--init-scale", "10", "--epochs", "5",
                 "--workers", "0", "--out", str(tmp_path)])
    assert code == 3
    assert "diverged at epoch" in capsys.readouterr().err
    run = read_run(tmp_path / "looped")
    assert run.status == "diverged" and len(run.records) >= 1


def test_a_corrupt_run_is_reported(tiny_run, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run / "single", broken)
    (broken / "spectra.npz").write_bytes(b"not a zip")
    with pytest.raises(RunFormatError, match="spectra.npz"):
        read_run(broken)
    (broken / "weights.npz").unlink()
    with pytest.raises(RunFormatError, match="missing weights.npz"):
        read_run(broken)


def test_sweep_seeds_writes_a_table_and_a_summary(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    assert main(["sweep-seeds", "--seeds", "2", "--d", "3", "--epochs", "5", "--workers", "1",
                 "--out", str(out)]) == 0
    # an explicit --workers is obeyed, however small the sweep (tests/test_sweeps_placement.py: the default)
    assert "2 points on a LocalCluster of 1 worker (--workers 1)" in capsys.readouterr().err
    table = pd.read_csv(out)
    assert list(table["seed"]) == [0, 1]
    np.testing.assert_allclose(table["gap_acc_high"], table["looped_acc_high"] - table["single_acc_high"])
    assert "seeds: Looped − Single" in (tmp_path / "sweep.csv.summary.txt").read_text()


def test_the_module_runs_as_a_program(tmp_path):
    result = subprocess.run([sys.executable, "-m", "loopviz", "run", "--model", "single", "--d", "2", "--epochs",
                             "2", "--workers", "0", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "single" / "records.csv").exists()


@pytest.mark.parametrize("status, records, kept_in, line, code", [
    ("diverged", [1], " in out/looped", "error: looped loss is NaN at epoch 3; records up to it are kept in out/looped",
     3),
    ("diverged", [1], "", "error: looped loss is NaN at epoch 3; records up to it are kept", 3),
    ("failed", [1], " in out/looped", "error: looped failed: loss is NaN at epoch 3", 1),
    ("cancelled", [1], " in out/looped", "looped: loss is NaN at epoch 3 in out/looped", 0),
    ("cancelled", [], " in out/looped", "looped: loss is NaN at epoch 3", 0),   # nothing written: no "in"
    ("cancelled", [1], "", "looped: loss is NaN at epoch 3", 0),
    ("complete", [1], " in out/looped", "", 0),
])
def test_run_and_algo_run_end_a_model_with_one_line_and_its_exit_code(capsys, status, records, kept_in, line, code):
    """foreground.report_end, shared by `run` (kept_in = " in OUT/<model>") and `algo run` (none)."""
    from types import SimpleNamespace

    from loopviz.foreground import report_end
    from loopviz.runs.status import Status

    log = SimpleNamespace(status=Status(status), message="loss is NaN at epoch 3", records=records)
    assert report_end("looped", log, kept_in) == code
    assert capsys.readouterr().err == (line + "\n" if line else "")
