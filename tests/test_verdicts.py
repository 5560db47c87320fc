"""verdicts.py: time-to-reach and the faster / higher / neither verdict, on planted, noisy and shuffled curves."""
import numpy as np
import pandas as pd
import pytest

from loopviz import verdicts

EPOCHS = np.arange(1501)


def staircase(epochs, steps, levels, base=0.37):
    """A learning curve that steps up to levels[k] at epoch steps[k]."""
    y = np.full(epochs.size, base)
    for step, level in zip(steps, levels):
        y[epochs >= step] = level
    return y


def noisy(y, seed, sd=0.01):
    return y + np.random.default_rng(seed).normal(0, sd, y.size)


def test_time_to_reach_is_the_first_crossing_by_brute_force():
    rng = np.random.default_rng(0)
    acc = rng.uniform(0, 1, 200)
    levels = np.array([0.1, 0.5, 0.99, 1.5])
    got = verdicts.time_to_reach(np.arange(200) * 2, acc, levels)
    for level, epoch in zip(levels, got):
        hits = [2 * i for i, a in enumerate(acc) if a >= level]
        assert (np.isnan(epoch) and not hits) or epoch == hits[0]


def test_two_noisy_copies_of_one_curve_are_neither():
    base = staircase(EPOCHS, [150, 400, 500], [0.42, 0.45, 0.53])
    for seed in range(20):
        v = verdicts.compare(EPOCHS, noisy(base, seed), noisy(base, 100 + seed))
        assert v.word == "neither", v.sentence()


def test_shuffled_and_pure_noise_curves_are_neither():
    base = staircase(EPOCHS, [150, 400, 500], [0.42, 0.45, 0.53])
    for seed in range(10):
        rng = np.random.default_rng(seed)
        a, b = rng.permutation(noisy(base, seed)), rng.permutation(noisy(base, seed + 50))
        assert verdicts.compare(EPOCHS, a, b).word == "neither"
        assert verdicts.compare(EPOCHS, rng.normal(0.5, 0.02, EPOCHS.size),
                                rng.normal(0.5, 0.02, EPOCHS.size)).word == "neither"


def test_a_planted_earlier_climb_to_the_same_level_is_faster():
    single = staircase(EPOCHS, [150, 512, 800], [0.42, 0.45, 0.53])
    looped = staircase(EPOCHS, [150, 395, 495], [0.42, 0.45, 0.53])
    for seed in range(5):
        v = verdicts.compare(EPOCHS, noisy(single, seed), noisy(looped, seed + 9))
        assert v.word == "faster", v.sentence()
        assert v.lead > 100 and "faster, not higher" in v.sentence()
    # Cut at the paper's 600 epochs, the same curves read "higher": the horizon artefact.
    assert verdicts.compare(EPOCHS, single, looped, horizon=verdicts.PAPER_EPOCHS).word == "higher"
    # Swapped, Looped is the slow one: neither, and the sentence says who was first.
    v = verdicts.compare(EPOCHS, looped, single)
    assert v.word == "neither" and "Single-Attn reaches the levels" in v.sentence()


def test_a_planted_higher_end_is_higher_and_a_lower_end_lower():
    single = staircase(EPOCHS, [150, 400], [0.42, 0.45])
    looped = staircase(EPOCHS, [150, 400, 500], [0.42, 0.45, 0.53])
    assert verdicts.compare(EPOCHS, noisy(single, 1), noisy(looped, 2)).word == "higher"
    assert verdicts.compare(EPOCHS, noisy(looped, 1), noisy(single, 2)).word == "lower"
    # A 1-point end difference is below the 2-point margin: not higher.
    assert verdicts.compare(EPOCHS, single, single + 0.01).word == "neither"


def test_margin_grows_with_noise():
    base = staircase(EPOCHS, [150], [0.5])
    quiet = verdicts.compare(EPOCHS, noisy(base, 0, 0.001), noisy(base, 1, 0.001))
    loud = verdicts.compare(EPOCHS, noisy(base, 0, 0.2), noisy(base, 1, 0.2))
    assert quiet.margin == pytest.approx(verdicts.MIN_GAP) and loud.margin > quiet.margin


