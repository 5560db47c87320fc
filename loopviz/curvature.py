"""Exact Hessians, their eigenspectra, and what the paper reads from them (Sec. 4.1–4.2).

Matrix entropy and mutual information (Sec. 4.1, App. E.1.2) need a distribution
p(|λ|); the paper's formula sums over the eigenvalue index i but leaves p open. Two
readings, chosen by `RunConfig.entropy_definition`:

- "histogram": bin |λ| on fixed log-spaced bins (the same edges at every epoch),
      E(H) = −Σ_b p_b log p_b,  p_b = share of eigenvalues in bin b,
      I(H_s; H_{s+1}) = Σ_{a,b} p_ab log(p_ab / (p_a p_b)),
  p_ab = share of ranks i whose i-th largest eigenvalue is in bin a at s and b at s+1.
- "spectral": p_i = |λ_i| / Σ_j |λ_j| over the eigenvalue index (the formula read
  literally), E = −Σ_i p_i log p_i; the joint of two epochs is the comonotone coupling
  of p(s) and p(s+1) over the rank order (eigenvalues sorted by size, cumulative
  masses matched), the rank-paired analogue of the histogram's joint.

Either way the joint's marginals are the two epochs' distributions, so
I ≤ min(E(H_s), E(H_{s+1})) holds exactly, as App. E.1.2 states.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used, so that summaries load without it
    import torch


def exact_hessian(loss: Callable[["torch.Tensor"], "torch.Tensor"], theta: "torch.Tensor") -> "torch.Tensor":
    """∇²loss(θ) [P, P] as the Jacobian of the gradient, reverse over reverse (exact up to
    float rounding). Measured here, it beats forward-over-reverse (torch.func.hessian) by
    10–30 % on these small models; the tests check it against finite differences and a
    second autograd method."""
    import torch  # here, not at the top: the spectrum-summary functions below must load without torch

    return torch.func.jacrev(torch.func.jacrev(loss))(theta)


def eigenspectrum(hessian: "torch.Tensor") -> np.ndarray:
    """All eigenvalues, ascending, float64 (the Hessian is symmetrised against rounding).

    On the CPU, LAPACK's MRRR driver (scipy, 'evr') was measured ~2x faster than
    torch.linalg.eigvalsh at P = 816; on a GPU the matrix stays there.
    """
    import scipy.linalg
    import torch

    sym = 0.5 * (hessian + hessian.T)
    if sym.device.type == "cpu":
        return scipy.linalg.eigvalsh(sym.to(torch.float64).numpy(), driver="evr", check_finite=False)
    return torch.linalg.eigvalsh(sym.to(torch.float64)).cpu().numpy()


def symmetric_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """All eigenvalues of a real symmetric float64 matrix, ascending; overwrites `matrix`.

    LAPACK's MRRR driver dsyevr, eigenvalues only, called directly: it reads one
    triangle (no symmetrised copy) and, handed the transpose of a C-ordered matrix,
    works in place (no Fortran-order copy either).
    """
    from scipy.linalg import lapack

    a = matrix.T if matrix.flags.c_contiguous else np.asfortranarray(matrix)
    w, _, m, _, info = lapack.dsyevr(a, compute_v=0, lower=1, overwrite_a=1)
    if info != 0 or m != len(a):
        raise np.linalg.LinAlgError(f"dsyevr failed (info = {info}, {m} of {len(a)} eigenvalues)")
    return w


def log_bin_edges(n_bins: int, lo: float, hi: float) -> np.ndarray:
    return np.geomspace(lo, hi, n_bins + 1)


def bin_index(eigenvalues: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each |λ|; values below the first edge go to bin 0, above the last to the last."""
    idx = np.searchsorted(edges, np.abs(eigenvalues), side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _row_entropies(codes: np.ndarray, n: int) -> np.ndarray:
    """−Σ p log p of each row's empirical distribution of integer codes in [0, n): [R, P] → [R].
    The rows, sorted and offset by row·n, make one sorted array whose runs are the counts."""
    R, P = codes.shape
    if R == 0 or P == 0:
        return np.zeros(R)
    flat = (np.sort(codes, axis=1) + n * np.arange(R)[:, None]).ravel()
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    p = np.diff(np.r_[starts, flat.size]) / P
    return np.bincount(flat[starts] // n, weights=-p * np.log(p), minlength=R)


def matrix_entropy(eigenvalues: np.ndarray, edges: np.ndarray) -> float:
    """E(H) = −Σ p log p over the histogram of |λ| (nats)."""
    counts = np.bincount(bin_index(eigenvalues, edges), minlength=len(edges) - 1)
    return _entropy(counts / counts.sum())


def mutual_information(eig_s: np.ndarray, eig_next: np.ndarray, edges: np.ndarray) -> float:
    """I(H_s; H_{s+1}) from the joint histogram of rank-paired eigenvalues (nats)."""
    n_bins = len(edges) - 1
    a = bin_index(np.sort(eig_s)[::-1], edges)
    b = bin_index(np.sort(eig_next)[::-1], edges)
    joint = np.bincount(a * n_bins + b, minlength=n_bins * n_bins).reshape(n_bins, n_bins) / len(a)
    # I = H(a) + H(b) − H(a, b): exact for empirical distributions, and never negative.
    return max(0.0, _entropy(joint.sum(1)) + _entropy(joint.sum(0)) - _entropy(joint.ravel()))


ENTROPY_DEFINITIONS = ("histogram", "spectral")


def spectral_distribution(eigenvalues: np.ndarray) -> np.ndarray:
    """p_i = |λ_i| / Σ|λ| over the eigenvalues sorted by |λ|, largest first (uniform if all are 0)."""
    a = np.sort(np.abs(np.asarray(eigenvalues, dtype=float)))[::-1]
    total = a.sum()
    return a / total if total > 0 else np.full(a.size, 1.0 / a.size)


def spectral_entropy(eigenvalues: np.ndarray) -> float:
    """E(H) = −Σ_i p_i log p_i with p_i = |λ_i| / Σ|λ| (nats)."""
    return _entropy(spectral_distribution(eigenvalues))


def spectral_mutual_information(eig_s: np.ndarray, eig_next: np.ndarray) -> float:
    """I between the two epochs' p_i under the comonotone coupling over rank (nats).

    The cumulative masses P_i, Q_j of the two rank-ordered distributions cut [0, 1] into
    pieces; a piece inside P's cell i and Q's cell j carries joint mass p_ij = its width.
    Its marginals are p and q exactly, so 0 ≤ I = H(p) + H(q) − H(p_ij) ≤ min(H(p), H(q)).
    """
    p, q = spectral_distribution(eig_s), spectral_distribution(eig_next)
    P, Q = np.cumsum(p), np.cumsum(q)
    P[-1] = Q[-1] = 1.0
    cuts = np.unique(np.concatenate([[0.0], P, Q]))
    widths = np.diff(cuts)
    h_p, h_q = _entropy(p), _entropy(q)
    return float(min(max(0.0, h_p + h_q - _entropy(widths[widths > 0])), h_p, h_q))


def mi_copy_share(entropy: np.ndarray, mi: np.ndarray):
    """Share of epochs (with an MI) where I(H_s; H_{s+1}) equals min(E_s, E_{s+1}) to 1e-9: where
    the MI curve is only a copy of the entropy curve (stats.Share, with its interval)."""
    from .stats import share

    e, i = np.asarray(entropy, dtype=float), np.asarray(mi, dtype=float)
    ok = np.isfinite(i[1:]) & np.isfinite(e[1:]) & np.isfinite(e[:-1])
    return share(np.isclose(i[1:][ok], np.minimum(e[1:], e[:-1])[ok], rtol=0, atol=1e-9))


def entropy_and_mi(eigenvalues: np.ndarray, definition: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entropy of each spectrum [S] and MI of each with the previous one [S] (NaN at 0)."""
    if definition not in ENTROPY_DEFINITIONS:
        raise ValueError(f"entropy definition must be one of {', '.join(ENTROPY_DEFINITIONS)}, got {definition!r}")
    S = len(eigenvalues)
    mi = np.full(S, np.nan)
    if definition == "histogram":
        # matrix_entropy and mutual_information (to round-off: the terms are summed in another
        # order), every spectrum sorted, binned and counted at once: a live page recomputes
        # ~1500 spectra a tick (one spectrum at a time 120 ms, one binning 38 ms, now ~4 ms).
        n_bins = len(edges) - 1
        ranked = bin_index(np.sort(np.asarray(eigenvalues), axis=1)[:, ::-1], edges) if S else np.zeros((0, 0), int)
        entropy = _row_entropies(ranked, n_bins)
        if S > 1:
            # I = H(a) + H(b) − H(a, b), the marginals being the two spectra's own histograms
            joint = _row_entropies(ranked[:-1] * n_bins + ranked[1:], n_bins * n_bins)
            mi[1:] = np.maximum(0.0, entropy[:-1] + entropy[1:] - joint)
    else:
        entropy = np.array([spectral_entropy(e) for e in eigenvalues])
        for s in range(1, S):
            mi[s] = spectral_mutual_information(eigenvalues[s - 1], eigenvalues[s])
    return entropy, mi


def valley_columns(eigenvalues: np.ndarray, eps: float, delta: float, tau: float) -> dict[str, np.ndarray]:
    """Definition 1 for S spectra [S, P] (ascending or not): per spectrum the valley size
    n_valley (eigenvalues > eps; the rest, negative curvature included, is the river),
    kappa_valley = λ_max / λ_min over the valley (NaN when it is empty), valley_shape "U" when
    κ ≤ 1 + δ, "V" otherwise, "-" when empty, and n_low_curvature, the valley eigenvalues ≤ tau
    (Assumption 1's m)."""
    valley = eigenvalues > eps
    n_valley = valley.sum(1, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(valley, eigenvalues, -np.inf).max(1, initial=-np.inf) / \
            np.where(valley, eigenvalues, np.inf).min(1, initial=np.inf)
    kappa[n_valley == 0] = np.nan
    return {"kappa_valley": kappa, "n_valley": n_valley,
            "n_low_curvature": (valley & (eigenvalues <= tau)).sum(1, dtype=np.int64),
            "valley_shape": np.where(n_valley == 0, "-", np.where(kappa <= 1 + delta, "U", "V"))}


@dataclass(frozen=True)
class Assumption1:
    """Assumption 1 (Sec. 4.3) at threshold τ between a Single (1) and a Looped (2) valley
    spectrum: (a) m₂ > m₁, (b) λ̃_j^(2) < λ̃_j^(1) for j ≤ m₁ (sorted)."""

    tau: float
    m1: int           # valley eigenvalues ≤ τ of the Single-Attn (U) valley
    m2: int           # valley eigenvalues ≤ τ of the Looped-Attn (V) valley
    dimension: bool   # (a) m2 > m1
    dominance: bool   # (b); vacuously true when m1 = 0

    @property
    def holds(self) -> bool:
        return self.dimension and self.dominance

    def describe(self) -> str:
        """One line naming what holds and what breaks."""
        parts = [f"(a) m₂ = {self.m2} {'>' if self.dimension else '≤'} m₁ = {self.m1}"]
        if self.m1 == 0:
            parts.append("(b) vacuous (m₁ = 0)")
        else:
            parts.append("(b) sorted dominance " + ("holds" if self.dominance else "fails"))
        return f"τ = {self.tau:g}: " + "; ".join(parts)


def check_assumption1(single_valley: np.ndarray, looped_valley: np.ndarray,
                      tau: float) -> Assumption1:
    """Assumption 1 for two spectra that are already valley eigenvalues (all > ε)."""
    small_1 = np.sort(single_valley[single_valley <= tau])
    small_2 = np.sort(looped_valley[looped_valley <= tau])
    m1, m2 = small_1.size, small_2.size
    # Dominance compares the m1 smallest valley eigenvalues of each; it needs m2 >= m1.
    dominance = m2 >= m1 and bool(np.all(small_2[:m1] < small_1))
    return Assumption1(tau, m1, m2, m2 > m1, dominance)


def assumption1(eig_single: np.ndarray, eig_looped: np.ndarray, eps: float, tau: float) -> Assumption1:
    """Assumption 1 on full Hessian spectra: the valley is the eigenvalues above ε (Definition 1)."""
    return check_assumption1(eig_single[eig_single > eps], eig_looped[eig_looped > eps], tau)


PHASE_NAMES = {0: "no significant phase", 1: "collapse", 2: "diversification", 3: "stabilisation"}
PHASE_ALPHA = 0.05        # level of the permutation test
PHASE_PERMUTATIONS = 199  # time shuffles the test compares against
PHASE_BLOCKS = 60         # the curve is smoothed into at most this many block means
PHASE_MIN_BLOCKS = 3      # a fitted segment spans at least this many blocks
PHASE_MAX_SEGMENTS = 6


@dataclass(frozen=True)
class PhaseFit:
    """Observation 2's phases on one entropy curve, with the test that licenses them.

    labels: per point, 0 no significant phase, 1 collapse, 2 diversification,
    3 stabilisation. p_value: of the permutation test of 'no structure in time'.
    breaks: the fitted change points (point indices). fitted: the piecewise-linear fit
    per point (flat segments at their mean), NaN when not significant.
    """

    labels: np.ndarray
    p_value: float
    significant: bool
    breaks: tuple[int, ...]
    alpha: float
    fitted: np.ndarray      # the piecewise-linear fit, per point (NaN when not significant)

    def sentence(self, label: str = "this curve", epochs: np.ndarray | None = None) -> str:
        """One sentence for the page; phases as epoch ranges when `epochs` (one per point) is given."""
        if not np.isfinite(self.p_value):
            return f"{label}: too short to test for phases."
        if not self.significant:
            return (f"{label}: no significant phase (permutation test against {PHASE_PERMUTATIONS} time shuffles, "
                    f"p = {self.p_value:.2f} > α = {self.alpha:g}).")
        where = np.arange(self.labels.size) if epochs is None else np.asarray(epochs)
        found = [f"{PHASE_NAMES[k]} {_span(self.labels, k, where)}" for k in (1, 2, 3) if np.any(self.labels == k)]
        return (f"{label}: structure in time (p = {self.p_value:.3f} ≤ α = {self.alpha:g}); "
                + ("; ".join(found) if found else "but none of the three phases' shapes") + ".")


def _span(labels: np.ndarray, k: int, epochs: np.ndarray) -> str:
    idx = np.nonzero(labels == k)[0]
    return f"{int(epochs[idx[0]])}–{int(epochs[idx[-1]])}"


def _block_means(y: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of m near-equal consecutive blocks of a curve y [n], and each point's block."""
    owner = (np.arange(y.size) * m) // y.size
    return np.bincount(owner, weights=y, minlength=m) / np.bincount(owner, minlength=m), owner


def _segment_costs(Y: np.ndarray, min_len: int) -> np.ndarray:
    """SSE of the least-squares line through Y[b, i:j] for every segment [i, j): [B, m+1, m+1],
    inf for segments shorter than min_len. Prefix sums make each entry O(1)."""
    B, m = Y.shape
    t = np.linspace(0.0, 1.0, m)
    def prefix(v):  # noqa: E306 — [.., m+1], cumulative with a leading 0
        return np.concatenate([np.zeros(v.shape[:-1] + (1,)), np.cumsum(v, axis=-1)], axis=-1)
    St, Stt = prefix(t), prefix(t * t)
    Sy, Syy, Sty = prefix(Y), prefix(Y * Y), prefix(Y * t)
    def span(S):  # S[..., j] − S[..., i] as [..., i, j], by broadcasting
        return S[..., None, :] - S[..., :, None]
    idx = np.arange(m + 1)
    n = (idx[None, :] - idx[:, None]).astype(float)
    ok = n >= min_len
    n = np.where(ok, n, 1.0)
    st, stt = span(St), span(Stt)
    sy, syy, sty = span(Sy), span(Syy), span(Sty)
    vt = stt - st * st / n
    cov = sty - st * sy / n
    sse = syy - sy * sy / n - np.where(vt > 1e-15, cov * cov / np.where(vt > 1e-15, vt, 1.0), 0.0)
    return np.where(ok, np.maximum(sse, 0.0), np.inf)


def _best_partitions(C: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Least SSE with exactly k = 1..K segments [B, K] (segment neighbourhood DP), and the
    back-pointers [B, K, m+1] (start of the last segment of the best k-partition of [0, j))."""
    B, m1, _ = C.shape
    F = np.full((B, K, m1), np.inf)
    back = np.zeros((B, K, m1), dtype=np.int64)
    F[:, 0] = C[:, 0]
    for k in range(1, K):
        total = F[:, k - 1][:, :, None] + C          # [B, i, j]: k segments in [0, i), one in [i, j)
        back[:, k] = np.argmin(total, axis=1)
        F[:, k] = np.take_along_axis(total, back[:, k][:, None, :], axis=1)[:, 0]
    return F[:, :, -1], back


def _gain_statistic(Y: np.ndarray, K: int, min_len: int):
    """β* = max_k (SSE_constant − SSE_k) / k: the least penalty per segment at which the
    best penalised piecewise-linear fit is the constant. Large when the curve has shape."""
    C = _segment_costs(Y, min_len)
    best, back = _best_partitions(C, K)
    const = ((Y - Y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    gains = (const[:, None] - best) / np.arange(1, K + 1)
    return np.nanmax(np.where(np.isfinite(gains), gains, -np.inf), axis=1), best, back, C


PHASE_ROWS_PER_PASS = 25   # shuffled curves per dynamic-programming pass in phase_test


def phase_test(entropy: np.ndarray, alpha: float = PHASE_ALPHA, permutations: int = PHASE_PERMUTATIONS,
               blocks: int = PHASE_BLOCKS, seed: int = 0) -> PhaseFit:
    """Observation 2's three phases, found only where a permutation test finds structure.

    1. Smooth: the curve is averaged into at most `blocks` consecutive block means.
    2. Fit: penalised piecewise-linear change points (least SSE + β per segment, up to
       PHASE_MAX_SEGMENTS segments of ≥ PHASE_MIN_BLOCKS blocks, exact DP).
    3. Test and calibrate: the same statistic β* on `permutations` time shuffles of the
       curve gives its null distribution (exact level α for any exchangeable curve —
       i.i.d. noise or a shuffled real curve); p = (1 + #{β*_shuffle ≥ β*}) / (1 + B).
       Not significant: every point is 0. Else the fit uses β = the shuffles' (1 − α)
       quantile, so only changes larger than any shuffle's are kept.
    4. Name: a segment whose slope does not pay β is flat (its mean). Collapse runs from
       the fit's highest point before its first minimum to that minimum, if it drops by
       more than 2 residual sd; stabilisation is the last segment when flat; diversification lies
       between, when the fit rises above the minimum by more than 2 residual sd there.
       Anything else stays 0. Reproducible: the shuffles are seeded.
    """
    y = np.asarray(entropy, dtype=float)
    n = y.size
    none = PhaseFit(np.zeros(n, dtype=np.int64), float("nan"), False, (), alpha, np.full(n, np.nan))
    m = min(blocks, n)
    if m < 3 * PHASE_MIN_BLOCKS or not np.all(np.isfinite(y)):
        return none  # too short (or broken) to test: p is NaN, the page says so
    if np.ptp(y) == 0:
        return PhaseFit(none.labels, 1.0, False, (), alpha, none.fitted)
    K = min(PHASE_MAX_SEGMENTS, m // PHASE_MIN_BLOCKS)
    rng = np.random.default_rng(seed)
    shuffled = np.stack([rng.permutation(y) for _ in range(permutations)])
    Yall = np.concatenate([y[None], shuffled])
    Yb = np.stack([_block_means(row, m)[0] for row in Yall])
    # The shuffles' statistics in slices (each row is its own; the DP's tables are
    # [rows, m + 1, m + 1]: ~45 MB for all 200 rows at once, a server's peak).
    stat, best, back, C = _gain_statistic(Yb[:1], K, PHASE_MIN_BLOCKS)
    observed = stat[0]
    null = np.concatenate([_gain_statistic(Yb[i:i + PHASE_ROWS_PER_PASS], K, PHASE_MIN_BLOCKS)[0]
                           for i in range(1, len(Yb), PHASE_ROWS_PER_PASS)])
    p_value = float((1 + np.sum(null >= observed)) / (1 + permutations))
    if p_value > alpha:
        return PhaseFit(none.labels, p_value, False, (), alpha, none.fitted)
    beta = float(np.quantile(null, 1 - alpha))
    k_hat = int(np.argmin(best[0] + beta * np.arange(1, K + 1))) + 1
    # Back-track the best k_hat-segment partition of the observed block curve.
    ends, j = [m], m
    for k in range(k_hat - 1, 0, -1):
        j = int(back[0, k, j])
        ends.insert(0, j)
    starts = [0] + ends[:-1]
    yb, owner = _block_means(y, m)
    t = np.linspace(0.0, 1.0, m)
    fit = np.empty(m)
    flat = []
    for a, b in zip(starts, ends):
        seg = yb[a:b]
        const = float(((seg - seg.mean()) ** 2).sum())
        is_flat = const - C[0, a, b] < beta
        flat.append(is_flat)
        fit[a:b] = seg.mean() if is_flat else np.polyval(np.polyfit(t[a:b], seg, 1), t[a:b])
    noise = 2.0 * np.sqrt(max(float(((yb - fit) ** 2).mean()), 0.0))
    bottom = int(np.argmin(fit))
    block_labels = np.zeros(m, dtype=np.int64)
    peak = int(np.argmax(fit[:bottom + 1]))   # a rise before the drop is none of the three phases
    collapse_end = bottom if fit[peak] - fit[bottom] > noise else 0
    block_labels[peak:collapse_end] = 1
    stable_from = max(starts[-1], collapse_end) if flat[-1] and len(starts) > 1 else m
    block_labels[stable_from:] = 3
    middle = slice(collapse_end, stable_from)
    if stable_from > collapse_end and fit[middle].max() - fit[middle].min() > noise:
        block_labels[middle] = 2
    labels = block_labels[owner]
    breaks = tuple(int(np.argmax(owner >= b)) for b in starts[1:])
    return PhaseFit(labels, p_value, True, breaks, alpha, fit[owner])


def detect_phases(entropy: np.ndarray) -> np.ndarray:
    """Per-point phase labels of an entropy curve (0 = no significant phase); see phase_test."""
    return phase_test(entropy).labels


@dataclass(frozen=True)
class Observation2:
    """Observation 2 (Sec. 4.1) on one run's spectra under one reading of p(|λ|): entropy,
    MI and phase per training record (NaN at epochs without a spectrum), the phase test,
    and how often the MI curve is only a copy of min(E_s, E_s+1) (App. E.1.2's bound met)."""

    columns: dict[str, np.ndarray]   # "entropy", "mutual_info", "phase", one value per record epoch
    fit: PhaseFit
    copies: object                   # stats.Share over the records that have a spectrum

    def sentence(self, label: str, spectrum_epochs: np.ndarray) -> str:
        return (f"{self.fit.sentence(label, spectrum_epochs)} MI equals min(E_s, E_s+1) at "
                f"{self.copies.text()} of its epochs.")


def observation2(eigenvalues: np.ndarray, spectrum_epochs: np.ndarray, record_epochs: np.ndarray,
                 definition: str, edges: np.ndarray) -> Observation2:
    """Entropy, MI and phases recomputed from spectra [S, P] (taken at `spectrum_epochs`)
    under `definition`, laid out on the run's record epochs: the page's toggle between the
    two readings of p(|λ|) without retraining."""
    entropy, mi = entropy_and_mi(eigenvalues, definition, edges)
    fit = phase_test(entropy)
    position = {int(e): i for i, e in enumerate(spectrum_epochs)}
    index = np.array([position.get(int(e), -1) for e in record_epochs], dtype=np.int64)
    has = index >= 0
    columns = {}
    for name, values in (("entropy", entropy), ("mutual_info", mi), ("phase", fit.labels)):
        column = np.full(index.size, np.nan)
        column[has] = values[index[has]]
        columns[name] = column
    shown = np.isfinite(columns["entropy"])
    return Observation2(columns, fit, mi_copy_share(columns["entropy"][shown], columns["mutual_info"][shown]))


def summarise_spectra(eigenvalues: np.ndarray, eps: float, delta: float, tau: float,
                      edges: np.ndarray, definition: str = "histogram") -> dict[str, np.ndarray]:
    """Per-spectrum columns for S spectra [S, P]: entropy and MI with the previous one (by
    `definition`), Def. 1's valley numbers, extremes, and the phases of the entropy curve."""
    S = len(eigenvalues)
    entropy, mi = entropy_and_mi(eigenvalues, definition, edges)
    return {
        "entropy": entropy,
        "mutual_info": mi,
        **valley_columns(eigenvalues, eps, delta, tau),
        "lambda_min": eigenvalues[:, 0] if S else np.zeros(0),
        "lambda_max": eigenvalues[:, -1] if S else np.zeros(0),
        "phase": detect_phases(entropy) if S else np.zeros(0, dtype=np.int64),
    }
