"""toy/hessian.py's numpy Hessian against autograd (curvature.exact_hessian, the reference),
finite differences of the gradient, and its own batched form; dsyevr against numpy."""
import numpy as np
import pytest
import torch

from loopviz import curvature
from loopviz.config import RunConfig
from loopviz.toy import hessian, models
from loopviz.toy.training import Trainer, prepare


def reference(problem, theta, loops):
    t = torch.as_tensor(theta, dtype=torch.float64)
    return curvature.exact_hessian(lambda p: problem.loss(p, loops), t).numpy()


def relative_error(H, ref):
    return np.abs(H - ref).max() / np.abs(ref).max()


def trained_theta(config, epochs):
    trainer = Trainer(config.replace(epochs=epochs, hessian_every=0))
    list(trainer.run())
    return trainer.theta.copy()


@pytest.fixture(scope="module")
def problems():
    return {d: prepare(RunConfig(d=d)) for d in (4, 16)}


def arrays(problem):
    return problem.E0, problem.train_counts


@pytest.mark.parametrize("loops", [1, 2, 3, 4])
def test_equals_autograd_at_d4_random_and_trained(problems, loops):
    problem = problems[4]
    thetas = [np.random.default_rng(loops).standard_normal(models.param_count(4)) * 0.4,
              trained_theta(problem.config.replace(loops=loops), 100)]
    for theta in thetas:
        H = hessian.loss_hessian(theta, *arrays(problem), loops)
        assert relative_error(H, reference(problem, theta, loops)) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("loops", [1, 2, 3, 4])
def test_equals_autograd_at_d16_random_and_trained(problems, loops):
    problem = problems[16]
    thetas = [np.random.default_rng(10 + loops).standard_normal(models.param_count(16)) * 0.2,
              trained_theta(problem.config.replace(loops=loops), 60)]
    for theta in thetas:
        H = hessian.loss_hessian(theta, *arrays(problem), loops)
        assert relative_error(H, reference(problem, theta, loops)) <= 1e-12


def test_matches_finite_differences_of_the_gradient():
    problem = prepare(RunConfig(d=3, embedding="random"))
    theta = np.random.default_rng(3).standard_normal(models.param_count(3)) * 0.5

    def grad(t):
        t = torch.as_tensor(t).clone().requires_grad_(True)
        (g,) = torch.autograd.grad(problem.loss(t, 3), t)
        return g.numpy()

    h = 1e-6
    fd = np.stack([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h) for e in np.eye(len(theta))], axis=1)
    H = hessian.loss_hessian(theta, *arrays(problem), 3)
    assert np.abs(H - fd).max() <= 1e-6 * max(1.0, np.abs(H).max())
    np.testing.assert_allclose(H, H.T, atol=1e-13)


def test_zero_count_rows_change_nothing():
    problem = prepare(RunConfig(d=3, keep_all_sequences=False, n_train=40))
    E0, counts = arrays(problem)
    theta = np.random.default_rng(4).standard_normal(models.param_count(3)) * 0.5
    used = counts.sum(1) > 0
    assert not used.all()  # the test needs contexts that never occur
    np.testing.assert_array_equal(hessian.loss_hessian(theta, E0, counts, 3),
                                  hessian.loss_hessian(theta, E0[used], counts[used], 3))


def test_batched_weight_sets_equal_one_at_a_time(problems):
    problem = problems[4]
    thetas = np.random.default_rng(5).standard_normal((5, models.param_count(4))) * 0.3
    batched = hessian.loss_hessians(thetas, *arrays(problem), 3)
    for theta, H in zip(thetas, batched):
        np.testing.assert_allclose(H, hessian.loss_hessian(theta, *arrays(problem), 3), rtol=1e-13, atol=1e-15)


def test_spectra_group_by_loops_and_keep_the_order(problems):
    problem = problems[4]
    thetas = np.random.default_rng(6).standard_normal((4, models.param_count(4))) * 0.3
    loops = np.array([3, 1, 3, 1])
    eig = hessian.spectra(thetas, loops, *arrays(problem))
    for theta, T, e in zip(thetas, loops, eig):
        expected = np.linalg.eigvalsh(reference(problem, theta, int(T)))
        np.testing.assert_allclose(e, expected, rtol=0, atol=1e-13 * np.abs(expected).max())


