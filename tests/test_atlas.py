"""The atlas's science: time-to-reach, shares with intervals, and the 'where it holds'
verdicts, checked against brute force, closed forms, planted effects, shuffles and noise."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from loopviz import atlas
from loopviz.verdicts import time_to_reach

SPLITS = atlas.SPLITS


def reach(curve, level: float) -> float:
    """The atlas's time to reach: the one time_to_reach (verdicts.py), epochs 0..E, its slack."""
    return float(time_to_reach(np.arange(len(curve)), curve, [level], slack=atlas.REACH_SLACK)[0])


def test_time_to_reach_is_the_first_epoch_at_or_above_the_level():
    rng = np.random.default_rng(0)
    for _ in range(40):
        curve = rng.choice([0.3, 0.35, 0.4, 0.45], size=30)
        level = float(rng.choice([0.3, 0.35, 0.4, 0.45, 0.5]))
        brute = next((float(i) for i, v in enumerate(curve) if v >= level), float("nan"))
        got = reach(curve, level)
        assert got == brute or (np.isnan(got) and np.isnan(brute))
    # Count ratios equal in exact arithmetic but not in floats still count as reached.
    assert reach(np.array([0.1, 0.3]), 0.1 + 0.2) == 1.0   # 0.3 < 0.1 + 0.2 in floats


def test_the_atlas_reach_and_the_verdicts_reach_are_the_old_two_at_ties():
    """One time_to_reach serves both: with the atlas's slack it is the atlas's former
    `curve >= level - 1e-12`; without it, the verdicts' former exact `>=`. Checked at exact
    ties, float-noise ties (k/n against a level summed in another order) and just below."""
    rng = np.random.default_rng(1)
    n = 7  # accuracies are counts over n samples, as in a run
    differ = 0
    for _ in range(200):
        curve = rng.integers(0, n + 1, size=25) / n
        start = float(rng.integers(0, n + 1)) / n
        level = start + float(rng.choice([0.0, 1 / n, 2 / n, 1 / n - 1e-9, 1e-13]))
        old_atlas = np.flatnonzero(curve >= level - 1e-12)
        old_atlas = float(old_atlas[0]) if old_atlas.size else float("nan")
        assert reach(curve, level) == old_atlas or (np.isnan(old_atlas) and np.isnan(reach(curve, level)))
        epochs = np.arange(curve.size) * 3
        above = curve[None, :] >= np.array([level])[:, None]
        old_verdict = np.where(above.any(axis=1), epochs[np.argmax(above, axis=1)], np.nan)
        np.testing.assert_array_equal(time_to_reach(epochs, curve, [level]), old_verdict)
        differ += bool(np.any((curve < level) & (curve >= level - 1e-12)))
    assert differ > 0   # the draw holds float-noise ties, where the two rules part
    # The one case where the two differ, and must go on differing.
    assert reach(np.array([0.3]), 0.1 + 0.2) == 0.0
    assert np.isnan(time_to_reach(np.array([0]), np.array([0.3]), [0.1 + 0.2])[0])


@pytest.mark.slow
def test_a_bundled_atlas_row_is_recomputed_bit_for_bit():
    """The bundled atlas (assets/atlas.csv) is what the code computes now: one row trained
    again (the cheapest at the largest d, where float rounding is amplified most over 1500
    Adam epochs), every column pair_row writes equal to the stored one, to the bit."""
    from loopviz.config import RunConfig
    from loopviz.sweeps import ATLAS_CONFIG_COLUMNS, read_rows, train_curves

    table = read_rows(Path(__file__).resolve().parent.parent / "assets" / "atlas.csv")
    widest = table[table["d"] == table["d"].max()]
    row = widest.loc[(widest["single_seconds"] + widest["looped_seconds"]).idxmin()]
    config = RunConfig(**{c: row[c].item() if hasattr(row[c], "item") else row[c]
                          for c in ATLAS_CONFIG_COLUMNS if c in row.index})
    pair = dict(zip(atlas.MODELS, train_curves([config.replace(model=m) for m in atlas.MODELS])))
    new = atlas.pair_row(pair)
    assert sum("reach" in c or c.startswith(("level", "start_")) for c in new) == 2 * len(atlas.REACH_GAINS) * 3 + 2
    assert any(c.endswith("val_loss") for c in new)
    for column, value in new.items():
        assert value == row[column] or (np.isnan(value) and np.isnan(row[column])), column


def curves(high: list[float], val_high: list[float] | None = None) -> dict[str, np.ndarray]:
    n = len(high)
    c = {name: np.linspace(1.0, 0.5, n) for name in ("loss", "val_loss")}
    for split in SPLITS:
        for bucket in atlas.BUCKETS:
            c[f"{split}_{bucket}"] = np.full(n, 0.6)
    c["acc_high"] = np.array(high, float)
    c["val_acc_high"] = np.array(val_high if val_high is not None else high, float)
    return c


