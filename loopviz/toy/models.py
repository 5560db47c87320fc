"""Single-Attn and Looped-Attn over explicit weights (paper Sec. 3, App. D).

    f(E, z) = W_V E Eᵀ W_Kᵀ W_Q z,     f(E) = W_V E Eᵀ W_Kᵀ W_Q E
    Looped:  z_t = z_{t-1} + f(E_{t-1}, z_{t-1}),  E_t = E_{t-1} + f(E_{t-1})
    Single:  the same with T = 1;  logits = W_h z_T.

z_0 is the last column of E_0, and then z_t stays the last column of E_t (the last
column of f(E) is f(E, z)), so only E needs to be carried; the last loop updates
only the last column. Weights travel as one flat vector θ = [W_K, W_Q, W_V, W_h]
(row-major) so that gradients and Hessians are taken w.r.t. a single tensor.

This is the torch form: training uses it on a GPU (training's backend "torch", autograd on
the device), and callers that take torch's derivatives themselves use it through
Problem.loss. On the CPU training runs toy/gradient.py's numpy forward and reverse pass of
the same recursion, checked against this one (tests/test_gradient.py).
"""
from __future__ import annotations

import torch

from .embedding import block_shapes, block_slices
from .markov import VOCAB
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
    """Logits [B, V] of Looped-Attn with `loops` loops (loops = 1 is Single-Attn), θ [P],
    E0 [B, d, n]; or of R runs at once: θ [R, P], E0 [R, B, d, n] → [R, B, V].

    One run goes through the run-axis form too (R = 1), so that one run and a batch of
    runs (toy/batched.py on a GPU) use the same batched kernels.
    """
    if theta.dim() == 1:
        return logits(theta.unsqueeze(0), E0.unsqueeze(0), loops)[0]
    R, B, d, n = E0.shape
    dd = d * d
    W_K, W_Q, W_V = (theta[:, i * dd:(i + 1) * dd].view(R, d, d).mT for i in range(3))   # transposed
    W_h = theta[:, 3 * dd:].view(R, VOCAB, d).mT
    # Rows are positions: Eᵀ [R, B·n, d], so a weight multiplies all B·n columns of a run in
    # one product (Kᵀ = Eᵀ W_Kᵀ), and only the [n, n] scores are per context.
    Et = E0.transpose(-1, -2)
    for _ in range(loops - 1):
        # f(E) = W_V E (Kᵀ Q) with K = W_K E, Q = W_Q E: [n, n] scores per context, no softmax.
        Kt = (Et.reshape(R, B * n, d) @ W_K).view(R, B, n, d)
        Qt = (Et.reshape(R, B * n, d) @ W_Q).view(R, B, n, d)
        scores = Kt @ Qt.mT
        Et = Et + ((scores.mT @ Et).reshape(R, B * n, d) @ W_V).view(R, B, n, d)
    zt = Et[:, :, -1, :]                                             # [R, B, d]
    Kt = (Et.reshape(R, B * n, d) @ W_K).view(R, B, n, d)
    scores = Kt @ (zt @ W_Q).unsqueeze(-1)                           # [R, B, n, 1]
    zt = zt + (scores.mT @ Et).squeeze(-2) @ W_V
    return zt @ W_h


def weighted_cross_entropy(out: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of a dataset given as a table of counts [B, V] per input row
    (per run with a leading run axis: [R, B, V] → [R]).

    Σ_i Σ_y counts[i, y] · (−log softmax(out_i)_y) / Σ counts: the same number as the
    per-sample mean over every copy (the distinct-row trick, docs/background.md §2).
    """
    return -(counts * torch.log_softmax(out, dim=-1)).sum(dim=(-2, -1)) / counts.sum(dim=(-2, -1))
