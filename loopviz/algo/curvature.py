"""Top Hessian eigenvalues of a GPT-2-block model by Lanczos on Hessian-vector products.

P is ~10^4-10^6 here, so the exact spectrum of the toy (loopviz/curvature.py) is out of
reach; ARPACK's implicitly restarted Lanczos (scipy.sparse.linalg.eigsh) over a
LinearOperator whose matvec is one HVP gives the k algebraically largest eigenvalues,
the valley side of Def. 1 that tells a steep (V) valley from a flat (U) one.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def flat_loss(model: nn.Module, loss: Callable[[Callable[..., torch.Tensor]], torch.Tensor]):
    """(θ0, f): the model's parameters as one flat vector, and f(θ) = loss(forward at θ).

    `loss` receives a forward function with the model's signature, (x, loops, output_len)
    -> logits, evaluated at θ by torch.func.functional_call (the model is not mutated).
    """
    named = list(model.named_parameters())
    sizes = [p.numel() for _, p in named]
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(theta: torch.Tensor) -> torch.Tensor:
        params = {n: c.view(p.shape) for (n, p), c in zip(named, torch.split(theta, sizes))}
        return loss(lambda *args: torch.func.functional_call(model, params, args))

    return theta0, f


class Cancelled(Exception):
    """The cancel event was set: a Lanczos run (or an algo evaluation) stopped before its next piece."""


def hvp_operator(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor,
                 cancel: threading.Event | None = None):
    """scipy LinearOperator v -> ∇²f(θ) v, by reverse-over-reverse on one retained gradient graph.
    A set `cancel` makes the next product raise Cancelled: a checkpoint's Lanczos runs 20-80
    products (51, ~14 s, for the cpu preset's Looped-Attn at step 0 on one idle core), too long to
    leave a cancelled job running."""
    from scipy.sparse.linalg import LinearOperator

    theta = theta.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(theta), theta, create_graph=True)
    count = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        count[0] += 1
        vec = torch.as_tensor(np.asarray(v).reshape(-1), dtype=theta.dtype, device=theta.device)
        (hv,) = torch.autograd.grad(grad, theta, grad_outputs=vec, retain_graph=True)
        return hv.detach().cpu().numpy().astype(np.float64)

    P = theta.numel()
    return LinearOperator((P, P), matvec=matvec, dtype=np.float64), count


def top_eigenvalues(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, k: int,
                    tol: float = 1e-6, seed: int = 0, cancel: threading.Event | None = None) -> np.ndarray:
    """The k algebraically largest Hessian eigenvalues of f at θ, descending (Lanczos).
    Raises Cancelled within one Hessian-vector product of `cancel` being set."""
    from scipy.sparse.linalg import eigsh

    op, _ = hvp_operator(f, theta, cancel)
    v0 = np.random.default_rng(seed).standard_normal(op.shape[0])
    values = eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(values)[::-1]
