"""Valley spectra (Definition 1), checked by Assumption 1, and one concrete river-valley instance.

The U (Single-Attn) and V (Looped-Attn) spectra of Sec. 4.3 / Remark 5, the `RiverValley`
problem of Setting 1 in the valley's eigenbasis (App. F.2), and the loss on a plane through
one valley direction and the river (for pictures).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..curvature import Assumption1, check_assumption1
from .simulate import GeneralTrajectory, Trajectory, eigh


# ---------------------------------------------------------------------------------
# Valley spectra (Definition 1); Assumption 1 itself lives in curvature.py
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
class RiverValley:
    """One river-valley instance: the arguments of `simulate` bar η and K."""

    H_valley: np.ndarray   # [d_V, d_V]
    H_rv: np.ndarray       # [d_R, d_V]
    h_r: np.ndarray        # [d_R]
    theta_v0: np.ndarray   # [d_V]
    theta_r0: np.ndarray   # [d_R]


def make_problem(valley_eigenvalues: np.ndarray, d_r: int, coupling: float, offset: float,
                 drive: float, seed: int = 0) -> RiverValley:
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
    return RiverValley(np.diag(lam), coupling * B, drive * h_hat, offset * ones, np.zeros(d_r))


def river_progress(theta_r: np.ndarray, h_r: np.ndarray) -> np.ndarray:
    """Distance travelled downstream, ĥ_Rᵀ(θ_R,k − θ_R,0), ĥ_R = h_R/‖h_R‖ (Remark 4's flow)."""
    h_hat = h_r / np.linalg.norm(h_r)
    return (theta_r - theta_r[0]) @ h_hat


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


def valley_direction(problem: RiverValley, run: Trajectory | GeneralTrajectory,
                     which: str) -> tuple[float, float, np.ndarray]:
    """(λ_i, ĥ_Rᵀ H_RV v_i, v_iᵀθ_V,k over k) for the steepest or flattest valley direction v_i."""
    lam, Q = eigh(problem.H_valley)
    i = int(np.argmax(lam)) if which == "steepest" else int(np.argmin(lam))
    v = Q[:, i]
    h_hat = problem.h_r / np.linalg.norm(problem.h_r)
    return float(lam[i]), float(h_hat @ problem.H_rv @ v), run.theta_v @ v
