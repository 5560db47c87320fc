"""River-valley losses run by gradient descent, and the quantities of Sec. 4.3 / App. F.

Setting 1 (Sec. 4.3, Remark 4), with H_VR = H_RVᵀ:
    L(θ_V, θ_R) = ½ θ_Vᵀ H_V θ_V − h_Rᵀ θ_R + θ_Rᵀ H_RV θ_V.
Gradient descent as App. F.2 writes it, both blocks updated from step k:
    θ_V,k+1 = (I − η H_V) θ_V,k − η H_VR θ_R,k                                  (eq. 1)
    θ_R,k+1 = θ_R,k − η (H_RV θ_V,k − h_R)                                       (eq. 2)
so that θ_R,K − θ_R,0 = K η h_R − C_K with the cumulative force
    C_K = η Σ_{k<K} H_RV θ_V,k                                                   (eq. 3).

Theorem 1 does not bound C_K. It bounds the unforced part (eq. 6)
    Ĉ_K = η Σ_{k<K} H_RV Φ^k θ_V,0 = Σ_i (v_iᵀθ_V,0 / λ_i) H_RV v_i (1 − ρ_i^K),
    Φ = I − η H_V,  ρ_i = 1 − η λ_i,
which is the force of eq. 1 *without* its river→valley term −η H_VR θ_R,k (part (a)
of eq. 4; the paper drops part (b) as "a minor perturbation"). `simulate(...,
feedback=False)` runs exactly that system, and only then does its force equal Ĉ_K.
With the feedback kept, C_K ≠ Ĉ_K and C_K is not bounded at all: the block Hessian
[[H_V, H_VR], [H_RV, 0]] is indefinite whenever H_RV ≠ 0 (its Schur complement
−H_RV H_V⁻¹ H_VR is negative), so L is unbounded below and GD eventually slides
down that direction; the flatter the valley (small λ_i), the sooner.

Setting 2 (App. F.4) is realised here as a valley whose walls stiffen away from the
floor, L_Valley(θ_V) = ½ θ_Vᵀ H^B θ_V + (γ/4) Σ_i (v_iᵀ θ_V)⁴ with v_i the eigenvectors
of H^B, so H_Valley(θ) = H^B + 3γ Σ_i (v_iᵀθ_V)² v_i v_iᵀ ⪰ H^B (Assumption 3) changes
along the path; river and coupling are those of Setting 1 (Assumption 2 holds with
h̄_gen = ‖H_RV‖).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Divergence check cadence: a diverged run is cut short (the rest filled with nan)
# instead of grinding through thousands of steps of inf arithmetic.
_FINITE_CHECK_EVERY = 64


class Trajectory(NamedTuple):
    """One gradient-descent run; row k is the state after k steps."""

    theta_v: np.ndarray   # [K+1, d_V]
    theta_r: np.ndarray   # [K+1, d_R]
    loss: np.ndarray      # [K+1]
    force: np.ndarray     # [K+1, d_R], force[k] = C_k = η Σ_{j<k} H_RV θ_V,j


class GeneralTrajectory(NamedTuple):
    """A Setting 2 run; `valley_curvature[k]` is the spectrum of H_Valley(θ_k) in H^B's eigenbasis."""

    theta_v: np.ndarray
    theta_r: np.ndarray
    loss: np.ndarray
    force: np.ndarray
    valley_curvature: np.ndarray  # [K+1, d_V]


# ---------------------------------------------------------------------------------
# Setting 1: the quadratic
# ---------------------------------------------------------------------------------

# Every preset valley is diagonal (the valley in its own eigenbasis); the helpers below
# read such an H off directly instead of paying for LAPACK or a [K, d]·[d, d] product
# on each redraw.

def _is_diagonal(H: np.ndarray) -> bool:
    return np.array_equal(H, np.diag(np.diag(H)))


