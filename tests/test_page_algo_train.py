"""AppTest of the Algorithmic tasks page's "Train your own": the three models train as server
jobs through the job registry, show live progress, can be cancelled, obey the queue caps, and
the finished runs are listed; the paper preset is refused on a server without a GPU."""
import json
import os
import subprocess
import sys
import threading

import pandas as pd
import pytest

from loopviz.algo import config as algo_config
from loopviz.algo import rundir, training
from loopviz.runs.log import RunLog
from loopviz.runs.store import MAX_PER_OWNER, MAX_WAITING, Job
from loopviz.ui import jobs
from tests.apptest_helpers import REPO, app_test, run_until, texts

pytestmark = pytest.mark.usefixtures("one_torch_thread", "fresh_jobs")

PAGE = "app_pages/algo.py"
# Seconds on a CPU; a test-only preset, added to the page's table by monkeypatch.
TINY = dict(width=8, heads=2, steps=20, eval_every=10, eval_samples=8, train_min_len=1, train_max_len=3,
            test_lengths=(2, 5), checkpoints=1, hessian_top=0, hessian_samples=4, batch_size=8, shift_step=10,
            device="cpu")
LABELS = ("Single-Attn", "Looped-Attn", "SHIFT")


@pytest.fixture
def page(tmp_path, monkeypatch):
    """The page with the tiny preset chosen (task copy) and a private USER_RUNS; returns (at, group)."""
    monkeypatch.setitem(algo_config.PRESETS, "tiny", TINY)
    monkeypatch.setitem(os.environ, "LOOPVIZ_ALGO_RUNS", str(tmp_path / "runs"))
    at = app_test(PAGE).run()
    at.selectbox(key="algo_preset").set_value("tiny")
    at.selectbox(key="algo_task").set_value("copy").run()
    assert not at.exception
    group = rundir.group_directory(tmp_path / "runs", algo_config.preset("tiny", task="copy"), "tiny")
    return at, group


def progress_texts(at) -> list[str]:
    return [element.proto.text for element in at.get("progress")]


def test_train_runs_the_three_models_as_jobs_and_lists_the_runs(page):
    at, group = page
    assert not at.button(key="algo_train").disabled
    at.button(key="algo_train").click().run()
    configs = {m: algo_config.preset("tiny", task="copy", model=m) for m in ("single", "looped", "shift")}
    assert all(jobs.registry().get(c) is not None for c in configs.values())
    # Until the runs are written the jobs count as running; then the page (rerun) lists them.
    at = run_until(at, lambda a: not jobs.any_running(configs), timeout=120).run()
    assert not at.exception
    assert sum("complete in" in s for s in texts(at, "success")) == 3
    for model, c in configs.items():
        assert jobs.registry().get(c).saved
        run = rundir.read_run(group / model)
        assert run.status == "complete" and run.config == c and run.meta["params"] > 0
    # SHIFT's Stage I is the Single job's own steps, handed over (timings included), not retrained.
    single, shift = (pd.read_csv(group / m / "records.csv") for m in ("single", "shift"))
    pd.testing.assert_frame_equal(shift[shift["step"] <= 10], single[single["step"] <= 10])
    assert json.loads((group / "shift" / "meta.json").read_text())["shift_rule"] == "fixed"
    # The finished runs are offered by the run selectbox, and drawn.
    label = f"yours: {group.name}"
    assert any(f"“{label}”" in c.value for c in at.caption)
    at.selectbox(key="algo_group").set_value(label).run()
    assert not at.exception
    assert any("Task copy" in m.value for m in at.markdown)
    assert at.button(key="algo_train").disabled   # stored: nothing left to train
    assert any("python -m loopviz algo run --task copy" in c.value for c in at.code)


@pytest.fixture
def gate(monkeypatch):
    """Training steps wait for this event (at most 30 s), so a test sees jobs mid-run."""
    event = threading.Event()
    real = training.Trainer.train_step

    def held(self):
        event.wait(30)
        return real(self)

    monkeypatch.setattr(training.Trainer, "train_step", held)
    yield event
    event.set()


def test_progress_shows_while_training_and_cancel_cancels_every_job(page, gate):
    at, group = page
    at.button(key="algo_train").click().run()
    at = run_until(at, lambda a: sum("step 0/20" in t for t in progress_texts(a)) == 2, timeout=60)
    shown = progress_texts(at)
    assert any(t.startswith("Single-Attn: step 0/20") for t in shown), shown
    assert any(t.startswith("Looped-Attn: step 0/20") for t in shown), shown
    # Two slots (LOOPVIZ_MAX_JOBS' default): SHIFT waits, for the Single run among others.
    assert any(t.startswith("SHIFT: queued") for t in texts(at, "info"))
    assert at.button(key="algo_train").disabled
    at.button(key="algo_cancel").click().run()
    gate.set()
    at = run_until(at, lambda a: sum("cancelled" in w for w in texts(a, "warning")) == 3, timeout=60)
    assert not at.exception
    cancelled = [w for w in texts(at, "warning") if "cancelled" in w]
    assert len(cancelled) == 3 and all(any(w.startswith(label) for w in cancelled) for label in LABELS)
    assert not group.exists()                        # a cancelled run is not stored
    assert not at.button(key="algo_train").disabled  # and can be trained again


