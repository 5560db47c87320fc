"""SHIFT (paper Sec. 5, App. E.1.4, App. G): when to switch, what it saves, why it is safe.

- `scp`: the SHIFT Criterion with Patience picks the switch epoch from the Single-Attn
  validation loss and gradient norm.
- `speedup`: wall-clock training time of pure Looped-Attn over that of SHIFT.
- `gradient_alignment`: Theorem 3's inner products ⟨∇_W L1, ∇_W L2⟩, W ∈ {W_K, W_Q},
  of the Single (L1) and Looped (L2) losses at the same weights.
- `assumption4_distance`: how far W_K, W_Q, W_V are from Assumption 4 (a PSD diagonal
  plus a dense part of much smaller spectral norm).

Losses and gradients are toy/gradient.py's numpy (no torch anywhere here); the SHIFT page
calls `switch_jump_of` and `theorem3_of`, which take a config as JSON and build the problem
themselves.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .config import RunConfig
from .toy import markov
from .toy.embedding import block_shapes, block_slices

if TYPE_CHECKING:
    from .toy.training import Problem

SCP_DEFAULTS = {"delta1": 0.01, "plateau_epochs": 20, "patience": 20, "delta2": 0.1}
SCP_WAITS = ("patience", "gradient")
SCP_PLATEAUS = ("window", "best")


def gradient_spread(grad_norm: np.ndarray, epoch: int, window: int) -> float:
    """Relative spread (max − min) / mean of the gradient norm over epochs epoch − window + 1 .. epoch."""
    w = np.asarray(grad_norm, dtype=float)[max(0, epoch - window + 1):epoch + 1]
    return float((w.max() - w.min()) / w.mean()) if w.size and w.mean() > 0 else float("nan")


def scp(val_loss: np.ndarray, grad_norm: np.ndarray, delta1: float = SCP_DEFAULTS["delta1"],
        plateau_epochs: int = SCP_DEFAULTS["plateau_epochs"], patience: int = SCP_DEFAULTS["patience"],
        delta2: float = SCP_DEFAULTS["delta2"], wait: str = "patience",
        plateau: str = "window") -> tuple[int | None, int | None]:
    """(E_plateau, E_shift), None where not found; arrays are indexed by epoch.

    Sec. 5: E_plateau is where "the validation loss fails to decrease by a threshold δ1
    over several consecutive epochs" (p of them); δ1 is absolute (nats), as in the paper.
    plateau = "window" (the toy's reading): the first epoch e >= p at which the loss has
    fallen by less than delta1 over the previous p epochs: val_loss[e - p] - val_loss[e] < delta1.
    plateau = "best" (the algorithmic tasks' reading): the same test on the best loss so
    far, min(val_loss[:e + 1]): none of the last p epochs beat the best before them by
    delta1. One upward spike then is no plateau, and noise about a flat level is one.
    E_shift, wait = "patience" (the paper's rule, Sec. 5): E_plateau + W.
    E_shift, wait = "gradient" (our stricter option): the first epoch e >= E_plateau + W
    at which the gradient norm has settled, its relative spread over epochs
    e - p + 1 .. e below delta2 (`gradient_spread`). Under the paper's rule δ2 is not a
    wait, only a check the page reports at E_shift.
    """
    if wait not in SCP_WAITS:
        raise ValueError(f"wait must be one of {', '.join(SCP_WAITS)}, got {wait!r}")
    if plateau not in SCP_PLATEAUS:
        raise ValueError(f"plateau must be one of {', '.join(SCP_PLATEAUS)}, got {plateau!r}")
    val_loss = np.asarray(val_loss, dtype=float)
    if plateau == "best":
        val_loss = np.minimum.accumulate(val_loss)
    grad_norm = np.asarray(grad_norm, dtype=float)
    p = int(plateau_epochs)
    if p < 1 or len(val_loss) <= p:
        return None, None
    drops = val_loss[:-p] - val_loss[p:]          # drops[i] = fall over epochs i .. i + p
    flat = np.nonzero(drops < delta1)[0]
    if flat.size == 0:
        return None, None
    found = int(flat[0]) + p
    if wait == "patience":
        shift_epoch = found + int(patience)
        return found, shift_epoch if shift_epoch < len(val_loss) else None
    for e in range(max(found + patience, p - 1), len(grad_norm)):
        if gradient_spread(grad_norm, e, p) < delta2:
            return found, e
    return found, None


def speedup(looped_seconds: float, shift_seconds: float) -> float:
    """How many times faster SHIFT trains than pure Looped-Attn (> 1: SHIFT is faster)."""
    return looped_seconds / shift_seconds if shift_seconds > 0 else float("nan")


def _loss_and_grad(problem: Problem, theta: np.ndarray, loops: int) -> tuple[float, np.ndarray]:
    """The full training loss and its exact gradient [P] at θ (toy/gradient.py, numpy)."""
    _, loss, grad = problem.runs.loss_and_gradient(np.asarray(theta, dtype=np.float64)[None], loops)
    return float(loss[0]), grad[0]


def switch_jump(problem: Problem, theta: np.ndarray, loops: int) -> dict[str, float]:
    """What the switch does to the training loss at the Single weights θ_S (Sec. 5):
    the Single (T = 1) and Looped (T = loops) loss and gradient norm at the same θ, and
    ln V, the loss of a uniform guess: a Looped loss above it means Stage II restarts
    from worse than chance."""
    out = {"chance_loss": float(np.log(markov.VOCAB))}
    for name, T in (("single", 1), ("looped", loops)):
        loss, grad = _loss_and_grad(problem, theta, T)
        out[f"{name}_loss"] = loss
        out[f"{name}_grad_norm"] = float(np.linalg.norm(grad))
    return out


def gradient_alignment(problem: Problem, theta: np.ndarray, loops: int) -> dict[str, float]:
    """Theorem 3 at θ: inner products and cosines of the W_K and W_Q gradients of the
    Single-Attn (T = 1) and Looped-Attn (T = loops) training losses."""
    return alignment(_loss_and_grad(problem, theta, 1)[1], _loss_and_grad(problem, theta, loops)[1],
                     problem.config.d)


def alignment(g1: np.ndarray, g2: np.ndarray, d: int) -> dict[str, float]:
    """⟨g1, g2⟩ and cos(g1, g2) over the W_K block and over the W_Q block of two gradients [P]."""
    slices = block_slices(d)
    out = {}
    for name in ("K", "Q"):
        a, b = g1[slices["W_" + name]], g2[slices["W_" + name]]
        inner = float(a @ b)
        norm = float(np.linalg.norm(a) * np.linalg.norm(b))
        out[f"inner_{name}"] = inner
        out[f"cos_{name}"] = inner / norm if norm > 0 else float("nan")
    return out


def assumption4_distance(theta: np.ndarray, d: int) -> dict[str, float]:
    """Per weight W ∈ {K, Q, V}: ‖W − diag(W)‖₂ / ‖diag(W)‖₂ (Assumption 4 wants ≪ 1) and
    the share of negative diagonal entries (a PSD diagonal has none)."""
    theta, shapes = np.asarray(theta), block_shapes(d)
    out = {}
    for name in ("K", "Q", "V"):
        W = theta[block_slices(d)["W_" + name]].reshape(shapes["W_" + name])   # θ's row-major blocks
        D = np.diag(np.diag(W))
        diag_norm = np.abs(np.diag(W)).max()
        out[f"offdiag_ratio_{name}"] = float(np.linalg.norm(W - D, 2) / diag_norm) if diag_norm > 0 else float("inf")
        out[f"negative_diag_{name}"] = float(np.mean(np.diag(W) < 0))
    return out


def theorem3_table(problem: Problem, epochs: np.ndarray, thetas: np.ndarray, loops: int) -> dict[str, np.ndarray]:
    """Theorem 3's alignment and Assumption 4's distances at each given (epoch, θ); the
    gradients of all θ in one reverse pass per loss (the run axis)."""
    thetas = np.asarray(thetas, dtype=np.float64)
    d = problem.config.d
    g1, g2 = (problem.gradients(thetas, T) if len(thetas) else [] for T in (1, loops))
    rows = [{**alignment(a, b, d), **assumption4_distance(theta, d)} for a, b, theta in zip(g1, g2, thetas)]
    table = {"epoch": np.asarray(epochs)}
    for key in rows[0] if rows else ():
        table[key] = np.array([row[key] for row in rows])
    return table


def switch_jump_of(config_json: str, theta: np.ndarray) -> dict[str, float]:
    """`switch_jump` at θ for a configuration given as JSON (the page's cache key): the
    problem is built here, so its caller needs neither torch nor the training module."""
    from .toy.training import prepare
    config = RunConfig.from_json(config_json)
    return switch_jump(prepare(config), theta, config.loops)


def theorem3_of(config_json: str, epochs: list[int], thetas: np.ndarray) -> dict[str, np.ndarray]:
    """`theorem3_table` for a configuration given as JSON, likewise."""
    from .toy.training import prepare
    config = RunConfig.from_json(config_json)
    return theorem3_table(prepare(config), epochs, thetas, config.loops)
