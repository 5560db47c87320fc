"""Science tests for loopviz.quadratic (Sec. 4.3, App. F): each quantity against an
independent computation — closed forms, sums by hand, seeded random instances."""
from __future__ import annotations

import numpy as np
import pytest

from loopviz import quadratic as q


def random_instance(rng: np.random.Generator, d_v: int, d_r: int, *, diagonal: bool,
                    lam_range: tuple[float, float] = (0.05, 1.0)):
    """A Setting 1 instance; H_V diagonal or rotated by a random orthogonal basis."""
    lam = rng.uniform(*lam_range, size=d_v)
    if diagonal:
        H = np.diag(lam)
    else:
        Q, _ = np.linalg.qr(rng.standard_normal((d_v, d_v)))
        H = Q @ np.diag(lam) @ Q.T
    H_rv = 0.1 * rng.standard_normal((d_r, d_v))
    return lam, H, H_rv, rng.standard_normal(d_r), rng.standard_normal(d_v), rng.standard_normal(d_r)


def gd_by_the_book(H, H_rv, h_r, tv, tr, eta, steps, feedback=True):
    """Eq. 1–2 of App. F.2 written out per block, one step at a time."""
    tvs, trs = [tv.copy()], [tr.copy()]
    for _ in range(steps):
        tv_k, tr_k = tvs[-1], trs[-1]
        pull = H_rv.T @ tr_k if feedback else 0.0
        tvs.append(tv_k - eta * (H @ tv_k + pull))
        trs.append(tr_k - eta * (H_rv @ tv_k - h_r))
    return np.array(tvs), np.array(trs)


# --- gradient descent against closed forms ----------------------------------------

def test_feedback_free_gd_matches_closed_form_for_diagonal_valley():
    rng = np.random.default_rng(0)
    lam, H, H_rv, h_r, tv0, tr0 = random_instance(rng, 6, 3, diagonal=True, lam_range=(0.1, 1.9))
    eta, K = 1.0, 60          # ηλ spans (0.1, 1.9): monotone and hopping directions
    run = q.simulate(H, H_rv, h_r, tv0, tr0, eta, K, feedback=False)
    k = np.arange(K + 1)[:, None]
    rho = 1 - eta * lam
    # θ_V,k = Φ^k θ_V,0 with Φ diagonal (eq. 5)
    np.testing.assert_allclose(run.theta_v, rho**k * tv0, rtol=1e-10, atol=1e-13)
    # θ_R,k = θ_R,0 + kηh_R − Ĉ_k, Ĉ_k = Σ_i θ_i/λ_i (1 − ρ_i^k) H_RV e_i (eq. 3, 6)
    C_hat = ((1 - rho**k) / lam * tv0) @ H_rv.T
    np.testing.assert_allclose(run.theta_r, tr0 + k * eta * h_r - C_hat, rtol=1e-10, atol=1e-12)