@pytest.mark.parametrize("column", ["acc_high", "val_acc_high"])
def test_bundled_default_pair_verdicts_are_computed(column):
    single = pd.read_csv("assets/default/single/records.csv")
    looped = pd.read_csv("assets/default/looped/records.csv")
    v = verdicts.compare(single["epoch"], single[column], looped[column])
    assert v.word in ("faster", "higher", "neither", "lower")
    assert v.horizon == int(single["epoch"].iloc[-1])
    assert f"{v.final_looped:.3f}" in v.sentence()


def test_shift_sentence_follows_the_numbers():
    jump = {"single_loss": 0.84, "looped_loss": 2.19, "chance_loss": np.log(3), "single_grad_norm": 0.06,
            "looped_grad_norm": 25.0}
    text = verdicts.shift_sentence(232, 1.2, -0.014, -0.034, jump)
    assert "faster" in text and "not 'the same accuracy'" in text and "worse than chance" in text
    assert "as the paper claims" in verdicts.shift_sentence(120, 1.26, 0.0, 0.01, None)
    assert "not faster" in verdicts.shift_sentence(0, 0.97, 0.0, 0.0, dict(jump, looped_loss=0.9))
    assert "no measured speed-up" in verdicts.shift_sentence(5, float("nan"), 0.0, 0.0, None)
    # QA: at epoch 0 there is no Stage I, so no "restarts from worse than chance" (1.100 vs ln 3 = 1.099)
    at_zero = verdicts.shift_sentence(0, 1.01, 0.0, 0.0, dict(jump, single_loss=1.1, looped_loss=1.1))
    assert "no Stage I" in at_zero and "worse than chance" not in at_zero
    # QA: a diverged Looped loss reads 3.1e+11, not 310345109972.637
    late = verdicts.shift_sentence(1500, float("nan"), 0.002, 0.005, dict(jump, looped_loss=310345109972.637))
    assert "3.1e+11 as Looped-Attn" in late and "310345109972" not in late


def test_shift_sweep_sentence_names_the_epochs_that_are_faster_and_as_accurate():
    sweep = pd.DataFrame({"shift_epoch": [0, 100, 200], "speedup": [0.9, 1.1, 1.3],
                          "gap_acc_all": [0.0, 0.01, -0.05], "gap_acc_high": [0.0, -0.01, -0.1]})
    assert "(epochs 100)" in verdicts.shift_sweep_sentence(sweep)
    assert "none of them" in verdicts.shift_sweep_sentence(sweep.iloc[[0, 2]])
    # ×1.1 inside ±20 % timing noise is not "faster".
    assert "none of them" in verdicts.shift_sweep_sentence(sweep, noise=0.2)
    raw = pd.DataFrame({"model": ["looped"] * 3 + ["shift"], "seconds": [3.0, 3.6, 3.3, 1.0]})
    assert verdicts.timing_noise(raw) == pytest.approx(0.6 / 3.3)
    assert "as fast, within timing noise" in verdicts.shift_sentence(0, 1.05, 0.0, 0.0, None, noise=0.2)


