import numpy as np
import pytest
import torch

from loopviz import curvature
from loopviz.toy import models
from loopviz.config import RunConfig
from loopviz.toy.training import prepare


@pytest.fixture(scope="module")
def problem():
    return prepare(RunConfig(d=3, n_train=500))


def random_theta(d, seed, scale=0.5):
    return torch.as_tensor(np.random.default_rng(seed).standard_normal(models.param_count(d)) * scale)


@pytest.mark.parametrize("loops", [1, 3])
def test_hessian_matches_finite_differences_of_the_gradient(problem, loops):
    theta = random_theta(3, loops)
    H = curvature.exact_hessian(lambda p: problem.loss(p, loops), theta).numpy()

    def grad(t):
        t = t.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(problem.loss(t, loops), t)
        return g.numpy()

    h = 1e-6
    fd = np.stack([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h)
                   for e in torch.eye(len(theta), dtype=torch.float64)], axis=1)
    assert np.abs(H - fd).max() <= 1e-6 * max(1.0, np.abs(H).max())
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def test_hessian_matches_two_other_autograd_methods(problem):
    theta = random_theta(3, 9)

    def f(p):
        return problem.loss(p, 3)

    ours = curvature.exact_hessian(f, theta)
    torch.testing.assert_close(ours, torch.autograd.functional.hessian(f, theta), rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(ours, torch.func.hessian(f)(theta), rtol=1e-12, atol=1e-13)


def test_distinct_row_hessian_equals_the_hessian_over_all_samples(problem):
    task, d = problem.task, 3
    theta = random_theta(d, 5)
    token = torch.as_tensor(problem.token)
    position = torch.as_tensor(problem.position)
    inputs = torch.as_tensor(task.train[:, :3])
    targets = torch.as_tensor(task.train[:, 3])
    E_all = models.embed(inputs, token, position)            # [500, d, 3]: one row per sample

    def per_sample_loss(p):
        return torch.nn.functional.cross_entropy(models.logits(p, E_all, 3), targets)

    slow = curvature.exact_hessian(per_sample_loss, theta)
    fast = curvature.exact_hessian(lambda p: problem.loss(p, 3), theta)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)


def test_eigenspectrum_is_ascending_and_exact():
    A = np.random.default_rng(0).standard_normal((6, 6))
    H = A + A.T
    eig = curvature.eigenspectrum(torch.as_tensor(H))
    assert np.all(np.diff(eig) >= 0)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(H).real), eig, atol=1e-10)


def test_entropy_of_a_uniform_histogram_is_log_bins():
    edges = curvature.log_bin_edges(20, 1e-6, 1e2)
    centres = np.sqrt(edges[:-1] * edges[1:])
    assert curvature.matrix_entropy(np.repeat(centres, 3), edges) == pytest.approx(np.log(20))
    assert curvature.matrix_entropy(np.full(50, 1.0), edges) == pytest.approx(0.0)


def test_entropy_bins_clip_out_of_range_values():
    edges = curvature.log_bin_edges(4, 1e-2, 1e2)
    np.testing.assert_array_equal(curvature.bin_index(np.array([0.0, 1e-9, -5e-2, 1e9]), edges), [0, 0, 0, 3])


def test_mutual_information_is_bounded_by_both_entropies():
    rng = np.random.default_rng(1)
    edges = curvature.log_bin_edges(30, 1e-8, 1e2)
    for _ in range(200):
        n = rng.integers(2, 60)
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 2, n)
        b = a * np.exp(rng.normal(0, rng.uniform(0, 3), n))
        mi = curvature.mutual_information(a, b, edges)
        assert -1e-12 <= mi <= min(curvature.matrix_entropy(a, edges), curvature.matrix_entropy(b, edges)) + 1e-12


def test_mutual_information_of_a_spectrum_with_itself_is_its_entropy():
    a = np.geomspace(1e-7, 50, 40)
    edges = curvature.log_bin_edges(10, 1e-8, 1e2)
    assert curvature.mutual_information(a, a, edges) == pytest.approx(curvature.matrix_entropy(a, edges))


