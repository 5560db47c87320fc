"""The page's numbers: chance levels, intervals, the verdict on planted, equal and noisy runs."""
import numpy as np
import pandas as pd
import pytest

from loopviz.algo import summary
from loopviz.algo.config import AlgoConfig
from loopviz.algo.rundir import AlgoRun, columns


def fake_run(model: str, acc: dict[int, float], seconds=10.0, samples=128, phases=None) -> AlgoRun:
    config = AlgoConfig(model=model, train_max_len=6, test_lengths=tuple(acc), eval_samples=samples).validate()
    row = {c: 0.0 for c in columns(config)}
    row.update(step=100, phase="looped", seconds=seconds, train_acc=1.0)
    for n, a in acc.items():
        row[f"acc_{n}"], row[f"oracle_acc_{n}"], row[f"loops_{n}"] = a, a, n
    records = pd.DataFrame([row], columns=columns(config))
    if phases:
        records = pd.DataFrame([{**row, "phase": p, "seconds": s} for p, s in phases], columns=columns(config))
    return AlgoRun(config, {}, records, np.zeros(0), {}, np.zeros(0), np.zeros((0, 0)))


def test_chance_levels_by_brute_force():
    import itertools
    for n in (1, 3, 5):
        sums = [sum(bits) for bits in itertools.product((0, 1), repeat=n)]
        assert summary.chance("binary_sum", n) == max(sums.count(s) for s in set(sums)) / 2 ** n
        pair_sums = [a + b for a in range(2 ** n) for b in range(2 ** n)]
        assert summary.chance("addition", n) == max(pair_sums.count(s) for s in set(pair_sums)) / 4 ** n
    assert summary.chance("parity", 9) == 0.5 and summary.chance("copy", 3) == 2 ** -3


def test_interval_is_clopper_pearson():
    lo, hi = summary.interval(0.5, 100)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.2, abs=0.02)
    assert summary.interval(1.0, 128)[1] == 1.0


def test_verdict_on_planted_equal_and_noisy_runs():
    beyond = {8: 0.0, 10: 0.0, 12: 0.0}
    single = fake_run("single", {4: 1.0, **{n: 0.5 for n in beyond}})
    looped = fake_run("looped", {4: 1.0, **{n: 0.95 for n in beyond}})
    assert summary.verdict(summary.beyond_training(looped), summary.beyond_training(single))
    assert not summary.verdict(summary.beyond_training(single), summary.beyond_training(looped))
    assert not summary.verdict(summary.beyond_training(single), summary.beyond_training(single))
    # Pure noise: two runs whose accuracies are coin flips at every length never show the effect.
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        a = fake_run("looped", {4: 1.0, **{n: rng.binomial(128, 0.5) / 128 for n in beyond}})
        b = fake_run("single", {4: 1.0, **{n: rng.binomial(128, 0.5) / 128 for n in beyond}})
        hits += summary.verdict(summary.beyond_training(a), summary.beyond_training(b))
    assert hits == 0
    # A gap above MIN_GAP on few samples is not enough when the intervals overlap.
    small_l = fake_run("looped", {8: 0.7}, samples=10)
    small_s = fake_run("single", {8: 0.5}, samples=10)
    assert not summary.verdict(summary.beyond_training(small_l), summary.beyond_training(small_s))


def test_beyond_training_pools_only_the_longer_lengths():
    run = fake_run("looped", {4: 1.0, 6: 1.0, 8: 0.25, 10: 0.75})
    share, lo, hi, count = summary.beyond_training(run)
    assert share == 0.5 and count == 256 and lo < 0.5 < hi


def test_shift_saving():
    looped = fake_run("looped", {4: 1.0}, seconds=100.0)
    shift = fake_run("shift", {4: 1.0}, phases=[("single", 0.0), ("single", 30.0), ("looped", 60.0)])
    saving = summary.shift_saving(looped, shift)
    assert saving["speedup"] == pytest.approx(100 / 60) and saving["stage1_seconds"] == 30.0


def shift_run(meta: dict, grad=(1.0, 1.0, 1.0, 1.0), **changes) -> AlgoRun:
    config = AlgoConfig(model="shift", task="parity", steps=1000, eval_every=100, scp_window=3, scp_patience=2,
                        **changes).validate()
    rows = [{**{c: 0.0 for c in columns(config)}, "step": 100 * i, "phase": "single", "grad_norm": g}
            for i, g in enumerate(grad)]
    records = pd.DataFrame(rows, columns=columns(config))
    return AlgoRun(config, meta, records, np.zeros(0), {}, np.zeros(0), np.zeros((0, 0)))


def test_switch_sentence_says_what_scp_did_with_the_papers_step_beside_it():
    text = summary.switch_sentence(shift_run({"shift_step": 300, "shift_rule": "scp", "plateau_step": 100},
                                             grad=(5.0, 1.0, 1.0, 1.05)))
    assert "best validation loss so far" in text and "δ1 = 0.01" in text and "p = 3" in text
    assert "step 100 (E_plateau)" in text and "W = 2" in text and "step 300 = 30% of 1000" in text
    # the spread over the last p = 3 evaluations (1.0, 1.0, 1.05): 0.05 / 1.0167
    assert f"{0.05 / (3.05 / 3):.2f} (below" in text
    assert "Fig. 11: shift step 30k of 50,001 steps (60%)" in text
    loud = summary.switch_sentence(shift_run({"shift_step": 300, "shift_rule": "scp", "plateau_step": 100},
                                             grad=(1.0, 5.0, 1.0, 1.0)))
    assert "(not below" in loud


