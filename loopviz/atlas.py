"""The reproduction atlas: where, over a grid of configurations, Looped-Attn beats Single-Attn.

The paper's Observation 1 (Sec. 4.1) says Looped-Attn learns the high-information
sequences that Single-Attn does not. On one seed that can be a speed difference or a
higher ceiling, or neither; over seeds it is a share, with an interval. This module
turns two training curves into one atlas row (final and best accuracies, ceilings,
time-to-reach) and a table of rows into per-cell shares, binomial intervals and plain
statements of where the effect holds. Pure functions: no I/O, no training.

Time-to-reach. For a split s (train "acc", held-out "val_acc") the pair's common start is
the higher of the two models' high-IC accuracies at epoch 0 (the same initial weights
give nearly the same predictions). Level g is start + g (g in REACH_GAINS, accuracy
points); a model's time to reach it is the first epoch whose high-IC accuracy is ≥ the
level, NaN if it never does within the run. Both models chase the same number, so
"earlier" compares like with like.

Outcomes per seed: Looped is *faster* at level g when it reaches the level and Single
reaches it later or never; *higher* when its final high-IC accuracy exceeds Single's by
more than HIGHER_MARGIN. The reverse outcomes are Single's; everything else is a tie.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .verdicts import time_to_reach

MODELS = ("single", "looped")
SPLITS = ("acc", "val_acc")                      # training, held-out
BUCKETS = ("low", "high", "all")
REACH_GAINS = (0.02, 0.05, 0.10)                 # accuracy points above the pair's common start
HIGHER_MARGIN = 0.01                             # "higher" = by more than one accuracy point
CONFIDENCE = 0.95
FDR = 0.05                                       # Benjamini–Hochberg level across the cells of a map
TIMING_SUFFIX = "seconds"                        # columns that measure time, not results
REACH_SLACK = 1e-12                              # count ratios equal in exact arithmetic count as reached


def gain_label(gain: float) -> str:
    """0.05 → '5' (accuracy points), used in column names."""
    return f"{round(gain * 100):d}"


def reach_column(model: str, split: str, gain: float) -> str:
    return f"{model}_reach{gain_label(gain)}_{split}_high"


def pair_row(curves: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """One atlas row's results from both models' per-epoch curves.

    curves[model][metric] is the metric at epochs 0..E (metrics as in the run records:
    loss, val_loss, acc_low/high/all, val_acc_low/high/all). Returns final and best
    accuracy per bucket, final losses and their gaps, the common start, each level and
    each model's time to reach it.
    """
    row: dict[str, float] = {}
    for model in MODELS:
        c = curves[model]
        row[f"{model}_epochs_run"] = int(len(c["loss"]) - 1)
        row[f"{model}_diverged"] = bool(not np.all(np.isfinite(c["loss"])))
        for name in ("loss", "val_loss"):
            row[f"{model}_{name}"] = float(c[name][-1])
        for split in SPLITS:
            for bucket in BUCKETS:
                metric = f"{split}_{bucket}"
                row[f"{model}_{metric}"] = float(c[metric][-1])
                row[f"{model}_best_{metric}"] = float(np.nanmax(c[metric]))
    row["gap_loss"] = row["looped_loss"] - row["single_loss"]
    row["gap_val_loss"] = row["looped_val_loss"] - row["single_val_loss"]
    for split in SPLITS:
        metric = f"{split}_high"
        start = max(float(curves[m][metric][0]) for m in MODELS)
        row[f"start_{metric}"] = start
        row[f"gap_{metric}"] = row[f"looped_{metric}"] - row[f"single_{metric}"]
        for gain in REACH_GAINS:
            row[f"level{gain_label(gain)}_{metric}"] = start + gain
            for model in MODELS:
                curve = curves[model][metric]   # one value per epoch 0..E: the index is the epoch
                row[reach_column(model, split, gain)] = float(
                    time_to_reach(np.arange(len(curve)), curve, [start + gain], slack=REACH_SLACK)[0])
    return row


# ------------------------------------------------------------------ outcomes per seed
def measures() -> dict[str, str]:
    """Every outcome the map can show: name → what it means."""
    out = {}
    for split, where in (("acc", "training"), ("val_acc", "held-out")):
        out[f"higher_{split}"] = f"higher in final high-IC {where} accuracy (by > {HIGHER_MARGIN * 100:.0f} point)"
        for gain in REACH_GAINS:
            out[f"faster{gain_label(gain)}_{split}"] = (f"faster to +{gain * 100:.0f} points of high-IC {where} "
                                                         "accuracy above the common start")
    return out


def outcomes(table: pd.DataFrame, measure: str) -> pd.Series:
    """Per row: +1 Looped better, −1 Single better, 0 tie, for one measure (see measures())."""
    if measure.startswith("higher_"):
        split = measure[len("higher_"):]
        gap = (table[f"looped_{split}_high"] - table[f"single_{split}_high"]).to_numpy(float)
        result = np.where(gap > HIGHER_MARGIN, 1, np.where(gap < -HIGHER_MARGIN, -1, 0))
    elif measure.startswith("faster"):
        label, split = measure[len("faster"):].split("_", 1)
        gain = int(label) / 100
        looped = table[reach_column("looped", split, gain)].to_numpy(float)
        single = table[reach_column("single", split, gain)].to_numpy(float)
        # Never reaching is later than any epoch.
        looped, single = np.where(np.isnan(looped), np.inf, looped), np.where(np.isnan(single), np.inf, single)
        with np.errstate(invalid="ignore"):  # never − never is NaN: a tie
            result = np.nan_to_num(np.sign(single - looped), nan=0.0)
    else:
        raise ValueError(f"unknown measure {measure!r}; choose from {', '.join(measures())}")
    return pd.Series(result.astype(int), index=table.index, name=measure)


def difference(table: pd.DataFrame, measure: str) -> pd.Series:
    """The per-seed quantity behind a measure, Looped − Single (accuracy points) for
    'higher', Single − Looped epochs to reach (positive: Looped earlier) for 'faster';
    never reaching counts as the run's last epoch + 1."""
    if measure.startswith("higher_"):
        split = measure[len("higher_"):]
        return table[f"looped_{split}_high"] - table[f"single_{split}_high"]
    label, split = measure[len("faster"):].split("_", 1)
    gain = int(label) / 100
    never = table["epochs"] + 1
    single = table[reach_column("single", split, gain)].fillna(never)
    looped = table[reach_column("looped", split, gain)].fillna(never)
    return single - looped