def test_valley_columns_follow_definition_1():
    def one(eig):   # the columns of a single spectrum
        return {k: v[0] for k, v in curvature.valley_columns(np.array([eig]), eps=1e-3, delta=1.0, tau=0.5).items()}

    eig = [-0.1, 0.0, 1e-4, 0.2, 0.4, 8.0]
    shape = one(eig)
    assert (len(eig) - shape["n_valley"], shape["n_valley"], shape["n_low_curvature"]) == (3, 3, 2)   # river 3
    assert shape["kappa_valley"] == pytest.approx(40.0) and shape["valley_shape"] == "V"
    u = one([0.0, 1.0, 1.5])
    assert u["valley_shape"] == "U" and u["kappa_valley"] == pytest.approx(1.5)
    empty = one([0.0, 1e-5])
    assert empty["n_valley"] == 0 and empty["valley_shape"] == "-"


def test_assumption_1_dimension_and_dominance():
    single = np.array([0.0, 0.3, 0.45, 2.0, 5.0])
    looped = np.array([0.0, 0.01, 0.1, 0.2, 0.4, 9.0])
    check = curvature.assumption1(single, looped, eps=1e-3, tau=0.5)
    assert (check.m1, check.m2, check.dimension, check.dominance, check.holds) == (2, 4, True, True, True)
    worse = curvature.assumption1(single, np.array([0.0, 0.35, 0.4, 9.0]), eps=1e-3, tau=0.5)
    assert not worse.dimension and not worse.dominance and not worse.holds


def test_spectral_entropy_is_the_papers_formula_read_literally():
    lam = np.array([-2.0, 1.0, 0.5, 0.5, 0.0])
    p = np.abs(lam) / np.abs(lam).sum()
    expected = -sum(x * np.log(x) for x in p if x > 0)
    assert curvature.spectral_entropy(lam) == pytest.approx(expected)
    assert curvature.spectral_entropy(np.ones(7)) == pytest.approx(np.log(7))
    assert curvature.spectral_entropy(np.array([0.0, 0.0, 3.0])) == pytest.approx(0.0)


def test_spectral_mutual_information_is_bounded_and_equals_entropy_on_itself():
    rng = np.random.default_rng(2)
    for _ in range(300):
        n = int(rng.integers(2, 80))
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 2, n)
        b = a * np.exp(rng.normal(0, rng.uniform(0, 3), n)) if rng.random() < 0.7 else rng.standard_normal(n)
        mi = curvature.spectral_mutual_information(a, b)
        assert -1e-12 <= mi <= min(curvature.spectral_entropy(a), curvature.spectral_entropy(b)) + 1e-12
        assert curvature.spectral_mutual_information(a, a) == pytest.approx(curvature.spectral_entropy(a))
        # the same spectrum rescaled has the same p: I = E
        assert curvature.spectral_mutual_information(a, 3 * a) == pytest.approx(curvature.spectral_entropy(a))


def test_spectral_mutual_information_against_a_brute_force_coupling():
    """The comonotone coupling built cell by cell: p_ij = |[P_i-1, P_i] ∩ [Q_j-1, Q_j]|."""
    rng = np.random.default_rng(5)
    for _ in range(50):
        a, b = rng.exponential(size=6), rng.exponential(size=6)
        p, q = np.sort(a)[::-1] / a.sum(), np.sort(b)[::-1] / b.sum()
        P, Q = np.concatenate([[0], np.cumsum(p)]), np.concatenate([[0], np.cumsum(q)])
        joint = np.array([[max(0.0, min(P[i + 1], Q[j + 1]) - max(P[i], Q[j])) for j in range(6)] for i in range(6)])
        np.testing.assert_allclose(joint.sum(1), p, atol=1e-12)
        nz = joint > 0
        brute = float((joint[nz] * np.log(joint[nz] / np.outer(p, q)[nz])).sum())
        assert curvature.spectral_mutual_information(a, b) == pytest.approx(brute, abs=1e-12)


def test_both_definitions_keep_mi_below_both_entropies_on_random_spectra():
    rng = np.random.default_rng(3)
    edges = curvature.log_bin_edges(40, 1e-8, 1e2)
    spectra = rng.standard_normal((30, 60)) * 10.0 ** rng.uniform(-8, 2, (30, 60))
    for definition in curvature.ENTROPY_DEFINITIONS:
        e, mi = curvature.entropy_and_mi(spectra, definition, edges)
        assert np.isnan(mi[0])
        assert np.all(mi[1:] <= np.minimum(e[1:], e[:-1]) + 1e-12) and np.all(mi[1:] >= -1e-12)
    with pytest.raises(ValueError, match="entropy definition"):
        curvature.entropy_and_mi(spectra, "kde", edges)


