"""Landscape instruments over a run's stored weights (paper Sec. 4.1–4.2, Def. 1).

With P = 3d² + Vd weights (60 at d = 4) everything here is exact, not sampled:

* the training loss on a 2-D plane through weight space, with the trajectories projected
  on it (``Plane``, ``plane_loss``), and the share of the trajectories' variance the
  plane captures — what it loses is the rest;
* the edge of stability: λ_max(H) against the GD threshold 2/η, and Adam's
  preconditioned sharpness λ_max(P⁻¹H) against (2 + 2β₁)/((1 − β₁)η) = 38/η at β₁ = 0.9
  (Cohen et al. 2022, "Adaptive gradient methods at the edge of stability");
* the Hessian split into its W_K, W_Q, W_V, W_h blocks: each block's eigenvalues and
  the size of the coupling between blocks.

The θ layout is ``loopviz.toy.embedding.block_slices``: [W_K, W_Q, W_V, W_h],
each row-major. Pure functions over arrays, numpy only: losses and gradients are
toy/gradient.py's, Hessians toy/hessian.py's. The Landscape page calls the
``*_of(config_json, …)`` entry points at the end, which build the toy problem themselves,
so the page imports no training module.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg

from .config import RunConfig
from .toy.embedding import BLOCKS, block_slices
from .toy.optim import BETAS, EPS

if TYPE_CHECKING:
    from .runs.format import RunData

# The Trainer's Adam (toy/optim: torch's defaults).
(ADAM_BETA1, ADAM_BETA2), ADAM_EPS = BETAS, EPS


# ----------------------------------------------------------------- the plane
@dataclass(frozen=True)
class Plane:
    """The affine plane θ = origin + α u + β v, with u, v orthonormal (rows of `basis`)."""

    origin: np.ndarray    # [P]
    basis: np.ndarray     # [2, P], orthonormal rows
    kind: str             # "endpoints" or "pca"

    def coords(self, thetas: np.ndarray) -> np.ndarray:
        """(α, β) of the orthogonal projection of each θ [N, P] onto the plane → [N, 2]."""
        return (np.atleast_2d(thetas) - self.origin) @ self.basis.T

    def points(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """θ at every grid point: [len(beta), len(alpha), P] (rows follow β, as contour z does)."""
        a, b = np.meshgrid(alpha, beta)
        return self.origin + a[..., None] * self.basis[0] + b[..., None] * self.basis[1]

    def residual(self, thetas: np.ndarray) -> np.ndarray:
        """Distance of each θ from the plane: the part of it the plane cannot show."""
        rel = np.atleast_2d(thetas) - self.origin
        return np.linalg.norm(rel - (rel @ self.basis.T) @ self.basis, axis=1)


def endpoint_plane(theta0: np.ndarray, theta_a: np.ndarray, theta_b: np.ndarray) -> Plane:
    """The plane through θ₀ and two final weights (by default Single's and Looped's).

    u = (θ_a − θ₀)/‖·‖, v = the part of θ_b − θ₀ orthogonal to u, normalised (Gram–Schmidt),
    so θ₀ sits at (0, 0) and θ_a on the α axis; all three points lie exactly in the plane.
    """
    a, b = theta_a - theta0, theta_b - theta0
    na = np.linalg.norm(a)
    if na == 0:
        raise ValueError("the first end point equals θ₀: no plane through them")
    u = a / na
    w = b - (b @ u) * u
    nw = np.linalg.norm(w)
    if nw <= 1e-12 * max(na, np.linalg.norm(b)):
        raise ValueError("θ₀ and the two end points are collinear: no unique plane (use the PCA plane)")
    return Plane(np.asarray(theta0, float).copy(), np.stack([u, w / nw]), "endpoints")


def pca_plane(trajectories: list[np.ndarray]) -> Plane:
    """The plane of the top-2 principal directions of the pooled trajectories, through their mean.

    Among all planes it captures the largest share of the pooled variance. Signs are fixed
    so that each direction's largest component is positive (the same input, the same plane).
    """
    pooled = np.concatenate([np.atleast_2d(t) for t in trajectories])
    if len(pooled) < 3:
        raise ValueError("a PCA plane needs at least 3 points")
    mean = pooled.mean(axis=0)
    _, _, vt = np.linalg.svd(pooled - mean, full_matrices=False)
    basis = vt[:2].copy()
    for row in basis:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    return Plane(mean, basis, "pca")


def variance_captured(plane: Plane, trajectories: list[np.ndarray]) -> float:
    """Share of the pooled trajectories' variance (about their mean) along the plane's directions.

    Σ‖B(θ − θ̄)‖² / Σ‖θ − θ̄‖²: 1 when every point lies in a plane parallel to this one;
    the PCA plane maximises it. Exact over all stored epochs (no sampling, so no interval).
    """
    pooled = np.concatenate([np.atleast_2d(t) for t in trajectories])
    centred = pooled - pooled.mean(axis=0)
    total = float((centred ** 2).sum())
    return float(((centred @ plane.basis.T) ** 2).sum() / total) if total > 0 else float("nan")


def plane_axes(coords: list[np.ndarray], n: int, pad: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """α and β axes (n points each) covering every projected point with a margin of `pad` × span."""
    pooled = np.concatenate([np.atleast_2d(c) for c in coords])
    lo, hi = pooled.min(axis=0), pooled.max(axis=0)
    span = np.maximum(hi - lo, 1e-6 * max(1.0, float(np.abs(pooled).max())))
    lo, hi = lo - pad * span, hi + pad * span
    return np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)


def batched_loss(problem, loops: int) -> Callable[[np.ndarray], np.ndarray]:
    """The full training loss of `problem` with `loops` loops over many θ [..., P] → [...]
    (Problem.losses: each θ one run on toy/gradient.py's run axis, the training step's own
    forward pass)."""
    def evaluate(thetas: np.ndarray) -> np.ndarray:
        thetas = np.asarray(thetas, dtype=np.float64)
        return problem.losses(thetas.reshape(-1, thetas.shape[-1]), loops).reshape(thetas.shape[:-1])
    return evaluate


def plane_loss(loss_many: Callable[[np.ndarray], np.ndarray], plane: Plane, alpha: np.ndarray,
               beta: np.ndarray) -> np.ndarray:
    """The exact loss on the grid: z[j, i] = L(origin + α_i u + β_j v), shape [len(β), len(α)]."""
    pts = plane.points(alpha, beta)
    return loss_many(pts.reshape(-1, pts.shape[-1])).reshape(len(beta), len(alpha))


# ------------------------------------------------------ edge of stability (Adam)
def gd_threshold(lr: float) -> float:
    """GD on a quadratic is stable iff λ_max < 2/η (Cohen et al. 2021)."""
    return 2.0 / lr


def adam_threshold(lr: float, beta1: float = ADAM_BETA1) -> float:
    """Stability threshold of the preconditioned sharpness for Adam's EMA momentum:
    (2 + 2β₁)/((1 − β₁)η), i.e. 38/η at β₁ = 0.9 (Cohen et al. 2022, Sec. 2)."""
    return (2 + 2 * beta1) / ((1 - beta1) * lr)


@dataclass(frozen=True)
class AdamStates:
    """Adam's moments in effect at each stored epoch e: after folding in the gradient at θ_e.

    m[e], v[e]  the first and second moments that the step θ_e → θ_{e+1} uses
    step[e]     Adam's step count t of that step (restarts at 1 after an optimiser reset)
    """

    m: np.ndarray      # [W, P]
    v: np.ndarray      # [W, P]
    step: np.ndarray   # [W]


def adam_states(gradients: np.ndarray, resets: np.ndarray | None = None, beta1: float = ADAM_BETA1,
                beta2: float = ADAM_BETA2) -> AdamStates:
    """Adam's moments from the sequence of full-batch gradients g_e = ∇L(θ_e).

    m_t = β₁ m_{t−1} + (1 − β₁) g,  v_t = β₂ v_{t−1} + (1 − β₂) g²  (toy/optim.Adam). In a
    full-batch run the gradient of step e + 1 is the exact gradient at the stored θ_e, so
    the moments are a function of the stored weights: no optimiser state needs storing.
    `resets[e]` True starts fresh moments at step e + 1 (SHIFT with reset_optimizer).
    """
    g = np.asarray(gradients, dtype=np.float64)
    m, v = np.zeros_like(g), np.zeros_like(g)
    step = np.zeros(len(g), dtype=np.int64)
    m_prev, v_prev, t = np.zeros(g.shape[1]), np.zeros(g.shape[1]), 0
    for e in range(len(g)):
        if resets is not None and resets[e]:
            m_prev, v_prev, t = np.zeros(g.shape[1]), np.zeros(g.shape[1]), 0
        t += 1
        m_prev = beta1 * m_prev + (1 - beta1) * g[e]
        v_prev = beta2 * v_prev + (1 - beta2) * g[e] ** 2
        m[e], v[e], step[e] = m_prev, v_prev, t
    return AdamStates(m, v, step)


def adam_preconditioner(v: np.ndarray, step: np.ndarray | int, beta1: float = ADAM_BETA1,
                        beta2: float = ADAM_BETA2, eps: float = ADAM_EPS) -> np.ndarray:
    """Diagonal of Adam's preconditioner P (Cohen et al. 2022, eq. 2), elementwise:

        P = (1 − β₁ᵗ) · (√(v / (1 − β₂ᵗ)) + ε),   so that Adam's step is θ ← θ − η P⁻¹ m

    with m, v the raw (not bias-corrected) moments and t the step count: torch's
    update −η/(1 − β₁ᵗ) · m / (√v̂ + ε) written as one preconditioned momentum step.
    Accepts one state ([P], int) or many ([W, P], [W]).
    """
    t = np.asarray(step, dtype=np.float64)
    if t.ndim:
        t = t[:, None]
    return (1 - beta1 ** t) * (np.sqrt(v / (1 - beta2 ** t)) + eps)


def adam_steps(states: AdamStates, lr: float, **hyper: float) -> np.ndarray:
    """The update −η P⁻¹ m of each state [W, P] (compared with θ_{e+1} − θ_e in the tests)."""
    return -lr * states.m / adam_preconditioner(states.v, states.step, **hyper)


def precond_lambda_max(hessian: np.ndarray, precond: np.ndarray) -> float:
    """λ_max(P⁻¹H) for a diagonal, positive P: the largest root of det(H − λP) = 0.

    Solved as the symmetric-definite generalised problem H x = λ P x (LAPACK sygvd via
    scipy), whose eigenvalues are those of P⁻¹H and are real because H is symmetric.
    """
    H = 0.5 * (hessian + hessian.T)
    top = scipy.linalg.eigh(H, np.diag(precond), eigvals_only=True, subset_by_index=[len(H) - 1, len(H) - 1])
    return float(top[0])


# ---------------------------------------------------------- per-block spectra
@dataclass(frozen=True)
class BlockSpectra:
    """The Hessian cut along the weight matrices (θ layout of models.unflatten)."""

    eigenvalues: dict[str, np.ndarray]   # block name → ascending eigenvalues of H[b, b]
    coupling: np.ndarray                 # [4, 4] ‖H[a, b]‖_F between blocks (diagonal 0)
    coupling_share: float                # ‖off-block part‖²_F / ‖H‖²_F

    def largest(self) -> str:
        """The block whose own Hessian has the largest eigenvalue."""
        return max(self.eigenvalues, key=lambda name: self.eigenvalues[name][-1])


def block_spectra(hessian: np.ndarray, d: int) -> BlockSpectra:
    """Each diagonal block's eigenvalues (the curvature when only that matrix moves) and
    the Frobenius norms of the cross-block parts (how much moving one matrix changes the
    gradient of another). By Cauchy interlacing no block's λ_max exceeds the full λ_max."""
    H = 0.5 * (hessian + hessian.T)
    slices = block_slices(d)
    eig = {name: scipy.linalg.eigvalsh(H[s, s]) for name, s in slices.items()}
    coupling = np.zeros((len(BLOCKS), len(BLOCKS)))
    for i, a in enumerate(BLOCKS):
        for j, b in enumerate(BLOCKS):
            if i != j:
                coupling[i, j] = np.linalg.norm(H[slices[a], slices[b]])
    total = float((H ** 2).sum())
    share = float((coupling ** 2).sum() / total) if total > 0 else float("nan")
    return BlockSpectra(eig, coupling, share)