# ------------------------------------------------------------------ shares and intervals
def binomial_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Clopper–Pearson (exact) interval for a share k / n; (nan, nan) when n = 0."""
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence, method="exact")
    return float(ci.low), float(ci.high)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign test of wins against losses (ties dropped): p-value of 'Looped and
    Single are equally likely to come out ahead'. 1 when nothing was decided."""
    if wins + losses == 0:
        return 1.0
    return float(stats.binomtest(int(wins), int(wins + losses), 0.5).pvalue)


def share_summary(result: pd.Series) -> dict[str, float]:
    """Counts, shares with Clopper–Pearson intervals and the sign test for a set of outcomes."""
    r = result.to_numpy()
    n, wins, losses = int(r.size), int((r > 0).sum()), int((r < 0).sum())
    win_lo, win_hi = binomial_interval(wins, n)
    loss_lo, loss_hi = binomial_interval(losses, n)
    return {"n": n, "wins": wins, "losses": losses, "ties": n - wins - losses,
            "share_win": wins / n if n else float("nan"), "win_low": win_lo, "win_high": win_hi,
            "share_loss": losses / n if n else float("nan"), "loss_low": loss_lo, "loss_high": loss_hi,
            "p_value": sign_test(wins, losses)}


def grid_axes(table: pd.DataFrame, candidates: tuple[str, ...]) -> list[str]:
    """The config columns that take more than one value in this atlas (the grid's axes)."""
    return [c for c in candidates if c in table.columns and table[c].nunique() > 1]


def cell_shares(table: pd.DataFrame, x: str, y: str, measure: str) -> pd.DataFrame:
    """Per (x, y) cell, pooling every seed and every other grid axis: counts, shares with
    95 % Clopper–Pearson intervals, the sign test and its Benjamini–Hochberg q-value over
    the map's cells, and the verdict: 'looped' (Looped ahead significantly), 'single'
    (Single ahead significantly) or 'neither'."""
    result = outcomes(table, measure)
    rows = []
    for (xv, yv), index in table.groupby([x, y], sort=True).groups.items():
        rows.append({x: xv, y: yv, **share_summary(result.loc[index])})
    cells = pd.DataFrame(rows)
    cells["q_value"] = stats.false_discovery_control(cells["p_value"].to_numpy()) if len(cells) else []
    significant = cells["q_value"] < FDR
    cells["verdict"] = np.where(significant & (cells["wins"] > cells["losses"]), "looped",
                                np.where(significant & (cells["losses"] > cells["wins"]), "single", "neither"))
    return cells