def _planted(rng, n=600, noise=0.05):
    """Drop over the first 25 %, rise-and-fluctuate to 60 %, plateau after: boundaries 150, 360."""
    a, b = n // 4, int(0.6 * n)
    drop = np.linspace(3.0, 1.0, a)
    k = np.arange(b - a)
    rise = 1.0 + np.linspace(0, 1.5, b - a) + 0.3 * np.sin(k / 5)
    flat = np.full(n - b, 2.5)
    return np.concatenate([drop, rise, flat]) + rng.normal(0, noise, n), (a, b)


def test_phases_are_found_near_the_planted_boundaries():
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for n in (300, 1500):
            y, (a, b) = _planted(rng, n)
            fit = curvature.phase_test(y)
            assert fit.significant and fit.p_value <= 0.05
            labels = fit.labels
            tol = 0.1 * n
            collapse, div, stable = (np.nonzero(labels == k)[0] for k in (1, 2, 3))
            assert collapse[0] <= tol and abs(collapse[-1] + 1 - a) <= tol
            assert abs(div[0] - a) <= tol and abs(div[-1] + 1 - b) <= tol
            assert abs(stable[0] - b) <= tol and stable[-1] == n - 1
            assert np.all(np.diff(labels) >= 0)


def test_iid_noise_has_no_significant_phase_at_the_nominal_rate():
    """The permutation test is exact for exchangeable curves: ≤ α false positives (binomial slack)."""
    flagged = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        y = rng.standard_normal(300) if seed % 2 else rng.exponential(size=300)
        fit = curvature.phase_test(y, permutations=99)
        flagged += fit.significant
        if not fit.significant:
            assert set(fit.labels) == {0} and "no significant phase" in fit.sentence()
    assert flagged <= 6   # P(Binomial(40, 0.05) > 6) ≈ 0.014


def test_time_shuffled_real_entropy_curves_have_no_significant_phase():
    import pandas as pd
    curves = [pd.read_csv(f"assets/default/{m}/records.csv")["entropy"].dropna().to_numpy()
              for m in ("single", "looped")]
    flagged, trials = 0, 0
    for curve in curves:
        for seed in range(20):
            shuffled = np.random.default_rng(seed).permutation(curve)
            flagged += curvature.phase_test(shuffled, permutations=99, seed=seed + 1).significant
            trials += 1
    assert flagged <= 6   # 40 trials at α = 0.05: P(Binomial(40, 0.05) > 6) ≈ 0.014


def test_the_phase_test_is_reproducible_and_flat_curves_are_no_phase():
    y, _ = _planted(np.random.default_rng(0))
    np.testing.assert_array_equal(curvature.phase_test(y).labels, curvature.phase_test(y).labels)
    flat = curvature.phase_test(np.full(40, 2.0))
    assert set(flat.labels) == {0} and not flat.significant
    short = curvature.phase_test(np.array([1.0, 2.0, 0.5]))
    assert set(short.labels) == {0} and "too short" in short.sentence()
    assert set(curvature.detect_phases(np.array([1.0, np.nan] * 20))) == {0}


def test_a_monotone_drop_is_collapse_only_and_a_step_then_plateau_has_no_diversification():
    rng = np.random.default_rng(7)
    drop = np.linspace(3, 1, 400) + rng.normal(0, 0.05, 400)
    labels = curvature.detect_phases(drop)
    assert np.mean(labels == 1) > 0.8 and not np.any(labels == 2)
    step = np.concatenate([np.linspace(3, 1, 100), np.full(300, 1.0)]) + rng.normal(0, 0.05, 400)
    labels = curvature.detect_phases(step)
    assert abs(np.nonzero(labels == 1)[0][-1] - 100) <= 40 and not np.any(labels == 2)
    assert labels[-1] == 3


