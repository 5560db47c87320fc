"""The synthetic Markov language task (paper App. E.1.1; docs/background.md §1).

A sequence X = (x0, ..., x_{L-1}) over V = 3 symbols has
    P(X) = P(x0) · T1[x0, x1] · T2[x1, x2] · T3[x2, x3] · T1[x3, x4] · ...
with P(x0) uniform and the three transition matrices applied cyclically (App. E.1.3).
Difficulty is the information content IC(X) = -ln P(X), in nats.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..config import RunConfig

VOCAB = 3
SEQ_LEN = 4          # training sequences: predict x3 from (x0, x1, x2)
N_TRANSITIONS = 3    # T1, T2, T3


def make_transitions(kind: str, concentration: float, rng: np.random.Generator) -> np.ndarray:
    """Three distinct random row-stochastic V×V matrices, shape [3, V, V].

    dirichlet: each row ~ Dirichlet(concentration · 1); uniform: rows of U(0, 1)
    entries, normalised to sum to one (docs/background.md §2 calls these 'normalised-uniform').
    """
    if kind == "dirichlet":
        return rng.dirichlet(np.full(VOCAB, concentration), size=(N_TRANSITIONS, VOCAB))
    if kind == "uniform":
        raw = rng.uniform(size=(N_TRANSITIONS, VOCAB, VOCAB))
        return raw / raw.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown transition kind {kind!r}")


def enumerate_sequences(length: int = SEQ_LEN) -> np.ndarray:
    """All V^length sequences in lexicographic order, shape [V^length, length]."""
    return np.array(list(itertools.product(range(VOCAB), repeat=length)), dtype=np.int64)


def step_matrix(transitions: np.ndarray, step: int) -> np.ndarray:
    """Transition used from position step-1 to position step (1-based step), cyclic."""
    return transitions[(step - 1) % transitions.shape[0]]


def log_prob(sequences: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """ln P(X) for each row of `sequences` [n, L]; transitions applied cyclically."""
    sequences = np.asarray(sequences)
    total = np.full(sequences.shape[0], -np.log(VOCAB))
    for step in range(1, sequences.shape[1]):
        total += np.log(step_matrix(transitions, step)[sequences[:, step - 1], sequences[:, step]])
    return total


def information_content(sequences: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """IC(X) = -ln P(X) in nats."""
    return -log_prob(sequences, transitions)


def draw_training_sequences(transitions: np.ndarray, n: int, alpha: float, keep_all: bool,
                            rng: np.random.Generator) -> np.ndarray:
    """The long-tailed training draw of App. E.1.1: sequences sampled ∝ P(X)^alpha.

    With keep_all, the 81 enumerated sequences are kept once each and the remaining
    n - 81 are drawn (our reading of 'the initial set is then expanded'); without it,
    all n are drawn. Rows are returned in a random order.
    """
    every = enumerate_sequences()
    weights = np.exp(alpha * log_prob(every, transitions))
    weights /= weights.sum()
    n_drawn = n - len(every) if keep_all else n
    drawn = every[rng.choice(len(every), size=n_drawn, p=weights)]
    sequences = np.concatenate([every, drawn]) if keep_all else drawn
    return sequences[rng.permutation(len(sequences))]


def bucket_thresholds(train_ic: np.ndarray) -> tuple[float, float]:
    """(q0.4, q0.6) of the training IC (numpy's default 'linear' quantile)."""
    low, high = np.quantile(train_ic, [0.4, 0.6])
    return float(low), float(high)


def assign_buckets(ic: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    """0 = low information (IC <= q0.4), 2 = high (IC >= q0.6), 1 = middle.

    The rule depends on IC alone, so copies of one sequence never straddle buckets.
    """
    low, high = thresholds
    buckets = np.ones(len(ic), dtype=np.int64)
    buckets[ic <= low] = 0
    buckets[ic >= high] = 2
    return buckets


def bayes_predictions(transitions: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Bayes-optimal next token for contexts [n, L-1]: argmax of the last transition row."""
    last = step_matrix(transitions, contexts.shape[1])
    return np.argmax(last[contexts[:, -1]], axis=-1)


@dataclass(frozen=True)
class Task:
    """Everything about the data of one run; arrays are numpy, sequences are [n, 4]."""

    transitions: np.ndarray      # [3, V, V]
    train: np.ndarray            # [n_train, 4]
    val: np.ndarray              # [n_val, 4]
    thresholds: tuple[float, float]

    @property
    def train_ic(self) -> np.ndarray:
        return information_content(self.train, self.transitions)

    @property
    def val_ic(self) -> np.ndarray:
        return information_content(self.val, self.transitions)

    @property
    def train_bucket(self) -> np.ndarray:
        return assign_buckets(self.train_ic, self.thresholds)

    @property
    def val_bucket(self) -> np.ndarray:
        return assign_buckets(self.val_ic, self.thresholds)


def build_task(transition_kind: str, concentration: float, alpha: float, n_train: int,
               n_val: int, keep_all: bool, data_seed: int) -> Task:
    """Transitions and the training / validation draws for one data seed.

    Each part has its own seeded stream, so changing n_val never changes the
    training set, and the validation set is drawn 'the same way' but independently
    (all n_val drawn: a held-out set keeps no enumerated copies).
    """
    transitions = make_transitions(transition_kind, concentration, np.random.default_rng([data_seed, 0]))
    train = draw_training_sequences(transitions, n_train, alpha, keep_all, np.random.default_rng([data_seed, 1]))
    val = draw_training_sequences(transitions, n_val, alpha, False, np.random.default_rng([data_seed, 2]))
    return Task(transitions, train, val, bucket_thresholds(information_content(train, transitions)))


def task_for(config: "RunConfig") -> Task:
    """The task of a run configuration (its transitions, draws and buckets)."""
    return build_task(config.transitions, config.concentration, config.alpha, config.n_train, config.n_val,
                      config.keep_all_sequences, config.data_seed)


def bucket_accuracy(correct: np.ndarray, buckets: np.ndarray) -> dict[str, float]:
    """Accuracy on low / high / all samples from a boolean per-sample vector."""
    def mean(mask: np.ndarray) -> float:
        return float(correct[mask].mean()) if mask.any() else float("nan")
    return {"low": mean(buckets == 0), "high": mean(buckets == 2), "all": mean(np.ones_like(correct, bool))}


def bayes_accuracy(task: Task, split: str = "train") -> dict[str, float]:
    """Accuracy of the Bayes rule argmax T3[x2, ·] per bucket: the ceiling in expectation."""
    seqs = task.train if split == "train" else task.val
    buckets = task.train_bucket if split == "train" else task.val_bucket
    return bayes_bucket_accuracy(task.transitions, seqs[:, :-1], seqs[:, -1], buckets)


def bayes_bucket_accuracy(transitions: np.ndarray, contexts: np.ndarray, targets: np.ndarray,
                          buckets: np.ndarray) -> dict[str, float]:
    """Bayes-rule accuracy per bucket for arrays as stored in a run's task.npz."""
    return bucket_accuracy(bayes_predictions(transitions, contexts) == targets, buckets)


def memorisation_ceiling(task: Task) -> dict[str, float]:
    """Best training accuracy any function of (x0, x1, x2) can reach: per-context majority.

    Above the Bayes accuracy, training accuracy can only come from memorising the
    draw's own per-context majorities (docs/background.md §2); this is that ceiling.
    """
    majority = np.argmax(count_table(task.train), axis=1)
    return bucket_accuracy(majority[context_index(task.train)] == task.train[:, -1], task.train_bucket)


def context_index(sequences: np.ndarray) -> np.ndarray:
    """Row of each sequence's context (x0, x1, x2) in enumerate_sequences(3)."""
    n = SEQ_LEN - 1
    return sequences[:, :n] @ (VOCAB ** np.arange(n - 1, -1, -1))


def count_table(sequences: np.ndarray) -> np.ndarray:
    """counts[context, next token] [27, V] of a list of sequences: a dataset as the loss sees it."""
    table = np.zeros((VOCAB ** (SEQ_LEN - 1), VOCAB))
    np.add.at(table, (context_index(sequences), sequences[:, -1]), 1.0)
    return table


def _backward_messages(powered: np.ndarray) -> np.ndarray:
    """β_j(x) ∝ Σ_{x_{j+1..}} Π_{k>j} A_k[x_{k-1}, x_k] for j = 0..L-1, each row summing to one.

    `powered[j - 1]` is A_j = T_j^α (elementwise), the step into position j. Each message is
    normalised as it is formed: the sampler needs only ratios within a row, and unnormalised
    products of α-powered probabilities underflow long before L = 17 at large α.
    """
    length = powered.shape[0] + 1
    beta = np.ones((length, VOCAB)) / VOCAB
    for j in range(length - 2, -1, -1):
        message = powered[j] @ beta[j + 1]
        beta[j] = message / message.sum()
    return beta


def _inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One categorical draw per row of `probs` [n, V] from uniforms u [n]."""
    cdf = np.cumsum(probs, axis=-1)
    # Dividing by the last entry makes it exactly 1, so u in [0, 1) never passes it and
    # a zero-probability symbol (an empty CDF step) is never chosen.
    cdf /= cdf[:, -1:]
    return (u[:, None] >= cdf).sum(axis=-1)


def sample_sequences(transitions: np.ndarray, length: int, n: int, alpha: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of `length` drawn exactly ∝ P(X)^α, and their IC (App. E.1.3; docs/background.md §1).

    P(X)^α = (1/V)^α Π_j T_j[x_{j-1}, x_j]^α factorises along the chain (T_j cyclic, as in
    `step_matrix`), so with A_j = T_j^α elementwise and backward messages β_j the target is
    the chain x0 ∝ β_0(x0), x_j | x_{j-1} ∝ A_j[x_{j-1}, x_j] β_j(x_j): forward sampling
    with backward messages, O(L · V²) to prepare and O(n · L · V) to draw, instead of
    enumerating V^L sequences. One uniform per position drives an inverse-CDF draw.
    Returns sequences [n, length] (int64) and IC = −ln P(X) [n] in nats.
    """
    if length < 1 or n < 0:
        raise ValueError(f"need length >= 1 and n >= 0, got length {length}, n {n}")
    powered = np.array([step_matrix(transitions, j) ** alpha
                        for j in range(1, length)]).reshape(length - 1, VOCAB, VOCAB)
    beta = _backward_messages(powered)
    u = rng.random((n, length))
    sequences = np.empty((n, length), dtype=np.int64)
    sequences[:, 0] = _inverse_cdf(np.broadcast_to(beta[0], (n, VOCAB)), u[:, 0])
    for j in range(1, length):
        conditional = powered[j - 1] * beta[j]          # [V, V]: row x_{j-1}, column x_j
        sequences[:, j] = _inverse_cdf(conditional[sequences[:, j - 1]], u[:, j])
    return sequences, information_content(sequences, transitions)
