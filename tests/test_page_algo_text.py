"""The Algorithmic tasks page's sentences above "Train your own" are the bundled runs' numbers:
SHIFT's switch as SCP made it, training accuracy beside the paper's claim, curvature."""
import json

import pandas as pd
import pytest

from loopviz.algo import rundir, summary
from loopviz.plots.algo import LABELS
from tests.apptest_helpers import REPO, app_test, texts

PAGE = "app_pages/algo.py"
BUNDLED = REPO / "assets" / "algo"


@pytest.mark.parametrize("task", ["parity", "copy", "addition", "binary_sum"])
def test_the_bundled_shift_runs_switched_by_the_papers_rule(task):
    meta = json.loads((BUNDLED / task / "shift" / "meta.json").read_text())
    assert meta["shift_rule"] == "scp"
    config = rundir.read_run(BUNDLED / task / "shift").config
    assert meta["shift_step"] == meta["plateau_step"] + config.scp_patience * config.eval_every
    # SCP recomputed from the Single run's own records gives the same steps
    from loopviz.shift import scp
    single = pd.read_csv(BUNDLED / task / "single" / "records.csv")
    plateau, switch = scp(single["val_loss"], single["grad_norm"], config.scp_delta1, config.scp_window,
                          config.scp_patience, plateau=config.scp_plateau)
    assert (single["step"][plateau], single["step"][switch]) == (meta["plateau_step"], meta["shift_step"])


@pytest.mark.parametrize("task", ["parity", "copy", "addition", "binary_sum", "unique_set"])
def test_the_page_sentences_are_the_runs_numbers(task, monkeypatch, tmp_path):
    monkeypatch.setenv("LOOPVIZ_ALGO_RUNS", str(tmp_path))   # only the bundled runs
    at = app_test(PAGE).run()
    at.selectbox(key="algo_group").set_value(f"bundled: {task}").run()
    assert not at.exception
    runs = {m: rundir.read_run(BUNDLED / task / m) for m in ("single", "looped", "shift")}
    captions = texts(at, "caption")
    switch = next(c for c in captions if c.startswith("SHIFT — "))
    assert switch == " ".join(filter(None, ("SHIFT — " + summary.switch_sentence(runs["shift"]),
                                            summary.stage_one_sentence(runs["shift"]))))
    # Unique Set's Single run never met SCP in 4000 steps: its SHIFT switched half-way, and says so
    fallback = runs["shift"].meta["shift_rule"] == "fallback"
    assert fallback == (task == "unique_set") and ("not the paper's rule" in switch) == fallback
    step = runs["shift"].meta["shift_step"]
    assert (f"switched half-way, at step {step}." if fallback else f"switched at step {step} ") in switch
    accuracy = next(c for c in captions if c.startswith("Final training accuracy"))
    assert "paper, App. E.2.2 (a): near 100 % for all three" in accuracy
    for model, run in runs.items():
        share, lo, hi, count = summary.final_train_accuracy(run)
        assert f"{LABELS[model]} {share:.1%} (95 % CI {lo:.1%}–{hi:.1%}, {count} samples)" in accuracy
        assert share == run.records["train_acc"].iloc[-1]
    curvature = next(c for c in captions if "Largest eigenvalue at the last checkpoint" in c)
    top = float(runs["looped"].curvature_top[-1].max())
    assert f"Looped-Attn {top:.3g} (step {int(runs['looped'].curvature_steps[-1])})" in curvature


def pooled(run) -> str:
    share, lo, hi, _ = summary.beyond_training(run)
    return f"{share:.1%} ({lo:.1%}–{hi:.1%})"


def test_the_learned_positions_warning_quotes_the_runs_without_positions(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOPVIZ_ALGO_RUNS", str(tmp_path))
    at = app_test(PAGE).run()
    at.selectbox(key="algo_group").set_value("bundled: parity").run()
    assert not at.exception
    nope = {m: rundir.read_run(BUNDLED / "parity_nope" / m) for m in ("single", "looped", "shift")}
    assert all(r.config.positions == "none" for r in nope.values())
    warning = next(w for w in texts(at, "warning") if "does **not** appear" in w)
    assert "Without them (bundled: parity_nope, otherwise the same settings)" in warning
    for model, run in nope.items():
        assert f"{LABELS[model]} {pooled(run)}" in warning
    looped_does = summary.verdict(summary.beyond_training(nope["looped"]), summary.beyond_training(nope["single"]))
    assert ("Looped-Attn does generalise" if looped_does else "Looped-Attn does not generalise") in warning
    # on the NoPE group itself there is no sibling to quote, and SHIFT's line is its own numbers
    at.selectbox(key="algo_group").set_value("bundled: parity_nope").run()
    assert not at.exception and not any("Without them" in w for w in texts(at, "warning"))
    shift_line = next(c for c in texts(at, "caption") if c.startswith("SHIFT beyond the training lengths"))
    assert pooled(nope["shift"]) in shift_line


def test_on_the_bundled_copy_single_run_the_window_reading_is_fooled_by_a_spike():
    """README's SCP row: the toy's reading declares a plateau at step 1000, at an upward spike,
    with 0.17 still to fall; the best-so-far reading waits for the real plateau."""
    from loopviz.shift import scp
    single = pd.read_csv(BUNDLED / "copy" / "single" / "records.csv")
    val, grad, steps = single["val_loss"].to_numpy(), single["grad_norm"].to_numpy(), single["step"].to_numpy()
    window = scp(val, grad, 0.01, 3, 2, plateau="window")[0]
    best = scp(val, grad, 0.01, 3, 2, plateau="best")[0]
    assert (steps[window], steps[best]) == (1000, 2800)
    assert val[window] > val[window - 1] and round(val[window] - val.min(), 2) == 0.17


def test_the_accuracy_difference_is_in_percentage_points(monkeypatch, tmp_path):
    """QA: '+0.0%' / '-8.7%' read as a relative change; the difference of two accuracies is points."""
    monkeypatch.setenv("LOOPVIZ_ALGO_RUNS", str(tmp_path))
    at = app_test(PAGE).run()
    at.selectbox(key="algo_group").set_value("bundled: parity").run()
    runs = {m: rundir.read_run(BUNDLED / "parity" / m) for m in ("looped", "shift")}
    saving = summary.shift_saving(runs["looped"], runs["shift"])
    metric = next(m for m in at.metric if m.label == "SHIFT − Looped accuracy")
    assert metric.value == f"{100 * (saving['shift_train_acc'] - saving['looped_train_acc']):+.1f} pp"


def test_the_page_opens_on_the_bundled_parity_runs(monkeypatch, tmp_path):
    """Five tasks are bundled; the page opens on Parity (App. E.2's first, fitted by every model
    at the cpu preset), not on the alphabetically first group (Addition, which it does not fit)."""
    monkeypatch.setenv("LOOPVIZ_ALGO_RUNS", str(tmp_path))
    at = app_test(PAGE).run()
    assert at.selectbox(key="algo_group").options[0] == "bundled: addition"
    assert at.selectbox(key="algo_group").value == "bundled: parity"
