"""Lanczos top eigenvalues of the Hessian against the dense Hessian of a tiny model."""
import numpy as np
import pytest
import torch

from loopviz.algo import curvature, training
from loopviz.algo.config import AlgoConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def finite_difference_hessian(f, theta: torch.Tensor, eps: float = 1e-5) -> np.ndarray:
    """Column j = (∇f(θ + ε e_j) − ∇f(θ − ε e_j)) / 2ε, float64: no second-order autograd."""
    def grad(t):
        t = t.detach().clone().requires_grad_(True)
        return torch.autograd.grad(f(t), t)[0]

    columns = []
    for j in range(len(theta)):
        step = torch.zeros_like(theta)
        step[j] = eps
        columns.append(((grad(theta + step) - grad(theta - step)) / (2 * eps)).numpy())
    return np.stack(columns, axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("looped", [False, True])
def test_lanczos_top_eigenvalues_match_the_dense_hessian(looped):
    config = AlgoConfig(width=4, heads=2, train_max_len=3, test_lengths=(3,), hessian_samples=6, device="cpu",
                        steps=20, eval_every=20).validate()
    trainer = training.Trainer(config, looped=looped)
    for _ in range(20):  # away from the initialisation's near-degenerate spectrum
        trainer.train_step()
    model = trainer.model.double()
    theta, f = curvature.flat_loss(model, lambda fwd: trainer.train_loss(fwd, trainer.problem.curvature_batches))
    assert torch.allclose(f(theta), trainer.train_loss(model, trainer.problem.curvature_batches))
    dense = finite_difference_hessian(f, theta)
    assert np.allclose(dense, dense.T, atol=1e-6)
    expected = np.sort(np.linalg.eigvalsh(dense))[::-1][:4]
    got = curvature.top_eigenvalues(f, theta, 4, tol=1e-10)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-6)
    # The HVP operator is the dense Hessian's action.
    op, count = curvature.hvp_operator(f, theta)
    v = np.random.default_rng(0).standard_normal(len(theta))
    assert np.allclose(op.matvec(v), dense @ v, rtol=1e-6, atol=1e-6) and count[0] == 1