@dataclass(frozen=True)
class CurvatureSeries:
    """Per-epoch curvature instruments of one run (every `stride`-th stored epoch)."""

    epochs: np.ndarray                    # [S]
    lambda_max: np.ndarray                # [S] λ_max(H)
    precond_lambda_max: np.ndarray        # [S] λ_max(P⁻¹H)
    block_max: dict[str, np.ndarray]      # block → [S] its largest eigenvalue
    block_min: dict[str, np.ndarray]      # block → [S] its smallest eigenvalue
    coupling_share: np.ndarray            # [S]
    blocks: list[BlockSpectra]            # [S]


def curvature_series(epochs: np.ndarray, hessians: list[np.ndarray], preconds: np.ndarray, d: int) -> CurvatureSeries:
    """λ_max, preconditioned sharpness and block spectra from per-epoch Hessians and P diagonals."""
    blocks = [block_spectra(H, d) for H in hessians]
    return CurvatureSeries(
        np.asarray(epochs),
        np.array([scipy.linalg.eigvalsh(0.5 * (H + H.T), subset_by_index=[len(H) - 1, len(H) - 1])[0]
                  for H in hessians]),
        np.array([precond_lambda_max(H, p) if np.all(np.isfinite(p)) else np.nan for H, p in zip(hessians, preconds)]),
        {b: np.array([s.eigenvalues[b][-1] for s in blocks]) for b in BLOCKS},
        {b: np.array([s.eigenvalues[b][0] for s in blocks]) for b in BLOCKS},
        np.array([s.coupling_share for s in blocks]),
        blocks,
    )