@pytest.mark.parametrize("loops", [1, 3])   # Single-Attn batches more weight sets a call
def test_spectra_across_several_batches_equal_one_at_a_time(problems, loops):
    problem = problems[4]
    n = 2 * hessian.batch_size(4, loops) + 1   # two full batches and a partial one
    thetas = np.random.default_rng(8).standard_normal((n, models.param_count(4))) * 0.3
    eig = hessian.spectra(thetas, [loops] * n, *arrays(problem))
    for theta, e in zip(thetas, eig):
        alone = np.linalg.eigvalsh(hessian.loss_hessian(theta, *arrays(problem), loops))
        np.testing.assert_allclose(e, alone, rtol=0, atol=1e-13 * np.abs(alone).max())


def test_training_arrays_are_the_problems_without_torch(problems):
    for problem in problems.values():
        E0, counts = hessian.training_arrays(problem.config)
        np.testing.assert_array_equal(E0, problem.E0)
        np.testing.assert_array_equal(counts, problem.train_counts)


def test_symmetric_eigenvalues_read_one_triangle_and_match_numpy():
    rng = np.random.default_rng(7)
    M = rng.standard_normal((40, 40))
    H = M + M.T
    expected = np.linalg.eigvalsh(H)
    lower_only = np.tril(H) + np.triu(np.full_like(H, np.nan), 1)   # the other triangle is garbage
    np.testing.assert_allclose(curvature.symmetric_eigenvalues(np.ascontiguousarray(lower_only.T)), expected,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(curvature.symmetric_eigenvalues(H.copy()), expected, rtol=0, atol=1e-12)


def test_the_new_path_does_not_import_torch_func():
    import subprocess
    import sys

    code = ("import sys; from loopviz.config import RunConfig; from loopviz.toy.hessian import spectra, "
            "training_arrays; import numpy as np; E0, c = training_arrays(RunConfig()); "
            "spectra(np.full((1, 60), 0.1), [3], E0, c); "
            "print('torch' in sys.modules, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_a_long_small_run_sends_its_spectra_to_a_worker_with_the_same_numbers(problems):
    from loopviz.runs.execute import WORKER_MIN_SPECTRA, SpectrumPool

    problem = problems[4]
    config = problem.config
    thetas = np.random.default_rng(9).standard_normal((3, models.param_count(4))) * 0.3
    jobs = [(epoch, theta, 3) for epoch, theta in enumerate(thetas)]
    results = {}
    for spectra, workers in ((WORKER_MIN_SPECTRA - 1, 1), (WORKER_MIN_SPECTRA, 0), (WORKER_MIN_SPECTRA, 2)):
        pool = SpectrumPool(config, problem, workers, spectra)
        try:   # one worker at most: a d = 4 spectrum costs less than a training epoch
            assert len(pool.workers) == (1 if workers > 0 and spectra >= WORKER_MIN_SPECTRA else 0)
            pool.submit(jobs)
            results[spectra, workers] = dict(pool.harvest(wait=True))
        finally:
            pool.close()
    inline = results[WORKER_MIN_SPECTRA - 1, 1]
    assert len(results) == 3
    for got in results.values():
        assert sorted(got) == [0, 1, 2]
        for epoch in got:   # the same code in another process (its BLAS may thread differently)
            np.testing.assert_allclose(got[epoch], inline[epoch], rtol=0, atol=1e-13 * np.abs(inline[epoch]).max())


def test_keep_heap_thresholds_are_c_ints_that_grow_with_the_tangents():
    sizes = [8 * 27 * 3 * d * 2 * d * d * hessian.batch_size(d, 1) for d in (1, 4, 16, 32, 64)]
    thresholds = [hessian.heap_thresholds(size) for size in sizes]
    for (mmap, trim), size in zip(thresholds, sizes):
        assert 0 < mmap <= 32 << 20 and 0 < trim < 2**31   # d = 64's 32 tangents would overflow a C int
        assert trim >= min(2**31 - 1, 32 * size) and mmap >= min(32 << 20, 4 * size)
    assert thresholds == sorted(thresholds)
