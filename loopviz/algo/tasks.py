"""The five algorithmic tasks of App. E.2 (after Fan et al. 2024) as seeded generators.

A task maps a length n to inputs [count, input_len(n)] and targets [count, output_len(n)]
of token ids. The model reads `sequence(inputs)` = the input tokens followed by
output_len(n) SLOT tokens and predicts all targets at the SLOT positions in one go
(full-output prediction). Looped-Attn uses loops(n) = n iterations for length n.

Token ids: symbols 0..7, PLUS = 8, SLOT = 9 (an output to fill), EMPTY = 10 (no output
here: unique set's padding). Binary numbers are little-endian (least significant first).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PLUS, SLOT, EMPTY = 8, 9, 10
VOCAB = 11
TOKEN_NAMES = ("0", "1", "2", "3", "4", "5", "6", "7", "+", "#", ".")


def _bits_le(values: np.ndarray, width: int) -> np.ndarray:
    """Little-endian binary digits of non-negative integers: [..., width]."""
    return ((values[..., None] >> np.arange(width)) & 1).astype(np.int64)


def _from_bits_le(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.int64) << np.arange(bits.shape[-1])).sum(-1)


def parity_target(inputs: np.ndarray) -> np.ndarray:
    """XOR of all bits: [count, 1]."""
    return (inputs.sum(1) % 2)[:, None]


def copy_target(inputs: np.ndarray) -> np.ndarray:
    return inputs.copy()


def addition_target(inputs: np.ndarray) -> np.ndarray:
    """inputs = a (n bits) PLUS b (n bits), little-endian; target = a + b in n + 1 bits."""
    n = (inputs.shape[1] - 1) // 2
    a, b = _from_bits_le(inputs[:, :n]), _from_bits_le(inputs[:, n + 1:])
    return _bits_le(a + b, n + 1)


def binary_sum_width(n: int) -> int:
    """Digits needed for any count of ones in n bits (0..n)."""
    return int(n).bit_length()


def binary_sum_target(inputs: np.ndarray) -> np.ndarray:
    """Number of ones among n bits, little-endian in binary_sum_width(n) digits."""
    return _bits_le(inputs.sum(1), binary_sum_width(inputs.shape[1]))


def unique_set_target(inputs: np.ndarray) -> np.ndarray:
    """The distinct symbols in order of first appearance, then EMPTY up to length n."""
    n = inputs.shape[1]
    seen_before = (inputs[:, :, None] == inputs[:, None, :]) & np.tri(n, k=-1, dtype=bool).T[None]
    first = ~seen_before.any(1)                      # first[i, j]: inputs[i, j] appears for the first time at j
    order = np.argsort(~first, axis=1, kind="stable")  # first appearances, in order, to the front
    out = np.take_along_axis(inputs, order, 1)
    out[np.arange(n)[None, :] >= first.sum(1, keepdims=True)] = EMPTY
    return out


@dataclass(frozen=True)
class Task:
    """One task's shape; `sample` draws (inputs, targets) for a length n."""

    name: str
    alphabet: int
    input_len: Callable[[int], int]
    output_len: Callable[[int], int]
    target: Callable[[np.ndarray], np.ndarray]
    two_operands: bool = False

    def loops(self, n: int) -> int:
        """FOP-Loop-Adaptive's training rule: n iterations for length n (App. E.2)."""
        return n

    def sample(self, rng: np.random.Generator, n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        if self.two_operands:
            digits = rng.integers(0, self.alphabet, size=(count, 2 * n))
            inputs = np.concatenate([digits[:, :n], np.full((count, 1), PLUS), digits[:, n:]], axis=1)
        else:
            inputs = rng.integers(0, self.alphabet, size=(count, n))
        return inputs.astype(np.int64), self.target(inputs).astype(np.int64)

    def seq_len(self, n: int) -> int:
        return self.input_len(n) + self.output_len(n)


def sequence(inputs: np.ndarray, output_len: int) -> np.ndarray:
    """What the model reads: the inputs, then one SLOT per output token."""
    return np.concatenate([inputs, np.full((len(inputs), output_len), SLOT, dtype=np.int64)], axis=1)


DEFAULT_ALPHABET = {"parity": 2, "addition": 2, "copy": 2, "binary_sum": 2, "unique_set": 8}


def make_task(name: str, alphabet: int = 0) -> Task:
    """The task by name; alphabet 0 = its default (only copy and unique set may change it)."""
    a = alphabet or DEFAULT_ALPHABET[name]
    if name in ("parity", "addition", "binary_sum") and a != 2:
        raise ValueError(f"{name} is over bits: alphabet must be 2, got {a}")

    def same(n: int) -> int:
        return n

    if name == "parity":
        return Task(name, 2, same, lambda n: 1, parity_target)
    if name == "copy":
        return Task(name, a, same, same, copy_target)
    if name == "addition":
        return Task(name, 2, lambda n: 2 * n + 1, lambda n: n + 1, addition_target, two_operands=True)
    if name == "binary_sum":
        return Task(name, 2, same, binary_sum_width, binary_sum_target)
    if name == "unique_set":
        return Task(name, a, same, same, unique_set_target)
    raise ValueError(f"unknown task {name!r}")


def batch_rng(data_seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent, reproducible streams: training step `index` (stream 0) draws the same
    batch in every paradigm, so SHIFT's Stage II sees the batches Looped-Attn saw."""
    return np.random.default_rng([data_seed, stream, index])
