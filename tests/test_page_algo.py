"""AppTest of the Algorithmic tasks page: bundled runs, a user's run, the verdict, bad files."""
import json
import os
import shutil

import pandas as pd
import pytest

from loopviz.__main__ import main
from tests.apptest_helpers import REPO, app_test, texts


pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAGE = "app_pages/algo.py"
TINY = ["--width", "8", "--heads", "2", "--steps", "20", "--eval-every", "10", "--eval-samples", "8",
        "--train-max-len", "3", "--test-lengths", "2,5", "--checkpoints", "1", "--hessian-top", "2",
        "--hessian-samples", "4", "--batch-size", "8", "--shift-step", "10"]


@pytest.fixture(scope="module")
def user_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("algo-runs")
    assert main(["algo", "run", "--task", "copy", "--model", "single,looped,shift", "--out", str(root / "tiny"),
                 *TINY]) == 0
    return root


@pytest.fixture
def page_env(user_runs, monkeypatch):
    monkeypatch.setitem(os.environ, "LOOPVIZ_ALGO_RUNS", str(user_runs))
    return user_runs


def test_bundled_parity_and_copy_runs_exist():
    for task in ("parity", "copy"):
        for model in ("single", "looped", "shift"):
            assert (REPO / "assets" / "algo" / task / model / "records.csv").is_file()


def test_the_page_opens_on_a_bundled_run_with_every_figure(page_env):
    at = app_test(PAGE).run()
    assert not at.exception
    assert at.selectbox(key="algo_group").value.startswith("bundled:")
    assert len(at.get("plotly_chart")) >= 5
    verdicts = texts(at, "success") + texts(at, "warning")
    assert any("beyond the training lengths" in v and "%" in v for v in verdicts)
    assert any(m.label == "speed-up" for m in at.metric)
    assert any("python -m loopviz algo run" in c.value for c in at.code)


def test_a_users_run_is_listed_and_drawn_with_its_own_numbers(page_env):
    at = app_test(PAGE).run()
    at.selectbox(key="algo_group").set_value("yours: tiny").run()
    assert not at.exception
    assert any("Task copy" in m.value for m in at.markdown)
    looped = pd.read_csv(page_env / "tiny" / "looped" / "records.csv")
    single = pd.read_csv(page_env / "tiny" / "single" / "records.csv")
    verdict = next(v for v in texts(at, "success") + texts(at, "warning") if "beyond the training lengths" in v)
    assert f"Looped-Attn {looped['acc_5'].iloc[-1]:.1%}" in verdict
    assert f"Single-Attn {single['acc_5'].iloc[-1]:.1%}" in verdict
    assert any("switch fixed at step 10" in c.value for c in at.caption)
    at.radio(key="algo_rule").set_value("T = n (the training rule)").run()
    assert not at.exception


def test_planted_generalisation_turns_the_verdict(page_env, tmp_path, monkeypatch):
    planted = tmp_path / "runs"
    shutil.copytree(page_env / "tiny", planted / "planted")
    for model, value in (("looped", 1.0), ("single", 0.0), ("shift", 1.0)):
        path = planted / "planted" / model / "records.csv"
        rec = pd.read_csv(path)
        rec["acc_5"] = value
        rec.to_csv(path, index=False)
    monkeypatch.setitem(os.environ, "LOOPVIZ_ALGO_RUNS", str(planted))
    at = app_test(PAGE).run()
    at.selectbox(key="algo_group").set_value("yours: planted").run()
    assert any("Fig. 14(c) shape appears" in s for s in texts(at, "success"))


def test_a_broken_run_is_a_warning_not_a_crash(page_env, tmp_path, monkeypatch):
    broken = tmp_path / "runs"
    shutil.copytree(page_env / "tiny", broken / "broken")
    (broken / "broken" / "looped" / "weights.npz").write_bytes(b"not a zip")
    meta = json.loads((broken / "broken" / "single" / "meta.json").read_text())
    (broken / "broken" / "single" / "meta.json").write_text(json.dumps({**meta, "status": "cancelled"}))
    monkeypatch.setitem(os.environ, "LOOPVIZ_ALGO_RUNS", str(broken))
    at = app_test(PAGE).run()
    at.selectbox(key="algo_group").set_value("yours: broken").run()
    assert not at.exception
    warnings = texts(at, "warning")
    assert any("looped" in w and "weights.npz" in w for w in warnings)
    assert any("Single-Attn: cancelled" in w for w in warnings)