def test_segment_costs_are_least_squares_line_residuals_by_polyfit():
    rng = np.random.default_rng(9)
    Y = rng.normal(size=(2, 15))
    C = curvature._segment_costs(Y, 3)
    t = np.linspace(0, 1, 15)
    for b in range(2):
        for i in range(15):
            for j in range(i + 1, 16):
                if j - i < 3:
                    assert C[b, i, j] == np.inf
                    continue
                coef = np.polyfit(t[i:j], Y[b, i:j], 1)
                sse = float(((np.polyval(coef, t[i:j]) - Y[b, i:j]) ** 2).sum())
                assert C[b, i, j] == pytest.approx(sse, abs=1e-9)


def test_best_partitions_match_brute_force_enumeration():
    import itertools

    rng = np.random.default_rng(11)
    Y = rng.normal(size=(1, 13)).cumsum(axis=1)
    C = curvature._segment_costs(Y, 3)
    best, _ = curvature._best_partitions(C, 3)
    for k in (1, 2, 3):
        brute = min(sum(C[0, a, b] for a, b in zip((0, *cuts), (*cuts, 13)))
                    for cuts in itertools.combinations(range(1, 13), k - 1))
        assert best[0, k - 1] == pytest.approx(brute)


def test_phase_sentence_speaks_in_epochs():
    y, _ = _planted(np.random.default_rng(1), 300)
    fit = curvature.phase_test(y)
    text = fit.sentence("run", epochs=np.arange(300) * 5)
    first = np.nonzero(fit.labels == 1)[0][0]
    assert f"collapse {5 * first}–" in text


@pytest.mark.parametrize("definition", curvature.ENTROPY_DEFINITIONS)
def test_observation2_lays_entropy_mi_and_phases_on_the_record_epochs(definition):
    """Against the page's former pandas alignment, on records with epochs that have no
    spectrum and a spectrum whose epoch has no record (a live run's snapshot)."""
    import pandas as pd

    from loopviz import stats

    rng = np.random.default_rng(3)
    eigenvalues = np.sort(rng.lognormal(-2, 2, (30, 12)) * rng.choice([-1, 1], (30, 12)), axis=1)
    spectrum_epochs = np.arange(30) * 5
    record_epochs = np.arange(0, 141)            # epoch 145's spectrum has no record yet
    edges = curvature.log_bin_edges(40, 1e-8, 100.0)
    found = curvature.observation2(eigenvalues, spectrum_epochs, record_epochs, definition, edges)

    entropy, mi = curvature.entropy_and_mi(eigenvalues, definition, edges)
    fit = curvature.phase_test(entropy)
    rec = pd.DataFrame({"epoch": record_epochs})
    rows = rec["epoch"].isin(spectrum_epochs).to_numpy()
    where = pd.Series(range(30), index=spectrum_epochs)[rec.loc[rows, "epoch"]].to_numpy()
    for name, values in (("entropy", entropy), ("mutual_info", mi), ("phase", fit.labels)):
        rec[name] = float("nan")
        rec.loc[rows, name] = values[where]
        np.testing.assert_array_equal(found.columns[name], rec[name].to_numpy())
    assert np.isfinite(found.columns["entropy"]).sum() == 29 and np.isnan(found.columns["entropy"][1:5]).all()
    np.testing.assert_array_equal(found.fit.labels, fit.labels)
    rows = rec.dropna(subset=["entropy"])
    assert found.copies == curvature.mi_copy_share(rows["entropy"].to_numpy(), rows["mutual_info"].to_numpy())
    assert found.copies.n == 28 and isinstance(found.copies, stats.Share)
    assert found.sentence("Looped-Attn", spectrum_epochs) == (
        f"{fit.sentence('Looped-Attn', spectrum_epochs)} MI equals min(E_s, E_s+1) at "
        f"{found.copies.text()} of its epochs.")


def test_observation2_sees_a_frozen_spectrum_as_mi_copying_entropy():
    """A planted copy: the same spectrum at every epoch has I(H_s; H_s+1) = E(H_s) (histogram
    reading), so MI equals min(E_s, E_s+1) at every epoch; fresh random spectra never."""
    edges = curvature.log_bin_edges(40, 1e-8, 100.0)
    rng = np.random.default_rng(4)
    frozen = np.tile(np.sort(rng.lognormal(-2, 2, 12)), (20, 1))
    found = curvature.observation2(frozen, np.arange(20), np.arange(20), "histogram", edges)
    assert found.copies.k == found.copies.n == 19
    fresh = np.sort(rng.lognormal(-2, 2, (20, 200)), axis=1)   # many eigenvalues share a bin: a joint, not a copy
    assert curvature.observation2(fresh, np.arange(20), np.arange(20), "histogram", edges).copies.k == 0


