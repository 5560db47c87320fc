"""River valleys with momentum and gradient noise (the pure functions in loopviz/quadratic/simulate.py)."""
import numpy as np
import pytest

from loopviz import quadratic as q


def problem(d_v=4, d_r=2):
    return q.make_problem(q.v_valley_spectrum(d_v, 1.0, 30.0), d_r, 0.002, 1.0, 1e-4, 0)


def test_no_momentum_no_noise_is_plain_gradient_descent():
    p = problem()
    args = (p.H_valley, p.H_rv, p.h_r, p.theta_v0, p.theta_r0, 1.5, 200)
    plain, heavy = q.simulate(*args), q.simulate_momentum(*args)
    for a, b in zip(plain, heavy):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-15)
    plain, heavy = q.simulate(*args, feedback=False), q.simulate_momentum(*args, feedback=False)
    assert np.allclose(plain.theta_r, heavy.theta_r, rtol=1e-12, atol=1e-15)


def test_momentum_matches_the_companion_matrix_in_one_dimension():
    lam, eta, mu, K = 0.7, 0.9, 0.6, 40
    run = q.simulate_momentum(np.array([[lam]]), np.zeros((1, 1)), np.zeros(1), np.array([1.0]), np.zeros(1),
                              eta, K, momentum=mu)
    # (θ_{k+1}, θ_k) = M (θ_k, θ_{k−1}) with θ_{k+1} = (1 + μ − ηλ) θ_k − μ θ_{k−1}, θ_{−1} = θ_0
    M = np.array([[1 + mu - eta * lam, -mu], [1.0, 0.0]])
    state = np.array([1.0, 1.0])
    for k in range(K):
        state = M @ state
        assert run.theta_v[k + 1, 0] == pytest.approx(state[0], rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9])
def test_stability_boundary_is_two_times_one_plus_mu(mu):
    eta = 1.0
    for x, stable in ((2 * (1 + mu) * 0.98, True), (2 * (1 + mu) * 1.02, False)):
        assert bool(q.momentum_stable(np.array([x]), eta, mu)[0]) is stable
        run = q.simulate_momentum(np.array([[x]]), np.zeros((1, 1)), np.zeros(1), np.array([1.0]), np.zeros(1),
                                  eta, 3000, momentum=mu)
        last = run.theta_v[-1, 0]
        assert bool(np.isfinite(last) and abs(last) < 1e-3) is stable


def test_noise_is_seeded_and_reaches_its_stationary_variance():
    lam, eta, sigma = 1.5, 1.0, 0.1     # ηλ = 1.5: a hopping direction, ρ = −0.5
    args = (np.array([[lam]]), np.zeros((1, 1)), np.zeros(1), np.array([0.0]), np.zeros(1), eta, 40_000)
    a = q.simulate_momentum(*args, noise=sigma, seed=3)
    assert np.array_equal(a.theta_v, q.simulate_momentum(*args, noise=sigma, seed=3).theta_v)
    assert not np.array_equal(a.theta_v, q.simulate_momentum(*args, noise=sigma, seed=4).theta_v)
    samples = a.theta_v[1000:, 0]
    expected = q.noise_floor_variance(lam, eta, sigma)
    # successive samples correlate with ρ = −0.5; 39 000 of them pin the variance to a few %
    assert samples.var() == pytest.approx(expected, rel=0.05)
    assert abs(samples.mean()) < 5 * np.sqrt(expected / len(samples) * 3)