def _fill(owner: str, n: int, started: bool) -> None:
    """n unfinished toy jobs of `owner` in the page's registry (never run: no thread)."""
    from loopviz.config import RunConfig

    reg = jobs.registry()
    for i in range(n):
        config = RunConfig(d=2, epochs=3, seed=1000 + i + (0 if started else 500))
        job = Job(config, RunLog(config), owner=owner)
        job.started_at = 1.0 if started else None
        reg.jobs[config.key()] = job


@pytest.mark.parametrize("who, message", [("this session", "this session already has"),
                                          ("others", "already queued on this server")])
def test_the_queue_caps_apply_to_algo_jobs(page, who, message):
    at, group = page
    if who == "this session":
        at.session_state["jobs_session_id"] = "visitor"
        _fill("visitor", MAX_PER_OWNER, started=True)
    else:
        _fill("someone else", MAX_WAITING, started=False)
    before = set(jobs.registry().jobs)
    at.button(key="algo_train").click().run()
    assert not at.exception
    assert any(e.startswith("Not queued:") and message in e for e in texts(at, "error"))
    assert set(jobs.registry().jobs) == before
    jobs.registry().jobs.clear()   # the fakes have no threads to end


@pytest.mark.parametrize("cuda", [False, True])
def test_the_paper_preset_needs_a_gpu(page, monkeypatch, cuda):
    import torch

    from loopviz.toy import training

    monkeypatch.setattr(training, "cuda_possible", lambda: cuda)   # an NVIDIA driver present (or not)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    at, _ = page
    at.selectbox(key="algo_preset").set_value("paper").run()
    assert not at.exception
    refusal = [w for w in texts(at, "warning") if "needs a GPU" in w]
    assert at.button(key="algo_train").disabled == (not cuda)
    assert bool(refusal) == (not cuda)
    if refusal:
        assert "50,001 steps" in refusal[0]
    assert any("--preset paper" in c.value for c in at.code)   # the command line stays the alternative


@pytest.mark.slow
def test_the_page_loads_without_torch_until_the_paper_preset_is_picked():
    """Picking `paper` asks torch for a GPU only where an NVIDIA driver is present."""
    from loopviz.toy.training import cuda_possible

    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(REPO / PAGE)!r}, default_timeout=60).run()\n"
            "assert not at.exception and at.selectbox(key='algo_preset').value == 'cpu'\n"
            "print('torch' in sys.modules)\n"
            "at.selectbox(key='algo_preset').set_value('paper').run()\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", str(cuda_possible())]


def test_the_time_a_preset_takes_is_the_bundled_runs_measured_time(page):
    at, _ = page
    assert any("No bundled run was made with these settings" in c.value for c in at.caption)   # tiny
    at.selectbox(key="algo_preset").set_value("cpu").run()
    def settings(path):   # a run's config without what may differ (task, model)
        return {k: v for k, v in json.loads(path.read_text()).items() if k not in ("task", "model")}

    cpu = {k: v for k, v in json.loads(algo_config.preset("cpu", task="parity").to_json()).items()
                         if k not in ("task", "model")}
    metas = [json.loads((path.parent / "meta.json").read_text())
             for path in (REPO / "assets" / "algo").glob("*/*/config.json") if settings(path) == cpu]
    assert len(metas) == 15   # the five tasks, three models each, made with the cpu preset (parity_nope is not)
    walls = [(m["finished"] - m["started"]) / 60 for m in metas]
    trains = [m["train_seconds"] for m in metas]
    assert any(f"took {min(walls):.0f}–{max(walls):.0f} min each" in c.value
               and f"({min(trains):.0f}–{max(trains):.0f} s of it training)" in c.value for c in at.caption)
    # A bundled run made with other settings does not count.
    assert rundir.timings(REPO / "assets" / "algo", algo_config.preset("cpu", task="copy", steps=4001)) == []


@pytest.mark.parametrize("user_runs", ["none", "unreadable"])
def test_with_no_run_to_show_train_and_its_command_are_still_drawn(tmp_path, monkeypatch, user_runs):
    """No bundled runs (a copy of the page with no assets/algo/ beside it) and no readable run
    of the user's: the page says so, and Train your own and its command are drawn, not stopped."""
    import shutil

    from streamlit.testing.v1 import AppTest

    (tmp_path / "app_pages").mkdir()
    shutil.copy(REPO / PAGE, tmp_path / PAGE)   # the page's REPO is now tmp_path: its BUNDLED is empty
    runs = tmp_path / "runs"
    if user_runs == "unreadable":
        (runs / "g" / "single").mkdir(parents=True)
        (runs / "g" / "single" / "config.json").write_text(algo_config.preset("cpu", task="copy").to_json())
        (runs / "g" / "single" / "records.csv").write_text("not,a\nrun")
    monkeypatch.setitem(os.environ, "LOOPVIZ_ALGO_RUNS", str(runs))
    at = AppTest.from_file(str(tmp_path / PAGE), default_timeout=60).run()
    assert not at.exception
    if user_runs == "none":
        assert any("No algorithmic-task runs found" in e for e in texts(at, "error"))
    else:
        assert at.selectbox(key="algo_group").value == "yours: g" and texts(at, "warning")
    assert texts(at, "subheader") == ["Train your own"]
    assert not at.button(key="algo_train").disabled
    assert at.code[0].value.startswith("python -m loopviz algo run --task parity --model single,looped,shift")