def test_home_claims_put_our_number_beside_each_paper_claim():
    rng = np.random.default_rng(0)
    n = EPOCHS.size
    base = {"epoch": EPOCHS, "val_acc_high": 0.5, "acc_all": 0.6, "kappa_valley": 10.0, "valley_shape": "V",
            "loops": 1}
    single = pd.DataFrame({**base, "acc_high": noisy(staircase(EPOCHS, [150, 512, 800], [0.42, 0.45, 0.53]), 1),
                           "entropy": rng.normal(2.0, 0.05, n)})           # structureless entropy
    y = np.concatenate([np.linspace(3, 1, 400), np.linspace(1, 2.5, 500), np.full(n - 900, 2.5)])
    looped = pd.DataFrame({**base, "acc_high": noisy(staircase(EPOCHS, [150, 395, 495], [0.42, 0.45, 0.53]), 2),
                           "entropy": y + rng.normal(0, 0.05, n), "loops": 3})
    shifted = looped.assign(loops=np.where(EPOCHS <= 232, 1, 3), acc_all=0.58, acc_high=0.49)
    claims = verdicts.home_claims(single, looped, shifted, speedup=1.2)
    assert [paper for paper, _ in claims] == list(verdicts.PAPER_CLAIMS.values())
    obs1, obs2, valleys, shift = (ours for _, ours in claims)
    assert "to epoch 600: **higher**" in obs1 and "to epoch 1500: **faster**" in obs1
    assert "Single-Attn: no significant phase" in obs2 and "shows no significant structure" in obs2
    assert "Looped-Attn: collapse, diversification, stabilisation" in obs2
    assert "1501 of 1501" in valleys
    assert "epoch 232" in shift and "×1.20 against pure Looped-Attn (faster)" in shift
    assert "not 'the same accuracy'" in shift


def test_a_speedup_is_shown_only_from_times_measured_the_same_way():
    sweep = pd.DataFrame({"shift_epoch": [50, 100], "speedup": [1.3, 1.1], "repeats": [5, 5]})
    shown, why, value = verdicts.speedup_shown(sweep, 100, True, 9.0, 3.0)
    assert (shown, value) == ("×1.10", 1.1) and "bundled sweep" in why and "median of 5" in why   # sweep first
    shown, why, value = verdicts.speedup_shown(sweep, 75, True, 9.0, 3.0)    # not in the sweep: this server's
    assert (shown, value) == ("×3.00", 3.0) and "trained by this server" in why
    for sweep_or_none in (sweep, None):                                     # mixed provenance: no ratio at all
        shown, why, value = verdicts.speedup_shown(sweep_or_none, 75, False, 9.0, 3.0)
        assert shown == "—" and np.isnan(value) and "not timed together" in why


def planted_task(rng, high_train: float, high_val: float, ic_shift: float) -> dict:
    """Training and validation sets with a planted high-IC share and mean IC (bucket 2 = high)."""
    def split(share):
        bucket = np.where(rng.random(4000) < share, 2, rng.integers(0, 2, 4000))
        return bucket, 5.0 + 3.0 * (bucket == 2) + rng.normal(0, 0.1, 4000)
    (tb, ti), (vb, vi) = split(high_train), split(high_val)
    return {"train_bucket": tb, "train_ic": ti, "val_bucket": vb, "val_ic": vi + ic_shift}


def test_the_loss_gap_is_explained_by_the_mix_only_when_the_mix_says_so():
    rng = np.random.default_rng(0)
    easier = planted_task(rng, 0.3, 0.1, 0.0)      # planted: fewer hard sequences in validation
    text = verdicts.loss_gap_sentence(1.0, 0.8, easier)
    assert "because the validation draw holds fewer rare, hard sequences" in text
    assert verdicts.bucket_mix(easier, "val")[0] == pytest.approx((easier["val_bucket"] == 2).mean())
    same = planted_task(rng, 0.3, 0.3, 0.0)        # the same mix (noise only): no explanation claimed
    assert "not easier by its mix" in verdicts.loss_gap_sentence(1.0, 0.8, same)
    shuffled = dict(easier, val_bucket=easier["train_bucket"], val_ic=easier["train_ic"])
    assert "not easier by its mix" in verdicts.loss_gap_sentence(1.0, 0.8, shuffled)
    harder_ic = planted_task(rng, 0.3, 0.1, 5.0)   # fewer high-IC samples but a higher mean IC: not easier
    assert "not easier by its mix" in verdicts.loss_gap_sentence(1.0, 0.8, harder_ic)
    assert "is not below training loss" in verdicts.loss_gap_sentence(0.8, 1.0, easier)
