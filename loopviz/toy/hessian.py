"""The exact Hessian of the toy training loss, in numpy, without autodiff (Sec. 4.1).

The model (models.py) uses W_K and W_Q only through A = W_Kᵀ W_Q:
    S = Eᵀ A E,   E' = E + W_V E S   (per loop),   logits o = W_h z_T.
So the loss is L(θ) = ℓ(ψ(θ)) with ψ = (A, W_V, W_h): P_ψ = 2d² + Vd instead of
P = 3d² + Vd. We compute ∇²ℓ in ψ and lift it to θ = (W_K, W_Q, W_V, W_h) exactly:

    ∇²L = Jᵀ ∇²ℓ J + Σ_ij (∂ℓ/∂A_ij) ∇²A_ij,       J = ∂ψ/∂θ,

where dA = dW_Kᵀ W_Q + W_Kᵀ dW_Q and the only second derivative of A is the
W_K–W_Q block ∂²⟨G, W_Kᵀ W_Q⟩/∂(W_K)_mi ∂(W_Q)_m'j = δ_mm' G_ij, i.e. I_d ⊗ G.

In ψ, with r_b = ∂ℓ/∂o_b and u_b = W_hᵀ r_b (one row b per distinct context):

    ∇²ℓ = Σ_b J_bᵀ Λ_b J_b                         (Gauss–Newton; Λ_b the softmax Hessian)
        + [W_h, φ] block  Σ_b r_by ∂z_bj/∂φ          (φ = (A, W_V); o is linear in W_h)
        + [φ, φ] block    ∇²_φ Σ_b u_b · z_b(φ)      (u held fixed)

The last block is forward-over-reverse: the reverse pass of F(φ) = Σ_b u_b · z_b is
differentiated along all 2d² directions at once, each step a tensor contraction over
a leading direction axis; the forward tangents also give J. For Single-Attn z is
bilinear in (A, W_V), so the same code reduces to the closed form (its A–A and
V–V blocks vanish). Checked against autograd (curvature.exact_hessian) and finite
differences in tests/test_hessian.py.
"""
from __future__ import annotations

import numpy as np

from ..curvature import symmetric_eigenvalues
from . import markov
from .embedding import make_embedding


def _einsum(spec: str, *operands: np.ndarray) -> np.ndarray:
    return np.einsum(spec, *operands, optimize=True)


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def unflatten(thetas: np.ndarray, d: int, vocab: int) -> tuple[np.ndarray, ...]:
    """[N, P] → W_K, W_Q, W_V [N, d, d], W_h [N, V, d] (row-major, as models.unflatten)."""
    dd, N = d * d, len(thetas)
    return (thetas[:, :dd].reshape(N, d, d), thetas[:, dd:2 * dd].reshape(N, d, d),
            thetas[:, 2 * dd:3 * dd].reshape(N, d, d), thetas[:, 3 * dd:].reshape(N, vocab, d))