def _pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def cell_label(x: str, xv, y: str, yv) -> str:
    return f"{x} = {xv:g}, {y} = {yv:g}" if all(isinstance(v, (int, float)) for v in (xv, yv)) \
        else f"{x} = {xv}, {y} = {yv}"


def where_it_holds(cells: pd.DataFrame, x: str, y: str, measure: str, overall: dict[str, float]) -> list[str]:
    """Plain sentences, from the numbers only: the pooled share, then the cells where
    Looped (or Single) is significantly ahead, or a statement that there are none."""
    what = measures()[measure]
    lines = [f"Over all {overall['n']} runs of the atlas, Looped-Attn is {what} in {overall['wins']} "
             f"({_pct(overall['share_win'])}, 95 % CI {_pct(overall['win_low'])}–{_pct(overall['win_high'])}) and "
             f"Single-Attn in {overall['losses']} ({_pct(overall['share_loss'])}, "
             f"{_pct(overall['loss_low'])}–{_pct(overall['loss_high'])}); sign test p = {overall['p_value']:.2g}."]
    for verdict, who in (("looped", "Looped-Attn"), ("single", "Single-Attn")):
        ahead = cells[cells["verdict"] == verdict]
        if ahead.empty:
            continue
        parts = [f"{cell_label(x, c[x], y, c[y])} ({c['wins'] if verdict == 'looped' else c['losses']}/{c['n']}, "
                 f"q = {c['q_value']:.2g})" for _, c in ahead.iterrows()]
        lines.append(f"{who} is significantly more often ahead (sign test, Benjamini–Hochberg q < {FDR:g} over "
                     f"the {len(cells)} cells) at: " + "; ".join(parts) + ".")
    if (cells["verdict"] == "neither").all():
        line = (f"In no cell of this map is either model significantly more often ahead (Benjamini–Hochberg "
                f"q < {FDR:g} over {len(cells)} cells)")
        if overall["p_value"] < FDR:
            who = "Looped-Attn" if overall["wins"] > overall["losses"] else "Single-Attn"
            line += (f": pooled over the whole atlas {who} is ahead more often, but too rarely or too weakly to "
                     "be located in any one cell with these seeds.")
        else:
            line += f": the paper's effect, read as '{what}', does not appear reliably anywhere in this grid."
        lines.append(line)
    else:
        lines.append(f"In the other {int((cells['verdict'] == 'neither').sum())} cells neither model is "
                     "significantly more often ahead.")
    return lines


# ------------------------------------------------------------------ from a row back to a run
EXPLORER_FIELDS = ("d", "loops", "epochs", "lr", "batch_size", "init_scale", "seed", "data_seed", "transitions",
                   "concentration", "embedding", "keep_all_sequences")
EXPLORER_SPECTRA = 300   # spectra per model the explorer computes for a linked run (hessian_every = epochs // this)


def explorer_params(row: pd.Series) -> dict[str, str]:
    """Query parameters that open one atlas run in the explorer pages (?d=8&seed=3...).
    The atlas trains without spectra; the explorer computes about EXPLORER_SPECTRA per model."""
    params = {}
    for name in EXPLORER_FIELDS:
        value = row[name]
        params[name] = str(bool(value)).lower() if isinstance(value, (bool, np.bool_)) else f"{value:g}" \
            if isinstance(value, (float, np.floating)) else str(value)
    params["hessian_every"] = str(max(1, int(row["epochs"]) // EXPLORER_SPECTRA))
    return params


def config_label(row: pd.Series, axes: list[str]) -> str:
    """'d=8, lr=0.003' for the given axes of one row."""
    return ", ".join(f"{a}={row[a]:g}" if isinstance(row[a], (int, float, np.number)) and not isinstance(row[a], bool)
                     else f"{a}={row[a]}" for a in axes)


def seeds_view(rows: pd.DataFrame, split: str) -> pd.DataFrame:
    """One cell's seeds for the screen: final high-IC accuracies, Bayes, the epoch each model
    first reaches the +5-point level ("never" where it does not: the browser's grid would draw
    a missing value as "None"), the loss gap and the configuration."""
    shown = rows[["seed", f"single_{split}_high", f"looped_{split}_high", f"bayes_{split}_high",
                  f"single_reach5_{split}_high", f"looped_reach5_{split}_high", "gap_loss", "config"]].copy()
    for reach in (f"single_reach5_{split}_high", f"looped_reach5_{split}_high"):
        shown[reach] = [str(int(v)) if pd.notna(v) else "never" for v in shown[reach]]
    return shown