def test_a_pair_row_against_hand_computed_values():
    single = curves([0.40, 0.40, 0.43, 0.46, 0.46, 0.52])
    looped = curves([0.41, 0.44, 0.47, 0.52, 0.55, 0.53])
    row = atlas.pair_row({"single": single, "looped": looped})
    assert row["start_acc_high"] == 0.41                      # the higher of the two starts
    assert row["single_acc_high"] == 0.52 and row["looped_best_acc_high"] == 0.55
    assert row["single_reach2_acc_high"] == 2 and row["looped_reach2_acc_high"] == 1
    assert row["single_reach5_acc_high"] == 3 and row["looped_reach5_acc_high"] == 2
    assert row["single_reach10_acc_high"] == 5 and row["looped_reach10_acc_high"] == 3
    assert row["gap_acc_high"] == pytest.approx(0.01)
    assert row["gap_loss"] == 0.0 and row["looped_epochs_run"] == 5 and not row["single_diverged"]
    never = atlas.pair_row({"single": curves([0.4] * 4), "looped": curves([0.4, 0.41, 0.42, 0.43])})
    assert np.isnan(never["single_reach2_acc_high"]) and never["looped_reach2_acc_high"] == 2


# ------------------------------------------------------------------ synthetic atlases
def synthetic(rng: np.random.Generator, seeds: int = 10, planted: dict | None = None) -> pd.DataFrame:
    """A 3 × 4 grid (d × lr) whose Single and Looped outcomes are i.i.d. draws from one
    distribution, except in the planted cells where Looped reaches every level 100 epochs
    earlier and ends 15 points higher."""
    planted = planted or {}
    rows = []
    for d in (4, 8, 16):
        for lr in (1e-3, 3e-3, 1e-2, 3e-2):
            for seed in range(seeds):
                row = {"d": d, "lr": lr, "seed": seed, "epochs": 1500}
                shift = planted.get((d, lr), 0)
                for split in SPLITS:
                    base = rng.normal(0.45, 0.03, size=2)
                    row[f"single_{split}_high"], row[f"looped_{split}_high"] = base[0], base[1] + 0.15 * bool(shift)
                    for gain in atlas.REACH_GAINS:
                        epochs = rng.integers(100, 1400, size=2).astype(float)
                        epochs[rng.random(2) < 0.2] = np.nan  # some runs never reach a level
                        row[atlas.reach_column("single", split, gain)] = epochs[0]
                        looped = epochs[1] if not shift else (epochs[0] - shift if not np.isnan(epochs[0]) else 50.0)
                        row[atlas.reach_column("looped", split, gain)] = looped
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("measure", ["faster5_acc", "higher_acc", "faster10_val_acc", "higher_val_acc"])
def test_a_planted_difference_is_found_in_its_cell_only(measure):
    table = synthetic(np.random.default_rng(1), planted={(8, 3e-3): 100})
    cells = atlas.cell_shares(table, "d", "lr", measure)
    found = cells[cells["verdict"] == "looped"]
    assert list(zip(found["d"], found["lr"])) == [(8, 3e-3)]
    planted = found.iloc[0]
    assert planted["wins"] == 10 and planted["share_win"] == 1.0
    lines = atlas.where_it_holds(cells, "d", "lr", measure, atlas.share_summary(atlas.outcomes(table, measure)))
    assert "d = 8, lr = 0.003 (10/10" in " ".join(lines)


def test_shuffling_the_model_labels_removes_a_planted_difference():
    rng = np.random.default_rng(2)
    table = synthetic(rng, planted={(8, 3e-3): 100, (16, 1e-2): 100})
    swap = rng.random(len(table)) < 0.5
    shuffled = table.copy()
    for column in [c for c in table.columns if c.startswith("single_")]:
        other = "looped_" + column[len("single_"):]
        shuffled.loc[swap, column], shuffled.loc[swap, other] = table.loc[swap, other], table.loc[swap, column]
    before = atlas.cell_shares(table, "d", "lr", "faster5_acc")
    after = atlas.cell_shares(shuffled, "d", "lr", "faster5_acc")
    assert (before["verdict"] == "looped").sum() == 2
    assert (after["verdict"] == "neither").all()