def edge_summary(values: np.ndarray, threshold: float) -> dict[str, float]:
    """How close a sharpness curve comes to its threshold: the peak ratio and the share of
    epochs at or above 90 % of it (an exact count over the recorded epochs)."""
    ratio = np.asarray(values) / threshold
    return {"peak_ratio": float(np.nanmax(ratio)), "final_ratio": float(ratio[-1]),
            "share_near": float(np.mean(ratio >= 0.9))}


# ------------------------------------------------- from a run's stored weights
def event_epochs(run: RunData) -> tuple[int, ...]:
    """Epochs a stride must not step over: the stored λ_max's peak and a SHIFT run's switch
    (its shift epoch and the one after)."""
    marks = [int(run.spectrum_epochs[np.argmax(run.eigenvalues[:, -1])])] if len(run.spectrum_epochs) else []
    if run.config.model == "shift":
        marks += [run.config.shift_epoch, run.config.shift_epoch + 1]
    return tuple(marks)


def step_loops(config, epochs: np.ndarray) -> np.ndarray:
    """Loops of the loss that the step leaving θ_e descends: config.loops_at(e + 1).

    It is the model's own loss everywhere except at a SHIFT run's switch epoch, whose
    step already descends the Looped loss."""
    return np.array([config.loops_at(int(e) + 1) for e in epochs], dtype=np.int64)


