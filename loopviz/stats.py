"""Uncertainty for every share and mean the app quotes (scipy.stats), and the seed sweep's summary.

A share k / n is quoted with its exact binomial (Clopper–Pearson) interval; a mean with
its Student-t interval and the two-sided one-sample t-test's p-value against 0. Pure
functions: arrays in, small frozen records and sentences out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95
# A final-accuracy gap of at least this counts as an effect of looping, either way
# (the seed sweep's threshold; docs/background.md, the toy task's seed study).
EFFECT = 0.04


@dataclass(frozen=True)
class Share:
    """k of n, with its exact binomial interval at `level`."""

    k: int
    n: int
    low: float
    high: float
    level: float = LEVEL

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def text(self, digits: int = 1) -> str:
        """'5.0 % (95 % CI 1.6–11.3 %, 5 of 100)'."""
        if not self.n:
            return "n/a (no cases)"
        return (f"{100 * self.value:.{digits}f} % ({100 * self.level:.0f} % CI {100 * self.low:.{digits}f}–"
                f"{100 * self.high:.{digits}f} %, {self.k} of {self.n})")


@dataclass(frozen=True)
class Mean:
    """A sample mean, its Student-t interval at `level`, and the p-value of 'mean = 0'."""

    mean: float
    low: float
    high: float
    p_value: float
    n: int
    level: float = LEVEL

    def text(self, digits: int = 3, signed: bool = True) -> str:
        """'+0.003 (95 % CI −0.001 to +0.007, p = 0.22, n = 100)'."""
        f = f"{{:{'+' if signed else ''}.{digits}f}}"
        if self.n < 2:
            return f"{f.format(self.mean)} (n = {self.n}: no interval)"
        return (f"{f.format(self.mean)} ({100 * self.level:.0f} % CI {f.format(self.low)} to {f.format(self.high)}, "
                f"p = {self.p_value:.2g}, n = {self.n})")


def share(hits, level: float = LEVEL) -> Share:
    """Share of True in a boolean array, with the Clopper–Pearson interval (exact, never too narrow)."""
    hits = np.asarray(hits, dtype=bool).ravel()
    return share_of(int(hits.sum()), int(hits.size), level)


def share_of(k: int, n: int, level: float = LEVEL) -> Share:
    if n <= 0:
        return Share(0, 0, float("nan"), float("nan"), level)
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return Share(int(k), int(n), float(ci.low), float(ci.high), level)


def mean(values, level: float = LEVEL) -> Mean:
    """Mean of finite values with the t interval and the one-sample t-test against 0.

    A sample of identical values has no spread: its interval is the point and p is 0
    when the value is not 0 (1 when it is), rather than scipy's NaN.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Mean(float("nan"), float("nan"), float("nan"), float("nan"), 0, level)
    m = float(x.mean())
    if n < 2:
        return Mean(m, float("nan"), float("nan"), float("nan"), n, level)
    if np.ptp(x) == 0:
        return Mean(m, m, m, 0.0 if m != 0 else 1.0, n, level)
    test = stats.ttest_1samp(x, 0.0)
    ci = test.confidence_interval(confidence_level=level)
    return Mean(m, float(ci.low), float(ci.high), float(test.pvalue), n, level)


def seed_sweep_summary(table: pd.DataFrame, threshold: float = EFFECT) -> dict:
    """The seed sweep (README, Reproduction): how often, and by how much, Looped-Attn beats
    Single-Attn on final high-IC accuracy; every share and mean with its interval."""
    gap = table["gap_acc_high"].to_numpy(dtype=float)
    val_high = table["gap_val_acc_high"].to_numpy(dtype=float)
    val_all = table["gap_val_acc_all"].to_numpy(dtype=float)
    return {
        "runs": len(table),
        "threshold": threshold,
        "gap_acc_high": mean(gap),
        "gap_val_acc_high": mean(val_high),
        "gap_val_acc_all": mean(val_all),
        "median_gap_acc_high": float(np.median(gap)) if gap.size else float("nan"),
        "up": share(gap >= threshold),
        "down": share(gap <= -threshold),
        "up_with_val_down": share((gap >= threshold) & (val_all < 0)),
    }


def seed_sweep_sentence(summary: dict) -> str:
    """The sweep's summary as one sentence with intervals."""
    t = summary["threshold"]
    return (f"{summary['runs']} seeds: Looped − Single final high-IC training accuracy gap mean "
            f"{summary['gap_acc_high'].text()}, median {summary['median_gap_acc_high']:+.3f}; "
            f"≥ +{t:.2f} in {summary['up'].text()}; ≤ −{t:.2f} in {summary['down'].text()}; "
            f"validation high-IC gap mean {summary['gap_val_acc_high'].text()}; "
            f"validation all-IC gap mean {summary['gap_val_acc_all'].text()}.")
