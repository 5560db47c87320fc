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
    f = lambda p: problem.loss(p, 3)
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


def test_valley_shape_follows_definition_1():
    eig = np.array([-0.1, 0.0, 1e-4, 0.2, 0.4, 8.0])
    shape = curvature.valley_shape(eig, eps=1e-3, delta=1.0, tau=0.5)
    assert (shape.n_river, shape.n_valley, shape.n_low_curvature) == (3, 3, 2)
    assert shape.kappa == pytest.approx(40.0) and shape.shape == "V"
    u = curvature.valley_shape(np.array([0.0, 1.0, 1.5]), eps=1e-3, delta=1.0, tau=0.5)
    assert u.shape == "U" and u.kappa == pytest.approx(1.5)
    empty = curvature.valley_shape(np.array([0.0, 1e-5]), eps=1e-3, delta=1.0, tau=0.5)
    assert empty.n_valley == 0 and empty.shape == "-"


def test_assumption_1_dimension_and_dominance():
    single = np.array([0.0, 0.3, 0.45, 2.0, 5.0])
    looped = np.array([0.0, 0.01, 0.1, 0.2, 0.4, 9.0])
    check = curvature.assumption1(single, looped, eps=1e-3, tau=0.5)
    assert (check.m1, check.m2, check.dimension, check.dominance, check.holds) == (2, 4, True, True, True)
    worse = curvature.assumption1(single, np.array([0.0, 0.35, 0.4, 9.0]), eps=1e-3, tau=0.5)
    assert not worse.dimension and not worse.dominance and not worse.holds


def test_phases_are_found_on_a_synthetic_entropy_curve():
    epochs = np.arange(300)
    collapse = np.linspace(3.0, 1.0, 50)
    rise = 1.0 + np.linspace(0, 1.5, 100) + 0.5 * np.linspace(0, 1, 100) * np.sin(np.arange(100) / 3)
    flat = np.full(150, 2.5)
    labels = curvature.detect_phases(np.concatenate([collapse, rise, flat]))
    assert len(labels) == len(epochs)
    assert set(labels[:45]) == {1}
    assert set(labels[55:140]) == {2}
    assert set(labels[160:]) == {3}
    assert np.all(np.diff(labels) >= 0)


def test_a_flat_entropy_curve_is_all_stabilisation():
    assert set(curvature.detect_phases(np.full(40, 2.0))) == {3}