def run_gradients(problem, config, thetas: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """Exact full-batch gradients ∇L(θ_e) [W, P] of each step's loss (one backward per loop count)."""
    loops = step_loops(config, epochs)
    out = np.zeros_like(np.asarray(thetas, dtype=np.float64))
    for T in np.unique(loops):
        rows = np.nonzero(loops == T)[0]
        out[rows] = problem.gradients(np.asarray(thetas)[rows], int(T))
    return out


def why_no_adam_state(config, epochs: np.ndarray) -> str:
    """Why Adam's state cannot be rebuilt from this run's weights ("" when it can)."""
    if config.batch_size not in (0, config.n_train):
        return (f"Adam's state is rebuilt for full-batch runs (one step per epoch); this run has "
                f"batch_size = {config.batch_size}")
    if len(epochs) == 0 or epochs[0] != 0 or np.any(np.diff(epochs) != 1):
        return "Adam's state is rebuilt from the weights of every epoch from 0; this run lacks some"
    return ""


def run_adam_states(problem, config, thetas: np.ndarray, epochs: np.ndarray) -> AdamStates:
    """Adam's moments at every stored epoch of a full-batch run, from its stored weights.

    Needs one Adam step per epoch (batch_size 0 or n_train) and weights at every epoch
    from 0; raises ValueError otherwise. ``adam_steps`` of the result reproduces the
    stored θ_{e+1} − θ_e (the tests check it against a replay of the Trainer, too).
    """
    reason = why_no_adam_state(config, epochs)
    if reason:
        raise ValueError(reason)
    resets = np.zeros(len(epochs), dtype=bool)
    if config.model == "shift" and config.reset_optimizer:
        resets[np.asarray(epochs) == config.shift_epoch] = True   # the step into shift_epoch + 1 starts afresh
    return adam_states(run_gradients(problem, config, thetas, epochs), resets)


def run_hessians(problem, config, thetas: np.ndarray, epochs: np.ndarray) -> list[np.ndarray]:
    """Exact Hessians [P, P] of each step's loss at the given θ (toy.training.Problem.hessians:
    toy/hessian.py's closed form on the CPU, checked against autograd in tests/test_hessian.py)."""
    return list(problem.hessians(np.asarray(thetas), step_loops(config, epochs)))


@dataclass(frozen=True)
class SurfaceView:
    """Everything the loss-surface chart needs: the plane, its grid, the exact loss of each
    model on it, the projected paths, and what the projection loses."""

    plane: Plane
    alpha: np.ndarray                     # [n]
    beta: np.ndarray                      # [n]
    loss: dict[int, np.ndarray]           # loops → [n, n] exact training loss on the grid
    coords: dict[str, np.ndarray]         # label → [N, 2]
    captured: float                       # share of the pooled variance along the plane
    captured_each: dict[str, float]       # label → share of its own trajectory's variance
    residual_max: dict[str, float]        # label → largest distance of a point from the plane


def surface_view(problem, trajectories: dict[str, np.ndarray], kind: str, n: int, loops: tuple[int, ...],
                 ends: tuple[str, str]) -> SurfaceView:
    """The plane ("endpoints": through the first θ of ends[0] and the last θ of both ends;
    "pca": top-2 principal directions of all trajectories) and each model's loss on it."""
    if kind == "endpoints":
        a, b = trajectories[ends[0]], trajectories[ends[1]]
        plane = endpoint_plane(a[0], a[-1], b[-1])
    elif kind == "pca":
        plane = pca_plane(list(trajectories.values()))
    else:
        raise ValueError(f"plane kind must be 'endpoints' or 'pca', got {kind!r}")
    coords = {label: plane.coords(t) for label, t in trajectories.items()}
    alpha, beta = plane_axes(list(coords.values()), n)
    loss = {T: plane_loss(batched_loss(problem, T), plane, alpha, beta) for T in loops}
    return SurfaceView(plane, alpha, beta, loss, coords, variance_captured(plane, list(trajectories.values())),
                       {label: variance_captured(plane, [t]) for label, t in trajectories.items()},
                       {label: float(plane.residual(t).max()) for label, t in trajectories.items()})


def run_curvature_series(problem, config, thetas: np.ndarray, epochs: np.ndarray, stride: int,
                         extra: tuple[int, ...] = ()) -> tuple[CurvatureSeries, float]:
    """The curvature instruments at every `stride`-th stored epoch, the last, and the `extra`
    epochs (events a stride would step over), and the largest |Δθ| between Adam's rebuilt
    steps and the stored weights (a check: ~1e-17). Where Adam's state cannot be rebuilt
    (``why_no_adam_state``) the preconditioned sharpness and the check are NaN."""
    wanted = np.searchsorted(epochs, [e for e in extra if epochs[0] <= e <= epochs[-1]])
    pick = np.unique(np.concatenate([np.arange(0, len(epochs), max(1, stride)), [len(epochs) - 1], wanted]))
    hessians = run_hessians(problem, config, thetas[pick], epochs[pick])
    if why_no_adam_state(config, epochs):
        return curvature_series(epochs[pick], hessians, np.full((len(pick), thetas.shape[1]), np.nan), config.d), \
            float("nan")
    states = run_adam_states(problem, config, thetas, epochs)
    check = (float(np.abs(adam_steps(states, config.lr)[:-1] - np.diff(thetas, axis=0)).max())
             if len(thetas) > 1 else 0.0)
    preconds = adam_preconditioner(states.v[pick], states.step[pick])
    return curvature_series(epochs[pick], hessians, preconds, config.d), check


# ------------------------------------- entry points by configuration (the page's cache keys)
def _problem(config: RunConfig):
    """The toy problem of `config` (``toy.training.prepare``, ~1 ms; numpy arrays, no torch)."""
    from .toy.training import prepare
    return prepare(config)


def surface_view_of(config_json: str, trajectories: dict[str, np.ndarray], kind: str, n: int,
                    ends: tuple[str, str] = ("Single-Attn", "Looped-Attn")) -> SurfaceView:
    """`surface_view` with the Single (T = 1) and Looped (T = config.loops) losses of a
    configuration given as JSON."""
    config = RunConfig.from_json(config_json)
    return surface_view(_problem(config), trajectories, kind, n, (1, config.loops), ends)


def curvature_series_of(config_json: str, thetas: np.ndarray, epochs: np.ndarray, stride: int,
                        extra: tuple[int, ...] = ()) -> tuple[CurvatureSeries, float]:
    """`run_curvature_series` of a run given by its configuration's JSON and stored weights."""
    config = RunConfig.from_json(config_json)
    return run_curvature_series(_problem(config), config, thetas, epochs, stride, extra)


def block_spectra_of(config_json: str, theta: np.ndarray, epoch: int) -> BlockSpectra:
    """`block_spectra` of the exact Hessian of the loss the step leaving epoch `epoch` descends."""
    config = RunConfig.from_json(config_json)
    hessian = run_hessians(_problem(config), config, np.asarray(theta)[None], np.array([epoch]))[0]
    return block_spectra(hessian, config.d)
