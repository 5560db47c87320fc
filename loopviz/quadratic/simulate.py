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