def test_switch_sentence_flags_the_fallback_and_the_fixed_step():
    none = summary.switch_sentence(shift_run({"shift_step": 500, "shift_rule": "fallback", "plateau_step": None}))
    assert "**not the paper's rule**" in none and "never stopped falling" in none and "half-way, at step 500" in none
    late = summary.switch_sentence(shift_run({"shift_step": 500, "shift_rule": "fallback", "plateau_step": 900}))
    assert "plateau at step 900" in late and "past the run's end" in late
    window = summary.switch_sentence(shift_run({"shift_step": 500, "shift_rule": "fallback", "plateau_step": None},
                                               scp_plateau="window"))
    assert "the validation loss never stopped" in window
    fixed = summary.switch_sentence(shift_run({"shift_step": 200, "shift_rule": "fixed", "plateau_step": None}))
    assert "fixed at step 200" in fixed and "not by SCP" in fixed
    assert "never switched" in summary.switch_sentence(shift_run({}))


def test_final_training_accuracy_counts_the_samples_behind_it():
    run = fake_run("looped", {8: 0.5})           # train lengths 1-6, 128 samples → 21 per length
    share, lo, hi, count = summary.final_train_accuracy(run)
    assert count == 126 and share == 1.0 and hi == 1.0
    assert lo == pytest.approx(0.025 ** (1 / 126))   # Clopper-Pearson lower bound at 126 of 126


def test_curvature_sentence_counts_the_checkpoints_where_looped_is_steeper():
    labels = {"single": "Single-Attn", "looped": "Looped-Attn"}
    steps = np.array([0, 100, 200, 300])
    single = np.array([[9.0, 1.0], [2.0, 1.0], [2.0, 1.0], [2.0, 1.0]])
    steeper = {"single": (steps, single), "looped": (steps, single + np.array([[0.0], [1], [1], [1]]))}
    text = summary.curvature_sentence(steeper, labels)
    assert "Single-Attn 2 (step 300), Looped-Attn 3 (step 300)" in text
    assert "at 3 of the 3 checkpoints after step 0 (the steeper valley" in text
    assert "sign test p = 0.12, so with 3 checkpoints of one seed this could be chance" in text
    flatter = {"single": (steps, single), "looped": (steps, single - np.array([[0.0], [1], [0], [0]]))}
    assert "at 0 of the 3 checkpoints after step 0 (not the uniformly steeper" in summary.curvature_sentence(
        flatter, labels)
    assert summary.curvature_sentence({}, labels) == ""


def test_same_but_positions_pairs_only_runs_that_differ_in_positions_and_records():
    learned = AlgoConfig(task="parity", model="looped").validate()
    nope = learned.replace(positions="none", model="single", checkpoints=0, hessian_top=2)
    assert summary.same_but_positions(learned, nope)
    assert not summary.same_but_positions(nope, learned)                       # the NoPE one is the second
    assert not summary.same_but_positions(learned, nope.replace(lr=1e-3))      # a science field differs
    assert not summary.same_but_positions(learned, nope.replace(task="copy"))
    assert not summary.same_but_positions(learned, learned)


def test_where_stage_one_came_from_is_said_as_meta_records_it():
    run = fake_run("shift", {8: 0.5})
    assert summary.stage_one_sentence(run) == ""   # made before it was recorded (the bundled runs)
    run.meta.update(stage_one="the Single run in memory")
    assert "handed over in memory, not trained again" in summary.stage_one_sentence(run)
    run.meta.update(stage_one="runs/algo/x/single/handoff.npz")
    assert "read from runs/algo/x/single/handoff.npz, not trained again" in summary.stage_one_sentence(run)
    run.meta.update(stage_one="trained", stage_one_note="handoff.npz: weights differ from weights.npz")
    assert summary.stage_one_sentence(run) == ("Stage I was trained again for this run "
                                               "(handoff.npz: weights differ from weights.npz).")


def test_curvature_sentence_on_planted_and_noise_curves():
    """A steeper valley at every one of 8 checkpoints is said with its sign-test p; on noise
    (the two models' eigenvalues exchangeable) the unqualified claim appears at most ~2^-n."""
    labels = {"single": "Single-Attn", "looped": "Looped-Attn"}
    steps = np.arange(9) * 100
    rng = np.random.default_rng(0)
    single = rng.uniform(1, 2, (9, 2))
    planted = summary.curvature_sentence({"single": (steps, single), "looped": (steps, single + 1)}, labels)
    assert "at 8 of the 8 checkpoints" in planted
    assert "p = 0.0039; checkpoints of one run are not independent" in planted
    unqualified = 0
    for _ in range(2000):
        a, b = rng.uniform(1, 2, (2, 9, 2))
        text = summary.curvature_sentence({"single": (steps, a), "looped": (steps, b)}, labels)
        unqualified += "read it as a hint" in text
    assert unqualified / 2000 <= 2 * 0.5 ** 8
