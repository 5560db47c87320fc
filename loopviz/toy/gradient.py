r"""Logits, the weighted cross-entropy and its exact gradient w.r.t. θ, in numpy (no torch).

The forward pass is models.logits' recursion (paper Sec. 3, App. D) over a leading run
axis; the backward pass is its reverse-mode derivative written out by hand, the way
optax or nanoGPT's numpy ports spell a backward pass. One run is R = 1: the very code a
batch of R runs executes, so a run's rows do not depend on its neighbours (toy/batched.py).

Rows are positions. Per context, X = Eᵀ [n, d]; with A_• = W_•ᵀ, the keys and queries enter
only through M = A_K A_Qᵀ = W_Kᵀ W_Q (as in toy/hessian.py: k_i · q_j = X_i M X_jᵀ):

    loop t < T:   Z = X M,  S = Z Xᵀ [n, n],  Y = Sᵀ X,  X ← X + Y A_V
    last loop:    z = X[-1],  w = z Mᵀ,  s = X w [n],  y = sᵀ X,  z_T = z + y A_V,  o = z_T A_h [V]
    loss:         L = −Σ_b Σ_v c_bv log softmax(o_b)_v / N,   N = Σ_bv c_bv

(S = Kᵀ Q of the paper's column form f(E) = W_V E Eᵀ W_Kᵀ W_Q E; the last loop updates only
the last column, since f(E)'s last column is f(E, z)). Reverse pass, ō = ∂L/∂o and so on,
each context's terms summed into the weights' adjoints:

    ō = (c_b· p_b − c_b) / N,  p = softmax(o),  c_b· = Σ_v c_bv
    ∂A_h = z_Tᵀ ō,  z̄ = ō A_hᵀ,  ∂A_V += yᵀ z̄,  ȳ = z̄ A_Vᵀ
    s̄ = X ȳ,  X̄ = s ȳᵀ + s̄ wᵀ,  w̄ = s̄ᵀ X,  ∂M += w̄ᵀ z,  X̄[-1] += z̄ + w̄ M
    then per earlier loop, from the last to the first (X the loop's input, X̄ its output's adjoint):
    ∂A_V += Yᵀ X̄,  Ȳ = X̄ A_Vᵀ,  S̄ = X Ȳᵀ,  Z̄ = S̄ X,  ∂M += Xᵀ Z̄,
    X̄ ← X̄ + S Ȳ + S̄ᵀ Z + Z̄ Mᵀ
    and last ∂A_K = ∂M A_Q,  ∂A_Q = ∂Mᵀ A_K,  ∂W_• = (∂A_•)ᵀ.

How it is computed, and why: a weight multiplies all B·n rows of a run at once, one matrix
product per run ([B·n, d]·[d, d]); the per-context products ([n, d]·[d, n], n = 3) are numpy's
stacked matmul over the R·B contexts, with transposed factors copied first, and sums over
the 3 tokens go slice by slice. Broadcast multiply-sums were measured too, with the contexts
first and with them last in memory: their short reductions and broadcast strides cost more
than numpy's per-slice calls at R = 1 and R = 20 alike (bench/bench_run.py has the figures).
Every operation acts on each run's slice alone, with the same shapes and layouts whatever R
is, so a run's numbers are bit for bit the same alone or in a batch. Arrays are taken as
C-contiguous float64 (`canonical`): numpy's matmul may round a transposed view differently
from a contiguous copy, so the layout is fixed once, where the data are prepared.
"""
from __future__ import annotations

import numpy as np

from .markov import VOCAB


def canonical(array) -> np.ndarray:
    """float64 (complex kept complex, for the complex-step test), C-contiguous: the one layout
    every function here is fed (see the module note)."""
    array = np.asarray(array)
    return np.ascontiguousarray(array, dtype=np.result_type(array.dtype, np.float64))


