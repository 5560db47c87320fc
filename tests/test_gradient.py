"""toy/gradient.py's numpy logits, loss and gradient against torch autograd through
models.logits / weighted_cross_entropy (the peer), the complex-step derivative (exact to
round-off, independent of both), central finite differences, and its own run axis."""
import numpy as np
import pytest
import torch

from loopviz.config import RunConfig
from loopviz.toy import gradient, models
from loopviz.toy.training import Trainer, evaluate, prepare


def arrays(problem):
    """E0 [1, 27, d, n] and train counts [1, 27, V] in the canonical layout."""
    return gradient.canonical(problem.E0[None]), gradient.canonical(problem.train_counts[None])


def autograd(problem, theta, loops):
    t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    out = models.logits(t, torch.as_tensor(problem.E0), loops)
    loss = models.weighted_cross_entropy(out, torch.as_tensor(problem.train_counts))
    (grad,) = torch.autograd.grad(loss, t)
    return out.detach().numpy(), loss.item(), grad.numpy()


def relative(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def problems():
    return {d: prepare(RunConfig(d=d)) for d in (3, 4, 8)}


def trained_theta(config, epochs):
    trainer = Trainer(config.replace(epochs=epochs, hessian_every=0))
    list(trainer.run())
    return np.asarray(trainer.state().theta)


@pytest.mark.parametrize("d", [3, 4, 8])
@pytest.mark.parametrize("loops", [1, 2, 3, 4])
def test_equals_autograd_at_random_and_trained_weights(problems, d, loops):
    problem = problems[d]
    E0, counts = arrays(problem)
    thetas = [np.random.default_rng(10 * d + loops).standard_normal(models.param_count(d)) * 0.5,
              trained_theta(problem.config.replace(model="looped" if loops > 1 else "single", loops=max(loops, 2)),
                            60)]
    for theta in thetas:
        out, loss, grad = gradient.loss_and_gradient(theta[None], E0, counts, loops)
        ref_out, ref_loss, ref_grad = autograd(problem, theta, loops)
        assert relative(out[0], ref_out) <= 1e-12
        assert abs(loss[0] - ref_loss) <= 1e-12 * abs(ref_loss)
        assert relative(grad[0], ref_grad) <= 1e-12
        np.testing.assert_array_equal(gradient.logits(theta[None], E0, loops), out)
        np.testing.assert_array_equal(gradient.weighted_cross_entropy(out, counts), loss)


@pytest.mark.parametrize("loops", [1, 2, 3, 4])
def test_equals_the_complex_step_derivative(problems, loops):
    """∂L/∂θ_j = Im L(θ + i h e_j) / h to round-off for h = 1e-30 (no subtraction, so no
    cancellation): an exact check that shares no code with the reverse pass."""
    for d in (3, 4):
        E0, counts = arrays(problems[d])
        theta = np.random.default_rng(loops).standard_normal(models.param_count(d)) * 0.5
        h = 1e-30
        probes = theta[None] + 1j * h * np.eye(len(theta))
        P = len(theta)
        loss = gradient.weighted_cross_entropy(gradient.logits(probes, np.repeat(E0, P, 0), loops),
                                               np.repeat(counts, P, 0))
        expected = loss.imag / h
        grad = gradient.loss_and_gradient(theta[None], E0, counts, loops)[2][0]
        assert relative(grad, expected) <= 1e-12


def test_matches_central_finite_differences(problems):
    E0, counts = arrays(problems[4])
    theta = np.random.default_rng(7).standard_normal(60) * 0.5
    for loops in (1, 3):
        grad = gradient.loss_and_gradient(theta[None], E0, counts, loops)[2][0]
        h = 1e-6
        steps = theta[None] + h * np.eye(60)
        up = gradient.weighted_cross_entropy(gradient.logits(steps, np.repeat(E0, 60, 0), loops), counts)
        down = gradient.weighted_cross_entropy(gradient.logits(theta[None] - h * np.eye(60), np.repeat(E0, 60, 0),
                                                                loops), counts)
        np.testing.assert_allclose(grad, (up - down) / (2 * h), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("d", [3, 4])
def test_a_run_in_a_batch_is_bit_for_bit_the_run_alone(d):
    """Each row of the run axis is computed as if it were alone (toy/batched.py relies on it),
    with different data, counts and weights per run, at aligned and unaligned widths."""
    configs = [RunConfig(d=d, data_seed=s, seed=s) for s in range(5)]
    data = [arrays(prepare(c)) for c in configs]
    E0 = np.concatenate([e for e, _ in data])
    counts = np.concatenate([c for _, c in data])
    thetas = np.random.default_rng(d).standard_normal((5, models.param_count(d))) * 0.5
    for loops in (1, 3):
        out, loss, grad = gradient.loss_and_gradient(thetas, E0, counts, loops)
        for r in range(5):
            alone = gradient.loss_and_gradient(thetas[r:r + 1], E0[r:r + 1], counts[r:r + 1], loops)
            np.testing.assert_array_equal(alone[0][0], out[r])
            np.testing.assert_array_equal(alone[1][0], loss[r])
            np.testing.assert_array_equal(alone[2][0], grad[r])


def test_zero_counts_of_a_context_give_no_gradient_from_it(problems):
    """A minibatch's count table leaves most contexts empty: their logits must not move the gradient."""
    E0, counts = arrays(problems[4])
    theta = np.random.default_rng(2).standard_normal((1, 60)) * 0.5
    some = counts.copy()
    some[:, 5:] = 0
    full = gradient.loss_and_gradient(theta, E0, some, 3)
    part = gradient.loss_and_gradient(theta, E0[:, :5].copy(), some[:, :5].copy(), 3)
    np.testing.assert_allclose(full[2], part[2], rtol=1e-13, atol=1e-16)
    assert full[1][0] == pytest.approx(part[1][0], rel=1e-14)


@pytest.mark.parametrize("d", [3, 4])
def test_the_torch_backend_is_the_numpy_one(d):
    """On a GPU the gradient is torch autograd's (backend "torch"); on the CPU both backends must
    give every record metric, full-batch and minibatch gradients, and a short run, alike."""
    config = RunConfig(d=d, model="looped", epochs=30, hessian_every=0)
    numpy_problem, torch_problem = prepare(config), prepare(config, backend="torch")
    assert (numpy_problem.backend, torch_problem.backend) == ("numpy", "torch")
    rng = np.random.default_rng(d)
    for loops in (1, 3):
        theta = rng.standard_normal(models.param_count(d)) * 0.5
        (ours, g_ours), (theirs, g_theirs) = (evaluate(p, theta, loops) for p in (numpy_problem, torch_problem))
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-12), key
        assert relative(g_ours, g_theirs) <= 1e-12
        counts = numpy_problem.train_counts.copy()
        counts[::2] = 0
        g_mini = [p.runs.loss_and_gradient(theta[None], loops, counts[None])[2][0]
                  for p in (numpy_problem, torch_problem)]
        assert relative(*g_mini) <= 1e-12
    runs = [list(Trainer(config, p).run()) for p in (numpy_problem, torch_problem)]
    np.testing.assert_allclose(runs[0][-1].theta, runs[1][-1].theta, rtol=1e-10)
    assert runs[0][-1].metrics["loss"] == pytest.approx(runs[1][-1].metrics["loss"], rel=1e-10)


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        prepare(RunConfig(), backend="jax")


def test_problem_gradients_in_chunks_are_the_whole_pass_bit_for_bit(monkeypatch):
    """Problem.gradients takes RUNS_PER_PASS weight vectors per reverse pass (memory); the
    slicing changes no number, and no weight vectors give no rows."""
    from loopviz.config import RunConfig
    from loopviz.toy import training

    problem = training.prepare(RunConfig(d=4))
    thetas = np.random.default_rng(5).normal(0, 0.4, (11, 60))
    whole = problem.gradients(thetas, 3)
    monkeypatch.setattr(training, "RUNS_PER_PASS", 4)
    assert np.array_equal(problem.gradients(thetas, 3), whole)
    assert problem.gradients(np.zeros((0, 60)), 3).shape == (0, 60)
    assert problem.losses(np.zeros((0, 60)), 3).shape == (0,)