def test_entropy_and_mi_in_one_pass_is_the_per_spectrum_definition():
    """entropy_and_mi bins and counts every spectrum at once; each value is still matrix_entropy's
    and mutual_information's, to round-off (negative, zero and tied eigenvalues included)."""
    rng = np.random.default_rng(11)
    spectra = rng.standard_normal((40, 60)) * np.logspace(-9, 2, 60)
    spectra[3] = 0.0
    spectra[7, :30] = spectra[7, 30:]
    edges = curvature.log_bin_edges(40, 1e-8, 100.0)
    entropy, mi = curvature.entropy_and_mi(spectra, "histogram", edges)
    np.testing.assert_allclose(entropy, [curvature.matrix_entropy(e, edges) for e in spectra], rtol=0, atol=1e-14)
    assert np.isnan(mi[0])
    one_by_one = [curvature.mutual_information(a, b, edges) for a, b in zip(spectra, spectra[1:])]
    np.testing.assert_allclose(mi[1:], one_by_one, rtol=0, atol=1e-14)
    assert entropy[3] == 0.0 and mi[4] == 0.0                  # one bin: no entropy, no information
    assert curvature.entropy_and_mi(spectra[:1], "histogram", edges)[1].shape == (1,)


def test_phase_test_in_slices_of_shuffles_is_all_at_once(monkeypatch):
    """phase_test runs its permutation statistics PHASE_ROWS_PER_PASS shuffles at a time (memory:
    ~45 → 10 MB at 1500 epochs); the p-value, labels and fit equal one pass over all of them."""
    rng = np.random.default_rng(4)
    curve = np.r_[np.linspace(3, 1, 100), np.linspace(1, 2, 300), np.full(200, 2.0)] + 0.05 * rng.standard_normal(600)
    for y in (curve, rng.standard_normal(400)):
        sliced = curvature.phase_test(y)
        monkeypatch.setattr(curvature, "PHASE_ROWS_PER_PASS", 10_000)
        whole = curvature.phase_test(y)
        monkeypatch.undo()
        assert sliced.p_value == whole.p_value and sliced.significant == whole.significant
        assert np.array_equal(sliced.labels, whole.labels)
        assert np.array_equal(sliced.fitted, whole.fitted, equal_nan=True)


def test_summarise_spectra_has_each_spectrums_valley_shape():
    """The valley columns, computed for all spectra at once, are Definition 1 applied spectrum by
    spectrum (a plain loop here): empty valleys, one-eigenvalue valleys and exact U/V boundaries included."""
    rng = np.random.default_rng(5)
    spectra = np.sort(rng.standard_normal((30, 12)) * np.logspace(-4, 1, 12), axis=1)
    spectra[0] = -np.abs(spectra[0])                     # no valley at all
    spectra[1] = np.r_[np.zeros(11), 0.5]                 # one valley eigenvalue: κ = 1, U
    spectra[2] = np.r_[np.zeros(10), 0.5, 1.0]            # κ = 1 + δ exactly: still U
    eps, delta, tau = 1e-3, 1.0, 0.05
    edges = curvature.log_bin_edges(20, 1e-8, 100.0)
    columns = curvature.summarise_spectra(spectra, eps, delta, tau, edges)
    for s, e in enumerate(spectra):
        valley = [x for x in e if x > eps]
        kappa = max(valley) / min(valley) if valley else float("nan")
        shape = "-" if not valley else ("U" if kappa <= 1 + delta else "V")
        assert (columns["n_valley"][s], columns["n_low_curvature"][s], columns["valley_shape"][s]) == \
            (len(valley), sum(x <= tau for x in valley), shape)
        assert columns["kappa_valley"][s] == kappa or (np.isnan(kappa) and np.isnan(columns["kappa_valley"][s]))
    assert list(columns["valley_shape"][:3]) == ["-", "U", "U"]
    empty = curvature.summarise_spectra(np.zeros((0, 12)), eps, delta, tau, edges)
    assert all(len(values) == 0 for values in empty.values())
