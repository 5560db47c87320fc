"""Single-Attn and Looped-Attn over explicit weights (paper Sec. 3, App. D).

    f(E, z) = W_V E Eᵀ W_Kᵀ W_Q z,     f(E) = W_V E Eᵀ W_Kᵀ W_Q E
    Looped:  z_t = z_{t-1} + f(E_{t-1}, z_{t-1}),  E_t = E_{t-1} + f(E_{t-1})
    Single:  the same with T = 1;  logits = W_h z_T.

z_0 is the last column of E_0, and then z_t stays the last column of E_t (the last
column of f(E) is f(E, z)), so only E needs to be carried; the last loop updates
only the last column. Weights travel as one flat vector θ = [W_K, W_Q, W_V, W_h]
(row-major) so that gradients and Hessians are taken w.r.t. a single tensor.
"""
from __future__ import annotations

import torch

from .embedding import block_shapes, block_slices
from .embedding import init_weights, make_embedding, param_count  # noqa: F401 (part of the model's API)


def embed(contexts: torch.Tensor, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """E0[:, j] = token[x_j] + position[j]; contexts [B, n] → E0 [B, d, n]."""
    n = contexts.shape[1]
    return (token[contexts] + position[:n]).transpose(1, 2)


def unflatten(theta: torch.Tensor, d: int) -> tuple[torch.Tensor, ...]:
    """θ → (W_K, W_Q, W_V, W_h) as views."""
    shapes = block_shapes(d)
    return tuple(theta[s].view(*shapes[name]) for name, s in block_slices(d).items())


def logits(theta: torch.Tensor, E0: torch.Tensor, loops: int) -> torch.Tensor:
    """Logits [B, V] of Looped-Attn with `loops` loops (loops = 1 is Single-Attn)."""
    d = E0.shape[1]
    W_K, W_Q, W_V, W_h = unflatten(theta, d)
    E = E0
    for _ in range(loops - 1):
        # f(E) = W_V E (K^T Q) with K = W_K E, Q = W_Q E: [B, n, n] scores, no softmax.
        scores = (W_K @ E).transpose(1, 2) @ (W_Q @ E)
        E = E + W_V @ (E @ scores)
    z = E[:, :, -1]
    scores = ((W_K @ E).transpose(1, 2) @ (W_Q @ z.unsqueeze(-1)))  # [B, n, 1]
    z = z + (W_V @ (E @ scores)).squeeze(-1)
    return z @ W_h.T


def weighted_cross_entropy(out: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of a dataset given as a table of counts [B, V] per input row.

    Σ_i Σ_y counts[i, y] · (−log softmax(out_i)_y) / Σ counts: the same number as the
    per-sample mean over every copy (the distinct-row trick, docs/background.md §2).
    """
    return -(counts * torch.log_softmax(out, dim=-1)).sum() / counts.sum()