def eigh(H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric H."""
    if _is_diagonal(H):
        diag = np.diag(H)
        order = np.argsort(diag, kind="stable")
        return diag[order], np.eye(diag.size)[:, order]
    return np.linalg.eigh(H)


def _quadratic_rows(theta: np.ndarray, H: np.ndarray) -> np.ndarray:
    """θᵀHθ along the last axis of θ."""
    if _is_diagonal(H):
        return (theta * theta) @ np.diag(H)
    return np.sum((theta @ H) * theta, axis=-1)


def quadratic_loss(H_valley: np.ndarray, H_rv: np.ndarray, h_r: np.ndarray,
                   theta_v: np.ndarray, theta_r: np.ndarray) -> np.ndarray:
    """Setting 1's L(θ_V, θ_R) = ½ θ_VᵀH_Vθ_V − h_Rᵀθ_R + θ_RᵀH_RVθ_V, over leading batch axes."""
    coupling = np.sum((theta_v @ H_rv.T) * theta_r, axis=-1)
    return 0.5 * _quadratic_rows(theta_v, H_valley) - theta_r @ h_r + coupling


def cumulative_force(theta_v: np.ndarray, H_rv: np.ndarray, eta: float) -> np.ndarray:
    """C_k = η Σ_{j<k} H_RV θ_V,j for k = 0..K (eq. 3), from θ_V,0..θ_V,K; C_0 = 0."""
    force = np.zeros((theta_v.shape[0], H_rv.shape[0]))
    with np.errstate(over="ignore", invalid="ignore"):
        np.cumsum(eta * theta_v[:-1] @ H_rv.T, axis=0, out=force[1:])
    return force


def _run_affine(A: np.ndarray, c: np.ndarray, z0: np.ndarray, steps: int) -> np.ndarray:
    """Iterates z_{k+1} = A z_k + c; rows after a blow-up are nan."""
    z = np.empty((steps + 1, z0.size))
    z[0] = z0
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            np.dot(A, z[k], out=z[k + 1])
            z[k + 1] += c
            if k % _FINITE_CHECK_EVERY == 0 and not np.isfinite(z[k + 1]).all():
                z[k + 2:] = np.nan
                break
    return z


def simulate(H_valley: np.ndarray, H_rv: np.ndarray, h_r: np.ndarray,
             theta_v0: np.ndarray, theta_r0: np.ndarray, eta: float, steps: int,
             *, feedback: bool = True) -> Trajectory:
    """Gradient descent on Setting 1 for `steps` steps, exactly eq. 1–2 of App. F.2.

    H_rv is H_RV with shape [d_R, d_V]; H_VR = H_RVᵀ. With `feedback=False` the
    river→valley term −η H_VR θ_R,k of eq. 1 is dropped, so θ_V,k = Φ^k θ_V,0 (eq. 4
    part a) and `force` equals Theorem 1's Ĉ_k (eq. 6, see `unforced_force`); the river
    still moves by eq. 2 and the loss is still Setting 1's.
    """
    d_v, d_r = theta_v0.size, theta_r0.size
    coupling_into_valley = H_rv.T if feedback else np.zeros((d_v, d_r))
    # Eq. 1–2 as one affine map on z = (θ_V, θ_R): one mat-vec per step.
    A = np.block([[np.eye(d_v) - eta * H_valley, -eta * coupling_into_valley],
                  [-eta * H_rv, np.eye(d_r)]])
    c = np.concatenate([np.zeros(d_v), eta * h_r])
    z = _run_affine(A, c, np.concatenate([theta_v0, theta_r0]).astype(float), steps)
    theta_v, theta_r = z[:, :d_v], z[:, d_v:]
    with np.errstate(over="ignore", invalid="ignore"):
        loss = quadratic_loss(H_valley, H_rv, h_r, theta_v, theta_r)
    return Trajectory(theta_v, theta_r, loss, cumulative_force(theta_v, H_rv, eta))


def geometric_weights(eigenvalues: np.ndarray, eta: float, steps: int) -> np.ndarray:
    """w[k, i] = η Σ_{j<k} ρ_i^j = (1 − ρ_i^k) / λ_i for k = 0..K (App. F.2), ρ_i = 1 − ηλ_i.

    λ_i = 0 takes the limit ηk (the sum of k ones).
    """
    lam = np.asarray(eigenvalues, dtype=float)
    rho = 1.0 - eta * lam
    powers = np.empty((steps + 1, lam.size))   # ρ_i^k by running products: far cheaper than **
    powers[0] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        np.cumprod(np.broadcast_to(rho, (steps, lam.size)), axis=0, out=powers[1:])
        flat = np.abs(eta * lam) < 1e-12
        w = (1.0 - powers) / np.where(flat, 1.0, lam)
    return np.where(flat, eta * np.arange(steps + 1)[:, None], w)


def unforced_force(H_valley: np.ndarray, H_rv: np.ndarray, theta_v0: np.ndarray,
                   eta: float, steps: int) -> np.ndarray:
    """Ĉ_k for k = 0..K in closed form (App. F.2, eq. 6 and the line after it):

        Ĉ_k = Σ_i (v_iᵀθ_V,0 / λ_i) H_RV v_i (1 − ρ_i^k),  ρ_i = 1 − ηλ_i,

    with (λ_i, v_i) the eigenpairs of H_Valley. Equals `simulate(..., feedback=False).force`.
    """
    lam, Q = eigh(H_valley)
    weights = geometric_weights(lam, eta, steps) * (Q.T @ theta_v0)   # [K+1, d_V]
    with np.errstate(over="ignore", invalid="ignore"):
        return weights @ (H_rv @ Q).T


def force_bound(valley_eigenvalues: np.ndarray, h_bar: float, alpha_bar: float) -> float:
    """Theorem 1's 𝒞 = √d_V · h̄ · ᾱ · Σ_i 1/|λ_i| (eq. 7), with h̄ ≥ ‖H_RV‖, ᾱ ≥ ‖θ_V,0‖.

    Theorem 2(a)'s 𝒞_gen is the same expression over the spectrum of H^B with h̄_gen.
    A zero eigenvalue makes the bound infinite.
    """
    lam = np.abs(np.asarray(valley_eigenvalues, dtype=float))
    if np.any(lam == 0):
        return float("inf")
    return float(np.sqrt(lam.size) * h_bar * alpha_bar * np.sum(1.0 / lam))


def force_bound_split(valley_eigenvalues: np.ndarray, h_bar: float, alpha_bar: float,
                      tau: float) -> tuple[float, float]:
    """(𝒞_dom, 𝒞_res): 𝒞's terms over λ ≤ τ and over λ > τ (App. F.2, after eq. 7).

    The proof of Corollary 1 calls 𝒞_res negligible; this lets a reader check that.
    """
    lam = np.abs(np.asarray(valley_eigenvalues, dtype=float))
    scale = np.sqrt(lam.size) * h_bar * alpha_bar
    small = lam <= tau
    with np.errstate(divide="ignore"):
        inv = 1.0 / lam
    return float(scale * inv[small].sum()), float(scale * inv[~small].sum())


# ---------------------------------------------------------------------------------
# Valley spectra (Definition 1) and Assumption 1
# ---------------------------------------------------------------------------------

def u_valley_spectrum(d_v: int, lam_max: float, kappa: float) -> np.ndarray:
    """A U-shaped valley (Definition 1): d_V cliffs evenly spread over [λ_max/κ, λ_max], κ ≈ 1."""
    return np.linspace(lam_max / kappa, lam_max, d_v)


def v_valley_spectrum(d_v: int, lam_max: float, kappa: float) -> np.ndarray:
    """A V-shaped valley (Definition 1): log-spaced over [λ_max/κ, λ_max], κ ≫ 1.

    Log spacing puts most eigenvalues near the floor: the "richer low-curvature
    spectrum" of Remark 5.
    """
    return np.geomspace(lam_max / kappa, lam_max, d_v)


@dataclass(frozen=True)
class Assumption1:
    """Assumption 1 at threshold τ: (a) m_2 > m_1, (b) λ̃_j^(2) < λ̃_j^(1) for j ≤ m_1."""

    tau: float
    m_single: int     # m_1: eigenvalues ≤ τ of the Single-Attn (U) valley
    m_looped: int     # m_2: eigenvalues ≤ τ of the Looped-Attn (V) valley
    dimension: bool   # (a)
    dominance: bool   # (b); vacuously true when m_1 = 0

    @property
    def holds(self) -> bool:
        return self.dimension and self.dominance

    def describe(self) -> str:
        """One line naming what holds and what breaks."""
        parts = [f"(a) m₂ = {self.m_looped} {'>' if self.dimension else '≤'} m₁ = {self.m_single}"]
        if self.m_single == 0:
            parts.append("(b) vacuous (m₁ = 0)")
        else:
            parts.append("(b) sorted dominance " + ("holds" if self.dominance else "fails"))
        return f"τ = {self.tau:g}: " + "; ".join(parts)


def check_assumption1(single_eigenvalues: np.ndarray, looped_eigenvalues: np.ndarray,
                      tau: float) -> Assumption1:
    """Assumption 1 (Sec. 4.3, Remark 5) for a Single-Attn and a Looped-Attn valley spectrum."""
    small_1 = np.sort(single_eigenvalues[single_eigenvalues <= tau])
    small_2 = np.sort(looped_eigenvalues[looped_eigenvalues <= tau])
    m1, m2 = small_1.size, small_2.size
    dominance = m2 >= m1 and bool(np.all(small_2[:m1] < small_1))
    return Assumption1(tau, m1, m2, m2 > m1, dominance)


def valley_pair(d_v: int, lam_max: float, kappa_u: float, kappa_v: float,
                tau: float) -> tuple[np.ndarray, np.ndarray, Assumption1]:
    """A U and a V spectrum of the same size and λ_max, and whether they satisfy Assumption 1."""
    u = u_valley_spectrum(d_v, lam_max, kappa_u)
    v = v_valley_spectrum(d_v, lam_max, kappa_v)
    return u, v, check_assumption1(u, v, tau)


# ---------------------------------------------------------------------------------
# A concrete instance
# ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One river-valley instance: the arguments of `simulate` bar η and K."""

    H_valley: np.ndarray   # [d_V, d_V]
    H_rv: np.ndarray       # [d_R, d_V]
    h_r: np.ndarray        # [d_R]
    theta_v0: np.ndarray   # [d_V]
    theta_r0: np.ndarray   # [d_R]


def make_problem(valley_eigenvalues: np.ndarray, d_r: int, coupling: float, offset: float,
                 drive: float, seed: int = 0) -> Problem:
    """Setting 1 in the valley's eigenbasis (H_V diagonal, as App. F.2 after eq. 4).

    GD is equivariant under rotations of θ_V, so the diagonal form loses nothing.
    The river flows along ĥ = e_1 with ‖h_R‖ = drive. θ_V,0 = offset · 𝟙/√d_V (the same
    start for every spectrum of one size, as Corollary 2 requires), θ_R,0 = 0.
    H_RV = coupling · B with ‖B‖₂ = 1 and Bᵀĥ ∝ −𝟙: each valley coordinate, displaced
    to the positive side, pushes the river downstream (h_Rᵀ Ĉ_K < 0, the sign App. F.3
    takes for granted); a negative coupling reverses it. B's part orthogonal to ĥ is
    seeded noise, so the valley also pushes sideways.
    """
    lam = np.asarray(valley_eigenvalues, dtype=float)
    d_v = lam.size
    ones = np.ones(d_v) / np.sqrt(d_v)
    h_hat = np.zeros(d_r)
    h_hat[0] = 1.0
    noise = np.random.default_rng(seed).standard_normal((d_r, d_v)) / np.sqrt(d_v)
    noise -= np.outer(h_hat, h_hat @ noise)
    B = -np.outer(h_hat, ones) + 0.5 * noise
    B /= np.linalg.norm(B, 2)
    return Problem(np.diag(lam), coupling * B, drive * h_hat, offset * ones, np.zeros(d_r))


def river_progress(theta_r: np.ndarray, h_r: np.ndarray) -> np.ndarray:
    """Distance travelled downstream, ĥ_Rᵀ(θ_R,k − θ_R,0), ĥ_R = h_R/‖h_R‖ (Remark 4's flow)."""
    h_hat = h_r / np.linalg.norm(h_r)
    return (theta_r - theta_r[0]) @ h_hat


# ---------------------------------------------------------------------------------
# Setting 2: a valley Hessian that varies along the path, bounded below by H^B
# ---------------------------------------------------------------------------------

def general_loss(H_floor: np.ndarray, stiffening: float, H_rv: np.ndarray, h_r: np.ndarray,
                 theta_v: np.ndarray, theta_r: np.ndarray) -> np.ndarray:
    """Setting 2's L = ½θ_VᵀH^Bθ_V + (γ/4)Σ_i(v_iᵀθ_V)⁴ − h_Rᵀθ_R + θ_RᵀH_RVθ_V, batched."""
    _, Q = eigh(H_floor)
    quartic = 0.25 * stiffening * np.sum((theta_v @ Q) ** 4, axis=-1)
    return quadratic_loss(H_floor, H_rv, h_r, theta_v, theta_r) + quartic


def simulate_general(H_floor: np.ndarray, stiffening: float, H_rv: np.ndarray,
                     h_r: np.ndarray, theta_v0: np.ndarray, theta_r0: np.ndarray,
                     eta: float, steps: int, *, feedback: bool = True) -> GeneralTrajectory:
    """Gradient descent on Setting 2 (eq. 9–10 of App. F.4, which are exact for this loss).

    H_Valley(θ_k) = H^B + 3γ Q diag((Qᵀθ_V,k)²) Qᵀ with H^B = Q Λ^B Qᵀ; H_RV(θ_k) = H_RV,
    h_R,k = h_R. `feedback=False` drops −η H_VR θ_R,k from eq. 9, leaving the valley
    path Π_j Φ_j θ_V,0 that the proof of Theorem 2 bounds.
    """
    return simulate_general_pair(H_floor, stiffening, H_rv, h_r, theta_v0, theta_r0, eta, steps,
                                 feedbacks=(feedback,))[0]


def simulate_general_pair(H_floor: np.ndarray, stiffening: float, H_rv: np.ndarray,
                          h_r: np.ndarray, theta_v0: np.ndarray, theta_r0: np.ndarray,
                          eta: float, steps: int,
                          feedbacks: tuple[bool, ...] = (True, False)) -> list[GeneralTrajectory]:
    """`simulate_general` once per feedback flag, all runs advanced in one loop (one set of
    NumPy calls per step instead of one per run)."""
    if _is_diagonal(H_floor):                           # already in its eigenbasis
        lam, Q = np.diag(H_floor), None
    else:
        lam, Q = np.linalg.eigh(H_floor)
    push = H_rv if Q is None else H_rv @ Q              # H_RV in H^B's eigenbasis
    pulls = np.array(feedbacks, dtype=float)[:, None]   # 1: river feeds back into the valley
    n = len(feedbacks)
    y = np.empty((steps + 1, n, lam.size))              # y_k = Qᵀ θ_V,k per run
    r = np.empty((steps + 1, n, theta_r0.size))
    y[0], r[0] = theta_v0 if Q is None else Q.T @ theta_v0, theta_r0
    keep, cube, step_drive = 1.0 - eta * lam, eta * stiffening, eta * h_r
    step_push, step_push_t = eta * push, np.ascontiguousarray(eta * push.T)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            yk, rk = y[k], r[k]
            y[k + 1] = keep * yk - cube * (yk * yk * yk) - pulls * (rk @ step_push)
            r[k + 1] = rk - yk @ step_push_t + step_drive
            if k % _FINITE_CHECK_EVERY == 0 and not np.isfinite(y[k + 1]).any():
                y[k + 2:], r[k + 2:] = np.nan, np.nan
                break
        runs = []
        for i in range(n):
            yi, ri = y[:, i], r[:, i]
            squares = yi * yi
            # general_loss, evaluated in the eigenbasis where it is a sum over coordinates
            loss = (squares @ (0.5 * lam) + 0.25 * stiffening * np.sum(squares * squares, axis=-1)
                    - ri @ h_r + np.sum((yi @ push.T) * ri, axis=-1))
            theta_v = yi if Q is None else yi @ Q.T
            runs.append(GeneralTrajectory(theta_v, ri, loss, cumulative_force(theta_v, H_rv, eta),
                                          lam + 3.0 * stiffening * squares))
    return runs


# ---------------------------------------------------------------------------------
# The loss on a plane through one valley direction and the river (for pictures)
# ---------------------------------------------------------------------------------

def loss_slice(eigenvalue: float, drive: float, cross: float, stiffening: float,
               river: np.ndarray, valley: np.ndarray) -> np.ndarray:
    """The loss on the plane θ_V = y v_i, θ_R = x ĥ_R through θ = 0 (broadcasts x against y):

        L(x, y) = ½ λ_i y² + (γ/4) y⁴ − ‖h_R‖ x + x y ĥ_Rᵀ H_RV v_i   (Setting 1 when γ = 0),

    with `cross` = ĥ_Rᵀ H_RV v_i. Pass river[None, :] and valley[:, None] for a grid.
    """
    x, y = river, valley
    return 0.5 * eigenvalue * y**2 + 0.25 * stiffening * y**4 - drive * x + cross * x * y


def slice_level_set(eigenvalue: float, drive: float, cross: float, stiffening: float,
                    level: np.ndarray, river: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where `loss_slice` equals `level`, as valley coordinates y₋(x) ≤ y₊(x) over `river` x.

    For fixed x, L(x, ·) − level = ½λy² + (γ/4)y⁴ + c x y − (‖h_R‖x + level) is convex in y,
    so it has two roots or none (nan). γ = 0 is the quadratic formula; γ > 0 refines those
    roots by Newton's method, which the quartic can only pull inward. Broadcasts level
    against river.
    """
    lam, c, g = eigenvalue, cross, stiffening
    x = np.asarray(river, dtype=float)
    rhs = drive * x + np.asarray(level, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        root = np.sqrt((c * x) ** 2 + 2.0 * lam * rhs)          # nan where no root
        roots = [(-c * x - root) / lam, (-c * x + root) / lam]
        for _ in range(40 if g > 0 else 0):
            roots = [y - (0.5 * lam * y**2 + 0.25 * g * y**4 + c * x * y - rhs)
                     / (lam * y + g * y**3 + c * x) for y in roots]
        level = np.broadcast_to(level, np.broadcast(x, rhs).shape)
        on_level = [np.isclose(loss_slice(lam, drive, c, g, x, y), level, rtol=1e-6, atol=1e-12)
                    for y in roots]
        return tuple(np.where(ok, y, np.nan) for ok, y in zip(on_level, roots))


def slice_contours(eigenvalue: float, drive: float, cross: float, stiffening: float,
                   river: np.ndarray, valley: np.ndarray,
                   n_levels: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss slice on the grid river × valley [len(valley), len(river)], and `n_levels`
    of its level sets (lower and upper branches over `river`, lowest level first) at
    evenly spaced quantiles of the grid's values, so the lines spread over the picture."""
    grid = loss_slice(eigenvalue, drive, cross, stiffening, river[None, :], valley[:, None])
    levels = np.quantile(grid, np.linspace(0.04, 0.96, n_levels))[:, None]
    lower, upper = slice_level_set(eigenvalue, drive, cross, stiffening, levels, river[None, :])
    return grid, lower, upper


def valley_direction(problem: Problem, run: Trajectory | GeneralTrajectory,
                     which: str) -> tuple[float, float, np.ndarray]:
    """(λ_i, ĥ_Rᵀ H_RV v_i, v_iᵀθ_V,k over k) for the steepest or flattest valley direction v_i."""
    lam, Q = eigh(problem.H_valley)
    i = int(np.argmax(lam)) if which == "steepest" else int(np.argmin(lam))
    v = Q[:, i]
    h_hat = problem.h_r / np.linalg.norm(problem.h_r)
    return float(lam[i]), float(h_hat @ problem.H_rv @ v), run.theta_v @ v


# ---------------------------------------------------------------------------------
# Two valleys side by side, and the paper's claims checked on them
# ---------------------------------------------------------------------------------

# Corollary 1 says 𝒞_V ≫ 𝒞_U; we call a ratio of at least this "≫".
MUCH_GREATER = 10.0
# A valley has "settled" (θ_V,K ≈ 0, App. F.3) when its unforced path has shrunk this much.
SETTLED = 1e-2
# ‖C_K − Ĉ_K‖ / ‖Ĉ_K‖ up to this is the "minor perturbation" App. F.2 assumes.
MINOR_FEEDBACK = 0.25


@dataclass(frozen=True)
class Side:
    """One valley's run and the quantities the theorems speak about."""

    eigenvalues: np.ndarray   # spectrum of H_Valley (Setting 1) or of H^B (Setting 2)
    problem: Problem
    run: Trajectory | GeneralTrajectory
    unforced: np.ndarray      # Ĉ_k, k = 0..K: the force without river→valley feedback
    bound: float              # 𝒞 (Theorem 1) or 𝒞_gen (Theorem 2a)
    eta_lam_max: float        # η λ_max, the largest over the path in Setting 2
    hopping: int              # directions with 1 < ηλ_i < 2 at the start (ρ_i < 0)
    settled: float            # ‖unforced θ_V,K‖ / ‖θ_V,0‖

    @property
    def diverged(self) -> bool:
        return self.eta_lam_max >= 2.0 or not np.all(np.isfinite(self.run.loss))

    @property
    def force_norm(self) -> float:
        return float(np.linalg.norm(self.run.force[-1]))

    @property
    def unforced_norm(self) -> float:
        return float(np.linalg.norm(self.unforced[-1]))

    @property
    def bound_share(self) -> float:
        """‖Ĉ_K‖ / 𝒞: how much of Theorem 1's bound the unforced force uses (0 when 𝒞 = 0)."""
        return self.unforced_norm / self.bound if self.bound > 0 else 0.0

    @property
    def feedback_share(self) -> float:
        """‖C_K − Ĉ_K‖ / ‖Ĉ_K‖: how far App. F.2's "minor perturbation" is from true."""
        gap = float(np.linalg.norm(self.run.force[-1] - self.unforced[-1]))
        if self.unforced_norm > 0:
            return gap / self.unforced_norm
        return float("inf") if gap > 0 else 0.0

    @property
    def valley_push(self) -> float:
        """h_Rᵀ C_K: negative when the valley pushed the river downstream (App. F.3)."""
        return float(self.problem.h_r @ self.run.force[-1])


@dataclass(frozen=True)
class Claim:
    """One statement of the paper, checked on the current instance."""

    name: str        # e.g. "Theorem 1"
    compared: str    # the quantities compared, with their values
    holds: bool
    why_not: str     # the assumption that broke; "" when the claim holds


@dataclass(frozen=True)
class Comparison:
    """Both runs, Assumption 1 and the claims, for one setting of the page."""

    setting: int
    single: Side                 # the U valley (Single-Attn)
    looped: Side                 # the V valley (Looped-Attn)
    assumption1: Assumption1
    claims: tuple[Claim, ...]


def _side(eigenvalues: np.ndarray, problem: Problem, eta: float, steps: int, setting: int,
          stiffening: float, feedback: bool) -> Side:
    lam = np.asarray(eigenvalues, dtype=float)
    p = problem
    theta0 = float(np.linalg.norm(p.theta_v0))
    if setting == 1:
        run = simulate(p.H_valley, p.H_rv, p.h_r, p.theta_v0, p.theta_r0, eta, steps,
                       feedback=feedback)
        unforced = unforced_force(p.H_valley, p.H_rv, p.theta_v0, eta, steps)
        eta_lam_max = eta * float(lam.max())
        with np.errstate(over="ignore"):
            residual = np.abs(1.0 - eta * lam) ** steps
        valley_left = float(np.linalg.norm(residual * (p.theta_v0 @ eigh(p.H_valley)[1])))
    else:
        run, free = simulate_general_pair(p.H_valley, stiffening, p.H_rv, p.h_r, p.theta_v0,
                                          p.theta_r0, eta, steps, feedbacks=(feedback, False))
        unforced = free.force
        curvature = run.valley_curvature
        eta_lam_max = eta * float(np.nanmax(curvature)) if np.isfinite(curvature).all() else np.inf
        valley_left = float(np.linalg.norm(free.theta_v[-1]))
    bound = force_bound(lam, float(np.linalg.norm(p.H_rv, 2)), theta0)
    start = lam if setting == 1 else run.valley_curvature[0]
    hopping = int(np.sum((eta * start > 1.0) & (eta * start < 2.0)))
    settled = valley_left / theta0 if theta0 > 0 else 0.0
    return Side(lam, p, run, unforced, bound, eta_lam_max, hopping,
                settled if np.isfinite(settled) else np.inf)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _bound_claim(name: str, quantity: str, side: Side, label: str) -> Claim:
    value = side.unforced_norm
    compared = f"{label}: ‖{quantity}‖ = {_fmt(value)} vs 𝒞 = {_fmt(side.bound)}"
    if side.diverged:
        return Claim(name, compared, False,
                     f"{label}: η·λ_max = {_fmt(side.eta_lam_max)} ≥ 2, so |ρ| ≥ 1 and the valley "
                     "diverges (the geometric sums behind 𝒞 need |ρ_i| < 1)")
    if value <= side.bound:
        return Claim(name, compared, True, "")
    d_v, steps = side.eigenvalues.size, len(side.unforced) - 1
    # ‖Ĉ_K‖ ≤ h̄ᾱ Σ|1 − ρ_i^K|/λ_i: |1 − ρ^K| ≤ 1 unless K is odd and ρ_i < 0 (hopping), where it is
    # 1 + |ρ_i|^K < 2. So a failure needs odd K and a hopping direction; 𝒞's √d_V absorbed it in
    # every random instance with d_V ≥ 2 (tests/test_quadratic.py), so in practice it needs d_V = 1.
    return Claim(name, compared, False,
                 f"{label}: K = {steps} is odd and {side.hopping} direction(s) hop (1 < ηλ < 2, ρ_i < 0), so "
                 "|1 − ρ_i^K| = 1 + |ρ_i|^K exceeds the 1 the proof uses; with d_V = "
                 f"{d_v} the √d_V = {_fmt(np.sqrt(d_v))} in 𝒞 does not absorb it. Theorem 1 can fail only so: "
                 "never for even K, never without hopping, and for d_V ≥ 2 the √d_V absorbed it in every random "
                 "instance we tried")


def check_claims(single: Side, looped: Side, a1: Assumption1, setting: int) -> tuple[Claim, ...]:
    """Theorem 1 (or 2a), Corollary 1 (or Thm 2b), Corollary 2 (or Thm 2c) on two runs.

    Theorem 1 bounds the *unforced* force Ĉ_K, so that is what is compared with 𝒞;
    in Setting 2 Ĉ_K is the force of the run without river→valley feedback.
    """
    thm, c1, c2 = (("Theorem 1", "Corollary 1", "Corollary 2") if setting == 1 else
                   ("Theorem 2(a)", "Theorem 2(b)", "Theorem 2(c)"))
    quantity = "Ĉ_K" if setting == 1 else "Ĉ_K (run without feedback)"
    claims = [_bound_claim(thm, quantity, s, lab) for s, lab in ((single, "U"), (looped, "V"))]

    # Both sides share h̄ = ‖H_RV‖ and ᾱ = ‖θ_V,0‖ (make_problem), so the ratio is the
    # spectral one; computing it with h̄ = ᾱ = 1 keeps it defined when the coupling is 0.
    ratio = force_bound(looped.eigenvalues, 1.0, 1.0) / force_bound(single.eigenvalues, 1.0, 1.0)
    compared = f"𝒞_V / 𝒞_U = {_fmt(ratio)} (≫ read as ≥ {MUCH_GREATER:g}×)"
    if ratio >= MUCH_GREATER:
        claims.append(Claim(c1, compared, True, ""))
    elif not a1.holds:
        claims.append(Claim(c1, compared, False, "Assumption 1 fails: " + a1.describe()))
    elif ratio > 1.0:
        claims.append(Claim(c1, compared, False,
                            "Assumption 1 holds, but it only orders the eigenvalues ≤ τ: it makes "
                            "𝒞_V larger, not ≫ 𝒞_U"))
    else:
        (dom_u, res_u), (dom_v, res_v) = (force_bound_split(s.eigenvalues, 1.0, 1.0, a1.tau)
                                          for s in (single, looped))
        claims.append(Claim(c1, compared, False,
                            "Assumption 1 holds, but 𝒞 also sums 1/λ over the eigenvalues above τ: "
                            f"U's residual {_fmt(res_u)} outweighs V's gain in the dominant part "
                            f"({_fmt(dom_v)} vs {_fmt(dom_u)}, in units of h̄ᾱ); the proof calls that "
                            "residual negligible"))

    loss_u, loss_v = float(single.run.loss[-1]), float(looped.run.loss[-1])
    compared = f"L_K(V) = {_fmt(loss_v)} vs L_K(U) = {_fmt(loss_u)}"
    feedback = max(single.feedback_share, looped.feedback_share)
    # A diverged run has no meaningful loss to compare: the claim fails with its premise.
    if loss_v < loss_u and not (single.diverged or looped.diverged):
        if feedback > 1.0:
            compared += (f", won through the river→valley feedback (share {_fmt(feedback)}), "
                         "a runaway down the loss's negative curvature that Ĉ_K leaves out")
        claims.append(Claim(c2, compared, True, ""))
    else:
        claims.append(Claim(c2, compared, False, _why_not_lower(single, looped, a1)))
    return tuple(claims)


def _why_not_lower(single: Side, looped: Side, a1: Assumption1) -> str:
    for side, label in ((single, "U"), (looped, "V")):
        if side.diverged:
            return f"{label} diverges: η·λ_max = {_fmt(side.eta_lam_max)} ≥ 2"
    if not a1.holds:
        return "Assumption 1 fails: " + a1.describe()
    if looped.force_norm == 0:
        return ("there is no valley force (H_RV = 0 or θ_V,0 = 0): only the river's own drive "
                "moves θ_R")
    if looped.valley_push > 0:
        return (f"the coupling's sign: h_Rᵀ C_K(V) = {_fmt(looped.valley_push)} > 0, so the V "
                "valley pushes the river upstream (App. F.3 takes h_Rᵀ C_K < 0 for granted)")
    if looped.settled > SETTLED:
        return (f"K is not large: the V valley has not settled (‖θ_V,K‖/‖θ_V,0‖ = "
                f"{_fmt(looped.settled)} unforced), so its valley loss still counts "
                "(App. F.3 needs θ_V,K ≈ 0)")
    if max(single.feedback_share, looped.feedback_share) > MINOR_FEEDBACK:
        return "the river→valley feedback is not a minor perturbation, so C_K ≠ Ĉ_K"
    return "none of the named assumptions breaks"


def compare_valleys(single_eigenvalues: np.ndarray, looped_eigenvalues: np.ndarray, *,
                    d_r: int, coupling: float, offset: float, drive: float, eta: float,
                    steps: int, tau: float, setting: int = 1, stiffening: float = 0.0,
                    feedback: bool = True, seed: int = 0) -> Comparison:
    """Runs a U (Single-Attn) and a V (Looped-Attn) valley from the same start and checks
    Theorem 1 / Corollaries 1–2 (Setting 1) or Theorem 2 (Setting 2, quartic walls γ).

    In Setting 2 the spectra are those of H^B, the floor of Assumption 3; 𝒞_gen and
    Assumption 1 are read from them.
    """
    sides = [_side(lam, make_problem(lam, d_r, coupling, offset, drive, seed), eta, steps,
                   setting, stiffening, feedback)
             for lam in (single_eigenvalues, looped_eigenvalues)]
    a1 = check_assumption1(np.asarray(single_eigenvalues, float),
                           np.asarray(looped_eigenvalues, float), tau)
    claims = check_claims(sides[0], sides[1], a1, setting)
    return Comparison(setting, sides[0], sides[1], a1, claims)


# ---------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------

def parse_spectrum(text: str, max_size: int) -> tuple[np.ndarray | None, str]:
    """Comma-separated valley eigenvalues → (array, "") or (None, what is wrong with them).

    Valley eigenvalues are curvatures above the river threshold (Definition 1), so each
    must be a finite number > 0.
    """
    tokens = [t.strip() for t in text.split(",")]
    if not any(tokens):
        return None, "Enter at least one eigenvalue, e.g. `1, 0.3, 0.01`."
    values = []
    for t in tokens:
        try:
            values.append(float(t))
        except ValueError:
            what = f"`{t}` is not a number" if t else "there is an empty entry"
            return None, f"{what}: enter numbers separated by commas, e.g. `1, 0.3, 0.01`."
    lam = np.array(values)
    if not np.all(np.isfinite(lam)):
        return None, "Eigenvalues must be finite numbers (no `nan` or `inf`)."
    if np.any(lam <= 0):
        bad = ", ".join(f"{x:g}" for x in lam[lam <= 0])
        return None, (f"Valley eigenvalues must be positive (got {bad}): the valley is where the "
                      "curvature is above the river's ε > 0 (Definition 1).")
    if lam.size > max_size:
        return None, (f"Too many eigenvalues: {lam.size} given, at most {max_size} here "
                      "(d_V + d_R ≤ 200).")
    return lam, ""


# ---------------------------------------------------------------------------------
# Momentum and gradient noise (SGD's picture of valley hopping)
# ---------------------------------------------------------------------------------

def simulate_momentum(H_valley: np.ndarray, H_rv: np.ndarray, h_r: np.ndarray,
                      theta_v0: np.ndarray, theta_r0: np.ndarray, eta: float, steps: int,
                      *, momentum: float = 0.0, noise: float = 0.0, seed: int = 0,
                      feedback: bool = True) -> Trajectory:
    """Heavy-ball momentum with Gaussian gradient noise on Setting 1 (torch's SGD convention):

        g_k = ∇L(θ_k) + σ ξ_k,   ξ_k ~ N(0, I) seeded,
        u_{k+1} = μ u_k + g_k,   θ_{k+1} = θ_k − η u_{k+1},   u_0 = 0.

    μ = σ = 0 is eq. 1–2 exactly (`simulate`). `force` keeps eq. 3's definition
    C_k = η Σ_{j<k} H_RV θ_V,j; with μ > 0 the river's displacement is no longer K η h_R − C_K.
    `feedback=False` drops H_VR θ_R from the valley's gradient, as in `simulate`.
    """
    d_v, d_r = theta_v0.size, theta_r0.size
    rng = np.random.default_rng(seed)
    H_vr = H_rv.T if feedback else np.zeros((d_v, d_r))
    theta = np.empty((steps + 1, d_v + d_r))
    theta[0] = np.concatenate([theta_v0, theta_r0])
    u = np.zeros(d_v + d_r)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            tv, tr = theta[k, :d_v], theta[k, d_v:]
            grad = np.concatenate([H_valley @ tv + H_vr @ tr, H_rv @ tv - h_r])
            if noise:
                grad = grad + noise * rng.standard_normal(d_v + d_r)
            u = momentum * u + grad
            theta[k + 1] = theta[k] - eta * u
            if k % _FINITE_CHECK_EVERY == 0 and not np.isfinite(theta[k + 1]).all():
                theta[k + 2:] = np.nan
                break
        theta_v, theta_r = theta[:, :d_v], theta[:, d_v:]
        loss = quadratic_loss(H_valley, H_rv, h_r, theta_v, theta_r)
    return Trajectory(theta_v, theta_r, loss, cumulative_force(theta_v, H_rv, eta))


def momentum_stable(eigenvalues: np.ndarray, eta: float, momentum: float) -> np.ndarray:
    """Heavy ball on a curvature λ converges iff 0 < ηλ < 2(1 + μ) (for 0 ≤ μ < 1): the roots
    of z² − (1 + μ − ηλ) z + μ = 0 lie inside the unit circle exactly there. μ = 0 gives GD's ηλ < 2."""
    x = eta * np.asarray(eigenvalues, dtype=float)
    return (x > 0) & (x < 2 * (1 + momentum))


def noise_floor_variance(eigenvalue: float, eta: float, noise: float) -> float:
    """Stationary variance of plain GD (μ = 0) with gradient noise σ along one valley direction:
    θ_{k+1} = ρ θ_k − ησξ_k, ρ = 1 − ηλ, gives Var = η²σ² / (1 − ρ²) (|ρ| < 1). Hopping
    directions (ρ < 0) keep the noise they are given as much as slow ones with the same |ρ|."""
    rho = 1 - eta * eigenvalue
    return eta ** 2 * noise ** 2 / (1 - rho ** 2)