def test_gd_with_feedback_matches_closed_form_of_the_block_system():
    """With the river→valley term, GD is z_{k+1} = (I − ηH)z_k + η(0, h_R), H the full block
    Hessian; in H's eigenbasis each coordinate is a scalar affine recurrence."""
    rng = np.random.default_rng(1)
    lam, H_v, H_rv, h_r, tv0, tr0 = random_instance(rng, 5, 3, diagonal=True)
    eta, K = 0.7, 80
    H = np.block([[H_v, H_rv.T], [H_rv, np.zeros((3, 3))]])
    mu, U = np.linalg.eigh(H)
    c0, beta = U.T @ np.concatenate([tv0, tr0]), U.T @ np.concatenate([np.zeros(5), h_r])
    k = np.arange(K + 1)[:, None]
    rho = 1 - eta * mu
    coords = rho**k * c0 + beta * (1 - rho**k) / mu     # η Σ_{j<k} ρ^j = (1 − ρ^k)/μ
    z = coords @ U.T
    run = q.simulate(H_v, H_rv, h_r, tv0, tr0, eta, K)
    np.testing.assert_allclose(run.theta_v, z[:, :5], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(run.theta_r, z[:, 5:], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("feedback", [True, False])
def test_simulate_is_eq_1_2_step_by_step(feedback):
    rng = np.random.default_rng(2)
    _, H, H_rv, h_r, tv0, tr0 = random_instance(rng, 7, 4, diagonal=False)
    run = q.simulate(H, H_rv, h_r, tv0, tr0, 0.9, 50, feedback=feedback)
    tvs, trs = gd_by_the_book(H, H_rv, h_r, tv0, tr0, 0.9, 50, feedback)
    np.testing.assert_allclose(run.theta_v, tvs, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(run.theta_r, trs, rtol=1e-11, atol=1e-13)
    loss = [0.5 * v @ H @ v - h_r @ r + r @ H_rv @ v for v, r in zip(tvs, trs)]
    np.testing.assert_allclose(run.loss, loss, rtol=1e-10, atol=1e-12)


def test_force_is_the_sum_by_hand():
    rng = np.random.default_rng(3)
    _, H, H_rv, h_r, tv0, tr0 = random_instance(rng, 4, 3, diagonal=False)
    eta, K = 0.8, 30
    run = q.simulate(H, H_rv, h_r, tv0, tr0, eta, K)
    assert np.all(run.force[0] == 0)
    for k in range(K + 1):
        by_hand = np.zeros(3)
        for j in range(k):
            by_hand += eta * H_rv @ run.theta_v[j]
        np.testing.assert_allclose(run.force[k], by_hand, rtol=1e-12, atol=1e-14)
    # eq. 3: the river moved by Kηh_R − C_K
    np.testing.assert_allclose(run.theta_r[-1] - tr0, K * eta * h_r - run.force[-1], rtol=1e-10)


# --- Theorem 1: Ĉ_K in closed form and its bound ----------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_unforced_closed_form_equals_feedback_free_simulation(seed):
    """Ĉ_K (eq. 6, closed form) is the force of eq. 1 without −ηH_VRθ_R — and only that."""
    rng = np.random.default_rng(seed)
    lam, H, H_rv, h_r, tv0, tr0 = random_instance(rng, 8, 3, diagonal=False, lam_range=(0.01, 1.9))
    K = 200
    closed = q.unforced_force(H, H_rv, tv0, 1.0, K)
    np.testing.assert_allclose(closed, q.simulate(H, H_rv, h_r, tv0, tr0, 1.0, K,
                                                  feedback=False).force, rtol=1e-8, atol=1e-11)
    with_feedback = q.simulate(H, H_rv, h_r, tv0, tr0, 1.0, K).force
    assert not np.allclose(closed, with_feedback, rtol=1e-3)


def test_geometric_weights_zero_eigenvalue_limit():
    w = q.geometric_weights(np.array([0.0, 0.5]), 0.4, 5)
    np.testing.assert_allclose(w[:, 0], 0.4 * np.arange(6))
    np.testing.assert_allclose(w[:, 1], [sum(0.4 * 0.8**j for j in range(k)) for k in range(6)])


def test_force_bound_formula():
    lam = np.array([2.0, 0.5, 0.25])
    assert q.force_bound(lam, 3.0, 0.5) == pytest.approx(np.sqrt(3) * 1.5 * (0.5 + 2 + 4))
    dom, res = q.force_bound_split(lam, 3.0, 0.5, tau=0.5)
    assert dom == pytest.approx(np.sqrt(3) * 1.5 * 6) and res == pytest.approx(np.sqrt(3) * 1.5 * 0.5)
    assert q.force_bound(np.array([1.0, 0.0]), 1.0, 1.0) == np.inf


def test_theorem1_bound_holds_on_random_stable_instances():
    """‖Ĉ_K‖ ≤ 𝒞 whenever ηλ_max < 2 and d_V ≥ 2: hopping directions weigh at most η < 2/λ_i
    instead of the proof's 1/λ_i, which the √d_V slack absorbs once d_V ≥ 2."""
    rng = np.random.default_rng(4)
    for _ in range(400):
        d_v, d_r = int(rng.integers(2, 30)), int(rng.integers(1, 10))
        lam, H, H_rv, _, tv0, _ = random_instance(rng, d_v, d_r, diagonal=False,
                                                  lam_range=(1e-3, 1.0))
        eta = rng.uniform(0.05, 1.99) / lam.max()
        K = int(rng.integers(1, 3000))
        C_hat = q.unforced_force(H, H_rv, tv0, eta, K)[-1]
        bound = q.force_bound(lam, np.linalg.norm(H_rv, 2), np.linalg.norm(tv0))
        assert np.linalg.norm(C_hat) <= bound


def test_theorem1_bound_holds_without_hopping_in_any_dimension():
    rng = np.random.default_rng(5)
    for _ in range(200):
        d_v = int(rng.integers(1, 6))
        lam, H, H_rv, _, tv0, _ = random_instance(rng, d_v, 2, diagonal=True)
        eta = rng.uniform(0.01, 1.0) / lam.max()             # ηλ ≤ 1: ρ ≥ 0
        K = int(rng.integers(1, 500))
        C_hat = q.unforced_force(H, H_rv, tv0, eta, K)[-1]
        assert np.linalg.norm(C_hat) <= q.force_bound(lam, np.linalg.norm(H_rv, 2),
                                                      np.linalg.norm(tv0)) * (1 + 1e-12)


def test_theorem1_bound_fails_for_a_hopping_one_dimensional_valley():
    """The proof's |1 − ρ^K| ≤ 1 is false for ρ < 0: d_V = 1, ηλ = 1.9, K = 1 gives
    ‖Ĉ_1‖ = ηλ·𝒞 = 1.9 𝒞. Recorded here because the page reports it."""
    H, H_rv, tv0 = np.array([[1.0]]), np.array([[1.0]]), np.array([1.0])
    C_hat = q.unforced_force(H, H_rv, tv0, 1.9, 1)[-1]
    assert np.linalg.norm(C_hat) == pytest.approx(1.9 * q.force_bound(np.array([1.0]), 1.0, 1.0))
    # Only odd K: an even K keeps |1 − ρ^K| ≤ 1, so the same valley stays within 𝒞.
    for K in (2, 4, 10):
        assert np.linalg.norm(q.unforced_force(H, H_rv, tv0, 1.9, K)[-1]) <= q.force_bound(np.array([1.0]), 1.0, 1.0)
    assert np.linalg.norm(q.unforced_force(H, H_rv, tv0, 1.9, 3)[-1]) > q.force_bound(np.array([1.0]), 1.0, 1.0)


# --- Valley spectra, Assumption 1, Corollaries 1–2 --------------------------------

def test_assumption1_checker():
    u = np.array([0.3, 0.4, 0.9, 1.0])
    assert q.check_assumption1(u, np.array([0.01, 0.1, 0.2, 1.0]), 0.5).holds
    fails_a = q.check_assumption1(u, np.array([0.01, 0.1, 0.9, 1.0]), 0.5)
    assert not fails_a.dimension and fails_a.dominance
    fails_b = q.check_assumption1(u, np.array([0.01, 0.45, 0.46, 1.0]), 0.5)
    assert fails_b.m1 == 2 and fails_b.m2 == 3
    assert fails_b.dimension and not fails_b.dominance
    assert "fails" in fails_b.describe()


def test_presets_satisfy_assumption1_and_definition1():
    u, v, a1 = q.valley_pair(20, 1.0, 1.2, 100.0, 0.5)
    assert a1.holds and a1.m2 > a1.m1
    assert u.max() == v.max() == 1.0
    assert u.max() / u.min() == pytest.approx(1.2) and v.max() / v.min() == pytest.approx(100)


def default_comparison(**overrides) -> q.Comparison:
    u, v, _ = q.valley_pair(20, 1.0, 1.2, 100.0, 0.5)
    knobs = dict(d_r=5, coupling=0.002, offset=1.0, drive=1e-5, eta=1.8, steps=1000, tau=0.5)
    knobs.update(overrides)
    return q.compare_valleys(u, v, **knobs)


@pytest.mark.parametrize("setting", [1, 2])
@pytest.mark.parametrize("steps", [300, 1000, 2000])
def test_v_beats_u_under_assumption1(setting, steps):
    cmp = default_comparison(setting=setting, stiffening=0.5 if setting == 2 else 0.0, steps=steps)
    assert cmp.assumption1.holds
    assert cmp.looped.bound > q.MUCH_GREATER * cmp.single.bound           # Corollary 1
    assert cmp.looped.run.loss[-1] < cmp.single.run.loss[-1]              # Corollary 2
    assert all(c.holds for c in cmp.claims), [c for c in cmp.claims if not c.holds]


def test_v_beats_u_for_random_spectra_satisfying_assumption1():
    """Same start and coupling; V has more and smaller small eigenvalues (Assumption 1)."""
    rng = np.random.default_rng(6)
    wins = 0
    for _ in range(20):
        d_v = int(rng.integers(5, 30))
        u = rng.uniform(0.6, 1.0, d_v)
        v = np.concatenate([rng.uniform(0.6, 1.0, 2), rng.uniform(0.01, 0.3, d_v - 2)])
        assert q.check_assumption1(u, v, 0.5).holds
        cmp = q.compare_valleys(u, v, d_r=3, coupling=0.002, offset=1.0, drive=1e-5, eta=1.0,
                                steps=1500, tau=0.5)
        wins += cmp.looped.run.loss[-1] < cmp.single.run.loss[-1]
    assert wins == 20


def test_claims_name_the_broken_assumption():
    diverged = default_comparison(eta=2.1)
    assert "≥ 2" in diverged.claims[0].why_not and not diverged.claims[-1].holds
    upstream = default_comparison(coupling=-0.002)
    assert not upstream.claims[-1].holds and "sign" in upstream.claims[-1].why_not
    uncoupled = default_comparison(coupling=0.0)
    assert not uncoupled.claims[-1].holds and "no valley force" in uncoupled.claims[-1].why_not
    assert uncoupled.claims[2].holds                        # 𝒞_V/𝒞_U does not depend on h̄
    runaway = default_comparison(coupling=0.1)
    assert runaway.claims[-1].holds and "feedback" in runaway.claims[-1].compared
    same = q.u_valley_spectrum(20, 1.0, 1.2)
    no_a1 = q.compare_valleys(same, same, d_r=5, coupling=0.002, offset=1.0, drive=1e-5,
                              eta=1.8, steps=500, tau=0.5)
    assert not no_a1.assumption1.holds
    assert "Assumption 1" in no_a1.claims[2].why_not and "Assumption 1" in no_a1.claims[3].why_not


def test_corollary1_can_fail_although_assumption1_holds():
    """Assumption 1 compares only eigenvalues ≤ τ; 𝒞 also sums those above τ."""
    u = np.full(20, 0.51)                       # m_1 = 0, many cliffs just above τ
    v = np.concatenate([[0.5], np.full(19, 50.0)])
    a1 = q.check_assumption1(u, v, 0.5)
    assert a1.holds and q.force_bound(v, 1, 1) < q.force_bound(u, 1, 1)
    cmp = q.compare_valleys(u, v, d_r=2, coupling=0.002, offset=1.0, drive=1e-5, eta=0.03,
                            steps=100, tau=0.5)
    assert not cmp.claims[2].holds and "above τ" in cmp.claims[2].why_not


# --- Valley hopping -----------------------------------------------------------------

def test_valley_coordinate_alternates_sign_when_hopping():
    lam = np.array([1.5, 0.5])                  # η = 1: ηλ = 1.5 hops, 0.5 does not
    p = q.make_problem(lam, 2, 1e-3, 1.0, 1e-5)
    # 20 steps: later the hop has shrunk (|ρ| = 0.5) below the river's feedback
    run = q.simulate(p.H_valley, p.H_rv, p.h_r, p.theta_v0, p.theta_r0, 1.0, 20)
    hop, calm = run.theta_v[:, 0], run.theta_v[:, 1]
    assert np.all(np.sign(hop[1:]) == -np.sign(hop[:-1]))
    assert np.all(np.sign(calm) == np.sign(calm[0]))


# --- Setting 2 ----------------------------------------------------------------------

def test_setting2_without_stiffening_is_setting1():
    rng = np.random.default_rng(7)
    _, H, H_rv, h_r, tv0, tr0 = random_instance(rng, 6, 3, diagonal=False)
    for feedback in (True, False):
        s1 = q.simulate(H, H_rv, h_r, tv0, tr0, 0.9, 100, feedback=feedback)
        s2 = q.simulate_general(H, 0.0, H_rv, h_r, tv0, tr0, 0.9, 100, feedback=feedback)
        for a, b in zip(s1, s2):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_setting2_is_gradient_descent_and_respects_assumption3():
    rng = np.random.default_rng(8)
    lam, H, H_rv, h_r, tv0, tr0 = random_instance(rng, 5, 2, diagonal=False)
    gamma, eta, K = 0.7, 0.5, 60
    tv0, tr0, h_r, H_rv = 0.5 * tv0, 0.1 * tr0, 0.1 * h_r, 0.2 * H_rv   # a tame, converging run
    run = q.simulate_general(H, gamma, H_rv, h_r, tv0, tr0, eta, K)
    assert eta * run.valley_curvature.max() < 2                # a converging run

    def loss(theta):
        return q.general_loss(H, gamma, H_rv, h_r, theta[:5], theta[5:])

    thetas = np.concatenate([run.theta_v, run.theta_r], axis=1)
    for k in range(K):                           # each step is θ − η∇L, ∇L by central differences
        grad = np.array([(loss(thetas[k] + e) - loss(thetas[k] - e)) / 2e-5 for e in 1e-5 * np.eye(7)])
        np.testing.assert_allclose(thetas[k + 1], thetas[k] - eta * grad, rtol=1e-7, atol=1e-8)
    # Assumption 3: H_Valley(θ_k) ⪰ H^B along the whole path
    assert np.all(run.valley_curvature >= np.sort(lam) - 1e-12)
    np.testing.assert_allclose(run.loss, [loss(np.concatenate([a, b]))
                                          for a, b in zip(run.theta_v, run.theta_r)])


def test_setting2_is_rotation_equivariant():
    """The diagonal fast path (presets) and the rotated general path give the same run
    (a tame run: η·curvature stays below 2, so round-off is not amplified)."""
    rng = np.random.default_rng(9)
    lam, H, H_rv, h_r, tv0, tr0 = random_instance(rng, 6, 3, diagonal=True)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    H_rv, h_r, tv0, tr0 = 0.2 * H_rv, 0.1 * h_r, 0.2 * tv0, 0.1 * tr0
    plain = q.simulate_general(H, 0.8, H_rv, h_r, tv0, tr0, 0.7, 80)
    assert 0.7 * plain.valley_curvature.max() < 2
    turned = q.simulate_general(Q @ H @ Q.T, 0.8, H_rv @ Q.T, h_r, Q @ tv0, tr0, 0.7, 80)
    np.testing.assert_allclose(turned.theta_v, plain.theta_v @ Q.T, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(turned.loss, plain.loss, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(plain.loss, q.general_loss(H, 0.8, H_rv, h_r, plain.theta_v,
                                                          plain.theta_r), rtol=1e-10, atol=1e-13)


def test_theorem2_bound_on_defaults():
    cmp = default_comparison(setting=2, stiffening=0.5)
    for side in (cmp.single, cmp.looped):
        assert side.unforced_norm <= side.bound