def reduced_hessians(A: np.ndarray, W_V: np.ndarray, W_h: np.ndarray, E0: np.ndarray, counts: np.ndarray,
                     loops: int) -> tuple[np.ndarray, np.ndarray]:
    """(∇²ℓ in ψ = (A, W_V, W_h) flattened row-major, [N, P_ψ, P_ψ]; ∂ℓ/∂A [N, d, d]) at N
    weight sets at once (A, W_V [N, d, d], W_h [N, V, d]).

    E0 [B, d, n]: the embedded contexts; counts [B, V]: the weighted cross-entropy's
    table (models.weighted_cross_entropy); rows with no count are skipped. The N weight
    sets share nothing but the data: rows are (weight set, context) pairs, and sums
    over contexts stay within a weight set.
    """
    keep = counts.sum(1) > 0
    E0, counts = E0[keep], counts[keep]
    N = len(A)
    B0, d, n = E0.shape
    B = N * B0                                   # rows: weight set e, context b → e * B0 + b
    dd = d * d
    K = 2 * dd                                   # directions: A's d² entries, then W_V's
    one = (A[0], W_V[0], _t(A[0]), _t(W_V[0])) if N == 1 else None
    A, W_V = np.repeat(A, B0, axis=0), np.repeat(W_V, B0, axis=0)   # per row [B, d, d]
    At, Vt = _t(A), _t(W_V)

    def wmul(which: int, T: np.ndarray) -> np.ndarray:
        """(A, W_V, Aᵀ, W_Vᵀ)[which] times a tangent T [K, B, d, c]: one BLAS product for
        a single weight set, else per row."""
        if one is not None:
            return _einsum("ij,kbjc->kbic", one[which], T)
        return _einsum("bij,kbjc->kbic", (A, W_V, At, Vt)[which], T)

    def group(x: np.ndarray, axis: int) -> np.ndarray:   # split the row axis into (weight set, context)
        return x.reshape(x.shape[:axis] + (N, B0) + x.shape[axis + 1:])

    # ------------------------------------------------------------------ forward + tangents
    # Loop t maps E to E' = Er + W_V E S, S = Eᵀ A Er, where Er is E (loops before the
    # last) or only its last column (the last loop: only z_T is read).
    tape = []
    E, dE = np.tile(E0, (N, 1, 1)), None          # dE [K, B, d, c]: tangents along the K directions
    for t in range(loops):
        Er = E if t < loops - 1 else E[:, :, -1:]
        dEr = None if dE is None else (dE if t < loops - 1 else dE[..., -1:])
        c = Er.shape[2]
        AEr = A @ Er                              # [B, d, c]
        AtE = At @ E                              # [B, d, n]
        S = _t(E) @ AEr                           # [B, n, c]
        X = E @ S                                 # [B, d, c]
        # dS = dEᵀ A Er + Eᵀ A dEr + Eᵀ Ȧ Er; for Ȧ = e_i e_jᵀ the last is E[b, i, :]ᵀ Er[b, j, :].
        dS = np.empty((K, B, n, c))
        dS[:dd] = _einsum("bin,bjc->ijbnc", E, Er).reshape(dd, B, n, c)
        if dE is None:
            dS[dd:] = 0.0
            dX = _einsum("bdn,kbnc->kbdc", E, dS[:dd])
            dX = np.concatenate([dX, np.zeros_like(dX)])
        else:
            dS[dd:] = 0.0
            dS += _einsum("kbdn,bdc->kbnc", dE, AEr) + _einsum("bdn,kbdc->kbnc", AtE, dEr)
            dX = _einsum("bdn,kbnc->kbdc", E, dS) + _einsum("kbdn,bnc->kbdc", dE, S)
        dE_next = wmul(1, dX)
        if dEr is not None:
            dE_next += dEr
        dV = dE_next[dd:].reshape(d, d, B, d, c)  # direction W_V = e_i e_jᵀ adds e_i X[b, j, :]
        Xs = np.swapaxes(X, 0, 1)
        for i in range(d):
            dV[i, :, :, i, :] += Xs
        tape.append((E, Er, AEr, AtE, S, X, dE, dEr, dS, dX))
        E, dE = Er + W_V @ X, dE_next
    z, dz = E[:, :, 0], dE[..., 0]                # [B, d], [K, B, d]
    # ------------------------------------------------------------------ loss derivatives in o
    W_hr = np.repeat(W_h, B0, axis=0)             # [B, V, d]
    o = _einsum("byj,bj->by", W_hr, z)
    p = np.exp(o - o.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    counts = np.tile(counts, (N, 1))
    total = counts[:B0].sum()
    n_b = counts.sum(1)
    r = (n_b[:, None] * p - counts) / total       # ∂ℓ/∂o
    V = p.shape[1]
    Lam = (n_b / total)[:, None, None] * (p[:, :, None] * np.eye(V) - p[:, :, None] * p[:, None, :])
    u = _einsum("by,byj->bj", r, W_hr)            # W_hᵀ r
    # ------------------------------------------------------------------ reverse + its tangents
    Ebar = u[:, :, None]                          # adjoint of the last loop's output (one column)
    dEbar = None
    G_A = np.zeros((N, d, d))
    dA_bar = np.zeros((K, N, d, d))
    dV_bar = np.zeros((K, N, d, d))
    for t in reversed(range(loops)):
        E, Er, AEr, AtE, S, X, dE, dEr, dS, dX = tape[t]
        # E' = Er + W_V X:  V̄ += Σ Ē' Xᵀ,  X̄ = W_Vᵀ Ē'
        dV_bar += _einsum("ebic,kebjc->keij", group(Ebar, 0), group(dX, 1))
        if dEbar is not None:
            dV_bar += _einsum("kebic,ebjc->keij", group(dEbar, 1), group(X, 0))
        Xbar = Vt @ Ebar                          # [B, d, c]
        dXbar = wmul(3, dEbar) if dEbar is not None else np.zeros((K,) + Xbar.shape)
        dXv = dXbar[dd:].reshape(d, d, B, d, -1)  # direction W_V = e_i e_jᵀ: W_Vᵀ-tangent adds e_j Ē'[b, i, :]
        Ebs = np.swapaxes(Ebar, 0, 1)
        for j in range(d):
            dXv[:, j, :, j, :] += Ebs
        # X = E S:  Ē = X̄ Sᵀ,  S̄ = Eᵀ X̄
        Sbar = _t(E) @ Xbar                       # [B, n, c]
        dSbar = _einsum("bdn,kbdc->kbnc", E, dXbar)
        if dE is not None:
            dSbar += _einsum("kbdn,bdc->kbnc", dE, Xbar)
        # S = Eᵀ A Er:  Ē += A Er S̄ᵀ,  Ēr += Aᵀ E S̄,  Ā += Σ E S̄ Erᵀ
        ES = E @ Sbar                             # [B, d, c]
        ErSt = Er @ _t(Sbar)                      # [B, d, n]
        G_A += _einsum("ebic,ebjc->eij", group(ES, 0), group(Er, 0))
        dES = _einsum("bdn,kbnc->kbdc", E, dSbar)                  # d(E S̄), its Ȧ-free part
        dErSt = _einsum("bdc,kbnc->kbdn", Er, dSbar)               # d(Er S̄ᵀ)
        if dE is not None:
            dES += _einsum("kbdn,bnc->kbdc", dE, Sbar)
            dErSt += _einsum("kbdc,bnc->kbdn", dEr, Sbar)
        dA_bar += _einsum("kebic,ebjc->keij", group(dES, 1), group(Er, 0))
        if dE is not None:
            dA_bar += _einsum("ebic,kebjc->keij", group(ES, 0), group(dEr, 1))
        dEbar_in = (_einsum("kbdc,bnc->kbdn", dXbar, S) + _einsum("bdc,kbnc->kbdn", Xbar, dS)
                    + wmul(0, dErSt))
        dEr_bar = wmul(2, dES)
        if dEbar is not None:
            dEr_bar += dEbar
        # Ȧ = e_i e_jᵀ: (Ȧ Er) S̄ᵀ puts (Er S̄ᵀ)[b, j, :] in row i; (Ȧᵀ E) S̄ puts (E S̄)[b, i, :] in row j.
        dA_in = dEbar_in[:dd].reshape(d, d, B, d, -1)
        dA_r = dEr_bar[:dd].reshape(d, d, B, d, -1)
        ErSts, ESs = np.swapaxes(ErSt, 0, 1), np.swapaxes(ES, 0, 1)
        for i in range(d):
            dA_in[i, :, :, i, :] += ErSts
            dA_r[:, i, :, i, :] += ESs
        Ebar_in = Xbar @ _t(S) + A @ ErSt
        Er_bar = Ebar + At @ ES                   # [B, d, c]
        if Er.shape[2] == E.shape[2]:
            Ebar, dEbar = Ebar_in + Er_bar, dEbar_in + dEr_bar
        else:                                     # Er is E's last column
            Ebar_in[:, :, -1:] += Er_bar
            dEbar_in[..., -1:] += dEr_bar
            Ebar, dEbar = Ebar_in, dEbar_in
    # ------------------------------------------------------------------ assemble ∇²ℓ in ψ
    P = K + V * d
    J = np.zeros((B, V, P))                       # ∂o_b/∂ψ
    J[:, :, :K] = _einsum("byj,kbj->byk", W_hr, dz)
    for y in range(V):
        J[:, y, K + y * d:K + (y + 1) * d] = z
    LJ = Lam @ J                                  # [B, V, P]
    H = _einsum("ebxp,ebxq->epq", group(J, 0), group(LJ, 0))
    H[:, :K, :K] += np.concatenate([dA_bar.reshape(K, N, dd), dV_bar.reshape(K, N, dd)], axis=2).transpose(1, 0, 2)
    cross = _einsum("eby,kebj->eyjk", group(r, 0), group(dz, 1)).reshape(N, V * d, K)
    H[:, K:, :K] += cross
    H[:, :K, K:] += _t(cross)
    return H, G_A


def _lift_rows(M: np.ndarray, W_K: np.ndarray, W_Q: np.ndarray) -> np.ndarray:
    """Rows indexed by ψ = (A, ...) → rows indexed by θ = (W_K, W_Q, ...): Jᵀ M, per weight set.

    ∂A_ij/∂(W_K)_mi' = δ_ii' (W_Q)_mj and ∂A_ij/∂(W_Q)_mj' = δ_jj' (W_K)_mi.
    """
    N, d = W_K.shape[:2]
    A_rows = M[:, :d * d].reshape(N, d, d, -1)
    by_K = W_Q[:, None] @ A_rows          # [e, i, m, :] = Σ_j W_Q[e, m, j] M[e, (i, j), :]  (broadcast over i)
    by_Q = _einsum("emi,eijr->emjr", W_K, A_rows)
    return np.concatenate([by_K.swapaxes(1, 2).reshape(N, d * d, -1), by_Q.reshape(N, d * d, -1), M[:, d * d:]],
                          axis=1)


def loss_hessians(thetas: np.ndarray, E0: np.ndarray, counts: np.ndarray, loops: int) -> np.ndarray:
    """∇²L(θ) [N, P, P] at N weight vectors θ [N, P] of
    L = models.weighted_cross_entropy(models.logits(θ, E0, loops), counts),
    θ = (W_K, W_Q, W_V, W_h) flattened row-major; float64, exact (no approximation).
    Batching weight sets amortises numpy's per-call overhead at small d."""
    thetas = np.asarray(thetas, dtype=np.float64)
    E0 = np.asarray(E0, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    d, V = E0.shape[1], counts.shape[1]
    W_K, W_Q, W_V, W_h = unflatten(thetas, d, V)
    H_psi, G_A = reduced_hessians(_t(W_K) @ W_Q, W_V, W_h, E0, counts, loops)
    H = _t(_lift_rows(_t(_lift_rows(H_psi, W_K, W_Q)), W_K, W_Q))   # Jᵀ H_ψ J
    dd = d * d
    KQ = np.einsum("mn,eij->eminj", np.eye(d), G_A).reshape(-1, dd, dd)   # I_d ⊗ G: Σ_ij G_ij ∇²A_ij
    H[:, :dd, dd:2 * dd] += KQ
    H[:, dd:2 * dd, :dd] += _t(KQ)
    return H


def loss_hessian(theta: np.ndarray, E0: np.ndarray, counts: np.ndarray, loops: int) -> np.ndarray:
    """∇²L(θ) [P, P] at one θ [P] (loss_hessians for one weight vector)."""
    return loss_hessians(np.asarray(theta)[None], E0, counts, loops)[0]


def training_arrays(config) -> tuple[np.ndarray, np.ndarray]:
    """(E0 [27, d, 3], train counts [27, V]) of a RunConfig, as training.prepare builds
    them, from numpy alone: a spectrum worker needs no torch."""
    task = markov.task_for(config)
    n = markov.SEQ_LEN - 1
    token, position = make_embedding(config.embedding, config.d, n, config.data_seed)
    contexts = markov.enumerate_sequences(n)
    return np.swapaxes(token[contexts] + position[:n], 1, 2), markov.count_table(task.train)


def batch_size(d: int) -> int:
    """Weight sets per call: batching amortises per-call overhead at small d; at d ≥ 16
    one set already fills the caches."""
    return max(1, 256 // (d * d))


def spectra(thetas: np.ndarray, loops: np.ndarray, E0: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Eigenvalues [N, P], ascending, of the exact loss Hessian at each θ [N, P] with its
    loop count. Weight sets with equal loops are batched in order, so a given list of
    (θ, loops) always takes the same arithmetic path (same numbers, bit for bit)."""
    thetas = np.asarray(thetas, dtype=np.float64)
    loops = np.asarray(loops).astype(int)
    out = np.empty_like(thetas)
    step = batch_size(E0.shape[1])
    for T in np.unique(loops):
        idx = np.nonzero(loops == T)[0]
        for begin in range(0, len(idx), step):
            part = idx[begin:begin + step]
            for i, H in zip(part, loss_hessians(thetas[part], E0, counts, int(T))):
                out[i] = symmetric_eigenvalues(H)
    return out
