"""The parts of the models that need no autodiff: the fixed embedding, the parameter
count and the initial weights (numpy only, so that reading a run needs no torch)."""
from __future__ import annotations

import numpy as np

from .markov import VOCAB


def make_embedding(kind: str, d: int, n_positions: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed, non-trainable token [V, d] and position [n_positions, d] vectors.

    random: i.i.d. N(0, 1/d) entries (unit norm on average). Positions are drawn row
    by row from their own stream, so the first k rows do not depend on n_positions:
    the embedding of a training position is the same at every test length.
    onehot: token one-hot in coordinates 0..V-1, position one-hot in V..V+n-1.
    """
    if kind == "random":
        token = np.random.default_rng([data_seed, 10]).standard_normal((VOCAB, d)) / np.sqrt(d)
        position = np.random.default_rng([data_seed, 11]).standard_normal((n_positions, d)) / np.sqrt(d)
        return token, position
    if kind == "onehot":
        if d < VOCAB + n_positions:
            raise ValueError(f"onehot embedding of {n_positions} positions needs d >= {VOCAB + n_positions}")
        eye = np.eye(d)
        return eye[:VOCAB], eye[VOCAB:VOCAB + n_positions]
    raise ValueError(f"unknown embedding kind {kind!r}")


# The θ layout, defined here once: θ = [W_K, W_Q, W_V, W_h] flattened row-major, each
# block's shape below (models.unflatten, landscape's per-block spectra and weights.npz use it).
BLOCKS = ("W_K", "W_Q", "W_V", "W_h")


def block_shapes(d: int) -> dict[str, tuple[int, int]]:
    """Each weight matrix's shape: W_K, W_Q, W_V are d × d, the readout W_h is V × d."""
    return {"W_K": (d, d), "W_Q": (d, d), "W_V": (d, d), "W_h": (VOCAB, d)}


def block_slices(d: int) -> dict[str, slice]:
    """Where each weight matrix sits in θ."""
    slices, start = {}, 0
    for name, (rows, cols) in block_shapes(d).items():
        slices[name] = slice(start, start + rows * cols)
        start += rows * cols
    return slices


def param_count(d: int) -> int:
    """P = 3 d² + V d trainable parameters."""
    return block_slices(d)["W_h"].stop


def init_weights(d: int, scale: float, seed: int) -> np.ndarray:
    """Gaussian N(0, scale²) initial θ; both models of one config share it."""
    return np.random.default_rng([seed, 20]).standard_normal(param_count(d)) * scale
