"""stats.py: intervals against closed forms and simulation; the seed sweep's summary."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from loopviz import stats


def test_share_interval_is_clopper_pearson_from_the_beta_quantiles():
    for k, n in ((5, 100), (0, 20), (20, 20), (1, 3)):
        s = stats.share_of(k, n)
        low = 0.0 if k == 0 else sps.beta.ppf(0.025, k, n - k + 1)
        high = 1.0 if k == n else sps.beta.ppf(0.975, k + 1, n - k)
        assert s.low == pytest.approx(low, abs=1e-9) and s.high == pytest.approx(high, abs=1e-9)
    assert stats.share_of(5, 100).text() == "5.0 % (95 % CI 1.6–11.3 %, 5 of 100)"
    assert stats.share([True, False, False, True]).k == 2
    assert stats.share_of(0, 0).text() == "n/a (no cases)"


def test_share_interval_covers_at_least_nominally():
    """Exact coverage Σ_k P(k) 1[p in CI(k)] over every outcome k, for several true p."""
    n = 60
    intervals = [stats.share_of(k, n) for k in range(n + 1)]
    for p in (0.01, 0.07, 0.3, 0.5):
        coverage = sum(sps.binom.pmf(k, n, p) for k, s in enumerate(intervals) if s.low <= p <= s.high)
        assert coverage >= 0.95


def test_mean_interval_is_the_t_interval():
    x = np.array([0.1, -0.3, 0.25, 0.4, 0.05, 0.0])
    m = stats.mean(x)
    half = sps.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    assert m.mean == pytest.approx(x.mean())
    assert (m.low, m.high) == pytest.approx((x.mean() - half, x.mean() + half))
    assert m.p_value == pytest.approx(2 * sps.t.sf(abs(x.mean() / (x.std(ddof=1) / np.sqrt(len(x)))), len(x) - 1))
    assert stats.mean([0.2, 0.2]).p_value == 0.0 and stats.mean([0.0, 0.0]).p_value == 1.0
    assert np.isnan(stats.mean([]).mean) and "no interval" in stats.mean([1.0]).text()


def test_seed_sweep_summary_on_the_bundled_sweep():
    table = pd.read_csv("assets/sweep_seeds.csv")
    summary = stats.seed_sweep_summary(table)
    gap = table["gap_acc_high"].to_numpy()
    assert summary["runs"] == len(table)
    assert summary["up"].k == int((gap >= 0.04).sum()) and summary["down"].k == int((gap <= -0.04).sum())
    assert summary["gap_acc_high"].p_value == pytest.approx(sps.ttest_1samp(gap, 0).pvalue)
    sentence = stats.seed_sweep_sentence(summary)
    assert "95 % CI" in sentence and f"{summary['up'].k} of {len(table)}" in sentence


def test_a_sweep_with_no_effect_has_an_interval_around_zero():
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"gap_acc_high": rng.normal(0, 0.01, 200), "gap_val_acc_high": rng.normal(0, 0.01, 200),
                          "gap_val_acc_all": rng.normal(0, 0.01, 200)})
    s = stats.seed_sweep_summary(table)
    assert s["gap_acc_high"].low < 0 < s["gap_acc_high"].high and s["gap_acc_high"].p_value > 0.01