def _blocks(theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """θ [R, P] → A_K, A_Q, A_V [R, d, d] (transposed W_K, W_Q, W_V) and A_h = W_hᵀ [R, d, V], contiguous."""
    R, dd = len(theta), d * d
    A = [np.ascontiguousarray(theta[:, i * dd:(i + 1) * dd].reshape(R, d, d).transpose(0, 2, 1)) for i in range(3)]
    return A[0], A[1], A[2], np.ascontiguousarray(theta[:, 3 * dd:].reshape(R, VOCAB, d).transpose(0, 2, 1))


def _rows_times(X: np.ndarray, A: np.ndarray) -> np.ndarray:
    """X [R, B, n, d] times a per-run matrix A [R, d, k]: one [B·n, d]·[d, k] product per run."""
    R, B, n, d = X.shape
    return (X.reshape(R, B * n, d) @ A).reshape(R, B, n, A.shape[-1])


def _rows_outer(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Σ over contexts and positions of X[b, i]ᵀ Y[b, i]: Xᵀ Y [R, d, k] of the stacked rows."""
    R = len(X)
    return X.reshape(R, -1, X.shape[-1]).transpose(0, 2, 1) @ Y.reshape(R, -1, Y.shape[-1])


def _pair(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """U Vᵀ per context: [R, B, n, d], [R, B, m, d] → [R, B, n, m]. Vᵀ is copied first: numpy's
    stacked matmul over transposed views is slower than the copy and a contiguous product."""
    return U @ np.ascontiguousarray(V.transpose(0, 1, 3, 2))


def _mix(S: np.ndarray, X: np.ndarray) -> np.ndarray:
    """S X per context: [R, B, n, m], [R, B, m, d] → [R, B, n, d]."""
    return S @ X


def _mix_t(S: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Sᵀ X per context: [R, B, m, n], [R, B, m, d] → [R, B, n, d] (Sᵀ copied first, as in _pair)."""
    return np.ascontiguousarray(S.transpose(0, 1, 3, 2)) @ X


def _forward(theta: np.ndarray, E0: np.ndarray, loops: int):
    R, B, d, n = E0.shape
    A_K, A_Q, A_V, A_h = _blocks(theta, d)
    M = A_K @ A_Q.transpose(0, 2, 1)                      # W_Kᵀ W_Q [R, d, d]
    X = np.ascontiguousarray(E0.transpose(0, 1, 3, 2))    # [R, B, n, d], whatever E0's layout
    tape = []
    for _ in range(loops - 1):
        Z = _rows_times(X, M)
        S = _pair(Z, X)                                   # S_ij = X_i M X_jᵀ = k_i · q_j
        Y = _mix_t(S, X)                                  # Y = Sᵀ X
        tape.append((X, Z, S, Y))
        X = X + _rows_times(Y, A_V)
    z = X[:, :, -1, :]                                    # [R, B, d]
    w = z @ M.transpose(0, 2, 1)                          # [R, B, d]
    s = (X @ w[..., None])[..., 0]                        # s_j = X_j · w [R, B, n]
    y = (s[:, :, None, :] @ X)[:, :, 0, :]                # sᵀ X [R, B, d]
    zT = z + y @ A_V
    out = zT @ A_h                                        # [R, B, V]
    return out, (A_K, A_Q, A_V, A_h, M, tape, X, z, w, s, y, zT)


def logits(theta: np.ndarray, E0: np.ndarray, loops: int) -> np.ndarray:
    """Logits [R, B, V] of R runs, θ [R, P], E0 [R, B, d, n] (models.logits' numbers; loops = 1 is Single-Attn)."""
    return _forward(theta, E0, loops)[0]


def _over_last(ufunc: np.ufunc, a: np.ndarray) -> np.ndarray:
    """ufunc.reduce over the last, short axis (the V = 3 tokens), slice after slice, keeping the
    axis: numpy's own reduction runs one inner loop per output there, ~7× slower at R = 20."""
    out = a[..., 0]
    for v in range(1, a.shape[-1]):
        out = ufunc(out, a[..., v])
    return out[..., None]


def log_softmax(out: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, shifted by the maximum (as torch.log_softmax)."""
    shifted = out - _over_last(np.maximum, out)
    return shifted - np.log(_over_last(np.add, np.exp(shifted)))


def weighted_cross_entropy(out: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Σ_bv counts · (−log softmax(out)) / Σ counts per run: [R, B, V] → [R] (models.weighted_cross_entropy)."""
    return -(counts * log_softmax(out)).sum((-2, -1)) / counts.sum((-2, -1))


def loss_and_gradient(theta: np.ndarray, E0: np.ndarray, counts: np.ndarray, loops: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits [R, B, V], loss [R], ∂loss/∂θ [R, P]) of R runs: θ [R, P], E0 [R, B, d, n],
    counts [R, B, V], float64; the reverse pass of the module docstring."""
    out, _, loss, grad = log_probs_loss_and_gradient(theta, E0, counts, loops)
    return out, loss, grad


def log_probs_loss_and_gradient(theta: np.ndarray, E0: np.ndarray, counts: np.ndarray, loops: int
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """loss_and_gradient with the log-probabilities log softmax(logits) [R, B, V] second (a
    record scores them on the validation counts too)."""
    R, B, d, n = E0.shape
    out, (A_K, A_Q, A_V, A_h, M, tape, X, z, w, s, y, zT) = _forward(theta, E0, loops)
    logp = log_softmax(out)
    total = counts.sum((1, 2))
    loss = -(counts * logp).sum((1, 2)) / total
    o_bar = (_over_last(np.add, counts) * np.exp(logp) - counts) / total[:, None, None]
    g_h = zT.transpose(0, 2, 1) @ o_bar                   # ∂A_h [R, d, V]
    z_bar = o_bar @ A_h.transpose(0, 2, 1)                # [R, B, d]
    g_V = y.transpose(0, 2, 1) @ z_bar
    y_bar = z_bar @ A_V.transpose(0, 2, 1)
    s_bar = (X @ y_bar[..., None])[..., 0]                # [R, B, n]
    X_bar = s[..., None] * y_bar[:, :, None, :] + s_bar[..., None] * w[:, :, None, :]   # [R, B, n, d]
    w_bar = (s_bar[:, :, None, :] @ X)[:, :, 0, :]        # [R, B, d]
    g_M = w_bar.transpose(0, 2, 1) @ z                    # ∂M [R, d, d]
    X_bar[:, :, -1, :] += z_bar + w_bar @ M
    for X, Z, S, Y in reversed(tape):
        g_V += _rows_outer(Y, X_bar)
        Y_bar = _rows_times(X_bar, A_V.transpose(0, 2, 1))
        S_bar = _pair(X, Y_bar)                           # S̄ = X Ȳᵀ
        Z_bar = _mix(S_bar, X)
        g_M += _rows_outer(X, Z_bar)
        X_bar = (X_bar + _mix(S, Y_bar) + _mix_t(S_bar, Z)
                 + _rows_times(Z_bar, M.transpose(0, 2, 1)))
    g_K, g_Q = g_M @ A_Q, g_M.transpose(0, 2, 1) @ A_K   # M = A_K A_Qᵀ
    dd = d * d
    grad = np.empty_like(theta, dtype=np.float64)
    for i, g in enumerate((g_K, g_Q, g_V)):
        grad[:, i * dd:(i + 1) * dd] = g.transpose(0, 2, 1).reshape(R, dd)
    grad[:, 3 * dd:] = g_h.transpose(0, 2, 1).reshape(R, -1)
    return out, logp, loss, grad