def test_identical_models_tie_everywhere_and_no_cell_is_called():
    table = synthetic(np.random.default_rng(3))
    for column in [c for c in table.columns if c.startswith("looped_")]:
        table[column] = table["single_" + column[len("looped_"):]]
    for measure in atlas.measures():
        cells = atlas.cell_shares(table, "d", "lr", measure)
        assert (cells["wins"] == 0).all() and (cells["losses"] == 0).all()
        assert (cells["verdict"] == "neither").all() and (cells["p_value"] == 1).all()
        assert np.allclose(cells["win_high"], 1 - 0.025 ** (1 / 10))   # Clopper–Pearson upper bound at 0/10
        lines = atlas.where_it_holds(cells, "d", "lr", measure, atlas.share_summary(atlas.outcomes(table, measure)))
        assert "does not appear reliably anywhere" in lines[-1]


@pytest.mark.slow
def test_under_the_null_cells_are_rarely_called_and_intervals_cover():
    """40 noise maps of 12 cells: Benjamini–Hochberg at 5 % under the global null calls
    some cell in about 5 % of maps (at most 6 of 40 here); the 95 % intervals of the win share among decided
    seeds cover 1/2 in ≥ 95 % of cells (Clopper–Pearson is conservative)."""
    rng = np.random.default_rng(4)
    maps_with_a_call, covered, cells_seen = 0, 0, 0
    for _ in range(40):
        cells = atlas.cell_shares(synthetic(rng), "d", "lr", "faster5_acc")
        maps_with_a_call += (cells["verdict"] != "neither").any()
        for _, c in cells.iterrows():
            decided = c["wins"] + c["losses"]
            if decided:
                low, high = atlas.binomial_interval(c["wins"], decided)
                covered += low <= 0.5 <= high
                cells_seen += 1
    assert maps_with_a_call <= 6
    assert covered / cells_seen >= 0.95


def test_intervals_match_the_closed_form_and_the_fidelity_audit():
    low, high = atlas.binomial_interval(5, 100)
    assert (round(low, 3), round(high, 3)) == (0.016, 0.113)     # issue 11: 95 % CI 1.6–11.3 %
    # Clopper–Pearson from the beta distribution directly.
    k, n = 7, 20
    assert low == pytest.approx(atlas.binomial_interval(5, 100)[0])
    assert atlas.binomial_interval(k, n) == pytest.approx((stats.beta.ppf(0.025, k, n - k + 1),
                                                           stats.beta.ppf(0.975, k + 1, n - k)))
    assert np.isnan(atlas.binomial_interval(0, 0)[0])
    assert atlas.sign_test(10, 0) == pytest.approx(2 * 0.5 ** 10)
    assert atlas.sign_test(0, 0) == 1.0


def test_outcomes_and_differences_agree_in_sign():
    table = synthetic(np.random.default_rng(5), planted={(4, 1e-3): 100})
    for measure in atlas.measures():
        result = atlas.outcomes(table, measure)
        diff = atlas.difference(table, measure).to_numpy()
        if measure.startswith("faster"):
            assert (np.sign(diff) == result.to_numpy()).all()
        else:
            assert ((diff > atlas.HIGHER_MARGIN) == (result.to_numpy() > 0)).all()
    with pytest.raises(ValueError, match="unknown measure"):
        atlas.outcomes(table, "bigger")


def test_grid_axes_are_the_columns_that_vary():
    table = synthetic(np.random.default_rng(6))
    assert atlas.grid_axes(table, ("d", "lr", "epochs", "alpha")) == ["d", "lr"]


def test_a_weak_effect_everywhere_is_reported_pooled_not_located():
    table = synthetic(np.random.default_rng(7))
    pattern = np.array([0.05] * 6 + [-0.05] * 3 + [0.0])              # per cell: 6 wins, 3 losses, 1 tie
    table["looped_acc_high"] = table["single_acc_high"] + np.tile(pattern, len(table) // len(pattern))
    cells = atlas.cell_shares(table, "d", "lr", "higher_acc")
    overall = atlas.share_summary(atlas.outcomes(table, "higher_acc"))
    assert (cells["wins"] == 6).all() and (cells["verdict"] == "neither").all()
    assert overall["p_value"] < 0.01 and overall["wins"] == 72
    lines = atlas.where_it_holds(cells, "d", "lr", "higher_acc", overall)
    assert "pooled over the whole atlas Looped-Attn is ahead more often" in lines[-1]


def test_the_seeds_view_says_never_for_a_level_not_reached():
    """QA: the clicked cell's table drew "None" where a model never reached the +5-point level."""
    from pathlib import Path

    from loopviz.sweeps import read_rows
    table = read_rows(Path(__file__).resolve().parent.parent / "assets" / "atlas.csv")
    rows = table.assign(config="this cell")
    view = atlas.seeds_view(rows, "acc")
    reach = view["single_reach5_acc_high"]
    missing = rows["single_reach5_acc_high"].isna()
    assert missing.any() and (reach[missing] == "never").all()
    assert (reach[~missing] == rows.loc[~missing, "single_reach5_acc_high"].astype(int).astype(str)).all()
    assert not view.isna().to_numpy().any()
