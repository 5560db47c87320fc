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
differentiated along all 2d² directions at once, each step one batched matrix product
with the directions as a trailing axis; the forward tangents also give J. For Single-Attn z is
bilinear in (A, W_V), so the same code reduces to the closed form (its A–A and
V–V blocks vanish). Checked against autograd (curvature.exact_hessian) and finite
differences in tests/test_hessian.py.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ..curvature import symmetric_eigenvalues
from . import markov
from .embedding import BLOCKS, block_shapes, block_slices, make_embedding


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def unflatten(thetas: np.ndarray, d: int) -> tuple[np.ndarray, ...]:
    """[N, P] → W_K, W_Q, W_V [N, d, d], W_h [N, V, d]: views, in the θ layout of
    embedding.block_slices / block_shapes (the one definition; models.unflatten reads it too)."""
    slices, shapes = block_slices(d), block_shapes(d)
    return tuple(thetas[:, slices[name]].reshape(len(thetas), *shapes[name]) for name in BLOCKS)


def reduced_hessians(A: np.ndarray, W_V: np.ndarray, W_h: np.ndarray, E0: np.ndarray, counts: np.ndarray,
                     loops: int) -> tuple[np.ndarray, np.ndarray]:
    """(∇²ℓ in ψ = (A, W_V, W_h) flattened row-major, [N, P_ψ, P_ψ]; ∂ℓ/∂A [N, d, d]) at N
    weight sets at once (A, W_V [N, d, d], W_h [N, V, d]).

    E0 [B, d, n]: the embedded contexts; counts [B, V]: the weighted cross-entropy's
    table (models.weighted_cross_entropy); rows with no count are skipped. The N weight
    sets share nothing but the data: rows are (weight set, context) pairs, and sums
    over contexts stay within a weight set.

    Layout, chosen so that every tangent contraction is one batched BLAS product: the
    tangent of a per-row matrix M [p, q] along the K = 2d² directions of φ = (A, W_V)
    is stored as [B, q, p, K] (Mᵀ per row, directions last). Then W·dM is a stack of
    [p', p] × [p, K] products, dM·W one [q', q] × [q, p·K] product per row, and the
    sums over (context, column) that give ∇²_φ are one [d, B₀q] × [B₀q, d·K] product
    per weight set.
    """
    keep = counts.sum(1) > 0
    E0, counts = E0[keep], counts[keep]
    N = len(A)
    B0, d, n = E0.shape
    B = N * B0                                   # rows: weight set e, context b → e * B0 + b
    dd = d * d
    K = 2 * dd                                   # directions: A's d² entries (i, j), then W_V's
    A, W_V = np.repeat(A, B0, axis=0), np.repeat(W_V, B0, axis=0)   # per row [B, d, d]
    At, Vt = _t(A), _t(W_V)

    def lmul(M: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Tangent of M·Y from Y's tangent T [B, q, p, K]; M [B, m, p] per row."""
        return M[:, None] @ T

    def rmul(T: np.ndarray, M: np.ndarray) -> np.ndarray:
        """Tangent of Y·M from Y's tangent T [B, q, p, K]; M [B, q, r] per row."""
        b, q, p, k = T.shape
        return (_t(M) @ T.reshape(b, q, p * k)).reshape(b, -1, p, k)

    def tmul(M: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Tangent of Yᵀ·M from Y's tangent T [B, q, p, K]; M [B, p, r] per row. The product
        Mᵀ·dY comes out as the tangent of (Yᵀ M)ᵀ; swapping the two small axes relays it."""
        return np.swapaxes(_t(M)[:, None] @ T, 1, 2)

    def rowsum(P: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Σ over a weight set's rows b and columns c of P[b, i, c] T[b, c, j, K] → [N, i, j, K]."""
        c = P.shape[2]
        Pg = P.reshape(N, B0, d, c).transpose(0, 2, 1, 3).reshape(N, d, B0 * c)
        return (Pg @ T.reshape(N, B0 * c, -1)).reshape(N, d, d, K)

    # ------------------------------------------------------------------ forward + tangents
    # Loop t maps E to E' = Er + W_V E S, S = Eᵀ A Er, where Er is E (loops before the
    # last) or only its last column (the last loop: only z_T is read).
    tape = []
    E, dE = np.tile(E0, (N, 1, 1)), None          # dE [B, n, d, K]
    for t in range(loops):
        Er = E if t < loops - 1 else E[:, :, -1:]
        dEr = None if dE is None else (dE if t < loops - 1 else dE[:, -1:])
        c = Er.shape[2]
        AEr = A @ Er                              # [B, d, c]
        AtE = At @ E                              # [B, d, n]
        S = _t(E) @ AEr                           # [B, n, c]
        X = E @ S                                 # [B, d, c]
        # dS = dEᵀ A Er + Eᵀ A dEr + Eᵀ Ȧ Er; for Ȧ = e_i e_jᵀ the last is E[b, i, :]ᵀ Er[b, j, :].
        dS = np.empty((B, c, n, K))
        dS[..., :dd] = (_t(Er)[:, :, None, None, :] * _t(E)[:, None, :, :, None]).reshape(B, c, n, dd)
        if dE is None:                            # the first loop: only the A directions move S and X
            dS[..., dd:] = 0.0
            dX = np.zeros((B, c, d, K))
            dX[..., :dd] = lmul(E, dS[..., :dd])
        else:
            dS[..., dd:] = 0.0
            dS += lmul(_t(AtE), dEr) + tmul(AEr, dE)
            dX = lmul(E, dS) + rmul(dE, S)
        dE_next = lmul(W_V, dX)
        if dEr is not None:
            dE_next += dEr
        for i in range(d):                        # direction W_V = e_i e_jᵀ adds e_i X[b, j, :]
            dE_next[:, :, i, dd + i * d:dd + (i + 1) * d] += _t(X)
        tape.append((E, Er, AEr, AtE, S, X, dE, dEr, dS, dX))
        E, dE = Er + W_V @ X, dE_next
    z, dz = E[:, :, 0], dE[:, 0]                  # [B, d], [B, d, K]
    # ------------------------------------------------------------------ loss derivatives in o
    W_hr = np.repeat(W_h, B0, axis=0)             # [B, V, d]
    o = (W_hr @ z[:, :, None])[:, :, 0]
    p = np.exp(o - o.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    counts = np.tile(counts, (N, 1))
    total = counts[:B0].sum()
    n_b = counts.sum(1)
    r = (n_b[:, None] * p - counts) / total       # ∂ℓ/∂o
    V = p.shape[1]
    Lam = (n_b / total)[:, None, None] * (p[:, :, None] * np.eye(V) - p[:, :, None] * p[:, None, :])
    u = (r[:, None, :] @ W_hr)[:, 0]              # W_hᵀ r
    # ------------------------------------------------------------------ reverse + its tangents
    Ebar = u[:, :, None]                          # adjoint of the last loop's output (one column)
    dEbar = None
    G_A = np.zeros((N, d, d))
    dphi_bar = np.zeros((N, 2, d, d, K))          # ∂Ā_ij/∂φ_k, then ∂V̄_ij/∂φ_k: ∇²_φ's rows
    dA_bar, dV_bar = dphi_bar[:, 0], dphi_bar[:, 1]
    for t in reversed(range(loops)):
        E, Er, AEr, AtE, S, X, dE, dEr, dS, dX = tape[t]
        # E' = Er + W_V X:  V̄ += Σ Ē' Xᵀ,  X̄ = W_Vᵀ Ē'
        dV_bar += rowsum(Ebar, dX)
        if dEbar is not None:
            dV_bar += np.swapaxes(rowsum(X, dEbar), 1, 2)
        Xbar = Vt @ Ebar                          # [B, d, c]
        dXbar = lmul(Vt, dEbar) if dEbar is not None else np.zeros((B, Xbar.shape[2], d, K))
        for j in range(d):                        # direction W_V = e_i e_jᵀ: W_Vᵀ-tangent adds e_j Ē'[b, i, :]
            dXbar[:, :, j, dd + j::d] += _t(Ebar)
        # X = E S:  Ē = X̄ Sᵀ,  S̄ = Eᵀ X̄
        Sbar = _t(E) @ Xbar                       # [B, n, c]
        dSbar = lmul(_t(E), dXbar)
        if dE is not None:
            dSbar += tmul(Xbar, dE)
        dSbar_t = np.swapaxes(dSbar, 1, 2)        # the tangent of S̄ᵀ
        # S = Eᵀ A Er:  Ē += A Er S̄ᵀ,  Ēr += Aᵀ E S̄,  Ā += Σ E S̄ Erᵀ
        ES = E @ Sbar                             # [B, d, c]
        G_A += (ES.reshape(N, B0, d, -1).transpose(0, 2, 1, 3).reshape(N, d, -1)
                @ Er.reshape(N, B0, d, -1).transpose(0, 1, 3, 2).reshape(N, -1, d))
        dES = lmul(E, dSbar)                      # d(E S̄), its Ȧ-free part
        if dE is not None:
            dES += rmul(dE, Sbar)
        dA_bar += np.swapaxes(rowsum(Er, dES), 1, 2)
        if dE is None:                            # the first loop: E0's adjoint is not needed
            break
        dA_bar += rowsum(ES, dEr)
        ErSt = Er @ _t(Sbar)                      # [B, d, n]
        dErSt = lmul(Er, dSbar_t) + rmul(dEr, _t(Sbar))   # d(Er S̄ᵀ)
        dEbar_in = rmul(dXbar, _t(S)) + lmul(Xbar, np.swapaxes(dS, 1, 2)) + lmul(A, dErSt)
        dEr_bar = lmul(At, dES)
        if dEbar is not None:
            dEr_bar += dEbar
        # Ȧ = e_i e_jᵀ: (Ȧ Er) S̄ᵀ puts (Er S̄ᵀ)[b, j, :] in row i; (Ȧᵀ E) S̄ puts (E S̄)[b, i, :] in row j.
        for i in range(d):
            dEbar_in[:, :, i, i * d:(i + 1) * d] += _t(ErSt)
            dEr_bar[:, :, i, i:dd:d] += _t(ES)
        Ebar_in = Xbar @ _t(S) + A @ ErSt
        Er_bar = Ebar + At @ ES                   # [B, d, c]
        if Er.shape[2] == E.shape[2]:
            Ebar, dEbar = Ebar_in + Er_bar, dEbar_in + dEr_bar
        else:                                     # Er is E's last column
            Ebar_in[:, :, -1:] += Er_bar
            dEbar_in[:, -1:] += dEr_bar
            Ebar, dEbar = Ebar_in, dEbar_in
    # ------------------------------------------------------------------ assemble ∇²ℓ in ψ
    P = K + V * d
    J = np.zeros((B, V, P))                       # ∂o_b/∂ψ
    J[:, :, :K] = W_hr @ dz
    for y in range(V):
        J[:, y, K + y * d:K + (y + 1) * d] = z
    LJ = Lam @ J                                  # [B, V, P]
    H = _t(J.reshape(N, B0 * V, P)) @ LJ.reshape(N, B0 * V, P)
    H[:, :K, :K] += dphi_bar.reshape(N, K, K)
    cross = (_t(r.reshape(N, B0, V)) @ dz.reshape(N, B0, d * K)).reshape(N, V * d, K)
    H[:, K:, :K] += cross
    H[:, :K, K:] += _t(cross)
    return H, G_A


def _lift_rows(M: np.ndarray, W_K: np.ndarray, W_Q: np.ndarray) -> np.ndarray:
    """Rows indexed by ψ = (A, ...) → rows indexed by θ = (W_K, W_Q, ...): Jᵀ M, per weight set.

    ∂A_ij/∂(W_K)_mi' = δ_ii' (W_Q)_mj and ∂A_ij/∂(W_Q)_mj' = δ_jj' (W_K)_mi.
    M [N, P_ψ, R] → [N, P, R], C-contiguous; every block is batched BLAS products.
    """
    N, d = W_K.shape[:2]
    dd, R = d * d, M.shape[2]
    A_rows = M[:, :dd].reshape(N, d, d, R)
    out = np.empty((N, dd + M.shape[1], R))
    # [e, m, i, :] = Σ_j W_Q[e, m, j] M[e, (i, j), :]: for each i, W_Q times the rows (i, ·)
    np.matmul(W_Q[:, None], A_rows, out=np.swapaxes(out[:, :dd].reshape(N, d, d, R), 1, 2))
    # [e, m, j, :] = Σ_i W_K[e, m, i] M[e, (i, j), :]: one product per weight set
    np.matmul(W_K, M[:, :dd].reshape(N, d, d * R), out=out[:, dd:2 * dd].reshape(N, d, d * R))
    out[:, 2 * dd:] = M[:, dd:]
    return out


def loss_hessians(thetas: np.ndarray, E0: np.ndarray, counts: np.ndarray, loops: int) -> np.ndarray:
    """∇²L(θ) [N, P, P] at N weight vectors θ [N, P] of
    L = models.weighted_cross_entropy(models.logits(θ, E0, loops), counts),
    θ = (W_K, W_Q, W_V, W_h) flattened row-major; float64, exact (no approximation).
    Batching weight sets amortises numpy's per-call overhead at small d."""
    thetas = np.asarray(thetas, dtype=np.float64)
    E0 = np.asarray(E0, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    d = E0.shape[1]
    W_K, W_Q, W_V, W_h = unflatten(thetas, d)
    H_psi, G_A = reduced_hessians(_t(W_K) @ W_Q, W_V, W_h, E0, counts, loops)
    # Jᵀ H_ψ J = ((Jᵀ H_ψ) J)ᵀᵀ: lift the rows, then the rows of the transpose (made contiguous)
    H = _t(_lift_rows(np.ascontiguousarray(_t(_lift_rows(H_psi, W_K, W_Q))), W_K, W_Q))
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


def batch_size(d: int, loops: int) -> int:
    """Weight sets per call: batching amortises numpy's per-call overhead at small d, but a
    call keeps `loops` loops of tangents (~27 · 2d⁴ · N doubles each) and past ~192 / (loops ·
    d²) sets they outgrow the L2 cache: Looped-Attn (T = 3) at d = 6 or 8 then costs more per
    weight set (d = 8: 3.1 ms at N = 1, 3.8 at N = 4), while Single-Attn's one loop gains up
    to a whole chunk of ten at d = 4 (a chunk: 0.20 → 0.17 ms per spectrum, eigenvalues included)."""
    return max(1, 192 // (loops * d * d))


def hessian_batches(thetas: np.ndarray, loops: np.ndarray, E0: np.ndarray, counts: np.ndarray):
    """Yield (indices, ∇²L [k, P, P]) for the weight sets θ [N, P] with their loop counts:
    weight sets with equal loops are batched in order (batch_size(d, loops) a call), so a given
    list of (θ, loops) always takes the same arithmetic path (same numbers, bit for bit)."""
    thetas = np.asarray(thetas, dtype=np.float64)
    loops = np.asarray(loops).astype(int)
    B0, d, n = E0.shape
    steps = {int(T): batch_size(d, int(T)) for T in np.unique(loops)}
    keep_heap(8 * max(steps.values(), default=1) * B0 * n * d * 2 * d * d)
    for T, step in steps.items():
        idx = np.nonzero(loops == T)[0]
        for begin in range(0, len(idx), step):
            part = idx[begin:begin + step]
            yield part, loss_hessians(thetas[part], E0, counts, int(T))


def spectra(thetas: np.ndarray, loops: np.ndarray, E0: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Eigenvalues [N, P], ascending, of the exact loss Hessian at each θ [N, P] with its
    loop count (hessian_batches, then dsyevr on each)."""
    out = np.empty(np.shape(thetas))
    for part, hessians in hessian_batches(thetas, loops, E0, counts):
        for i, H in zip(part, hessians):
            out[i] = symmetric_eigenvalues(H)
    return out


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameters (malloc.h)
_kept = 0


def keep_heap(tangent_bytes: int) -> None:
    """Let glibc keep the Hessian's freed temporaries for the next call instead of handing
    them back to the OS.

    A call allocates and frees tens of arrays the size of one tangent (B·n·d·K doubles:
    5 MB at d = 16, 0.3 MB at d = 4). By default each is a fresh mmap or trimmed heap,
    and the page faults of zeroing them again cost as much CPU as the arithmetic
    (d = 16 Looped: 57 → 37 ms; d = 4: 0.8 → 0.5 ms per spectrum; bench_curvature.py).
    So blocks up to 4 tangents come from the heap, and up to 32 tangents of free heap stay
    mapped. Only ever raised; process-wide; nothing happens off glibc.
    """
    global _kept
    if tangent_bytes <= _kept:
        return
    _kept = tangent_bytes
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    mmap_threshold, trim_threshold = heap_thresholds(tangent_bytes)
    libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)


def release_heap() -> None:
    """Hand the free heap that keep_heap kept back to the OS (glibc's malloc_trim): a warm
    spectrum worker calls it when it goes idle, so that one large-d job does not leave it
    holding that job's peak for good (d = 24: ~300 MB). Nothing happens off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


def heap_thresholds(tangent_bytes: int) -> tuple[int, int]:
    """keep_heap's (mmap threshold, trim threshold) in bytes: C ints (ctypes would silently
    wrap a larger value), the mmap threshold within glibc's 32 MB maximum."""
    return (min(32 << 20, max(1 << 20, 4 * tangent_bytes)),
            min(2**31 - 1, max(16 << 20, 32 * tangent_bytes)))
