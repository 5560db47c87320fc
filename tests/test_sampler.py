"""The exact long-sequence sampler (App. E.1.3): ∝ P(X)^α with cyclic transitions."""
import numpy as np
import pytest
from scipy import stats

from loopviz.toy import markov

N_DRAWS = 50_000


@pytest.fixture
def transitions():
    return markov.make_transitions("dirichlet", 1.0, np.random.default_rng(7))


def exact_target(transitions, length, alpha):
    """P(X)^α / Z over every sequence, by brute-force enumeration."""
    every = markov.enumerate_sequences(length)
    weights = np.exp(alpha * markov.log_prob(every, transitions))
    return weights / weights.sum()


def empirical(sequences):
    index = sequences @ (markov.VOCAB ** np.arange(sequences.shape[1] - 1, -1, -1))
    return np.bincount(index, minlength=markov.VOCAB ** sequences.shape[1]) / len(sequences)


@pytest.mark.parametrize("length, alpha", [(5, 2.0), (6, 2.0), (5, 1.0)])
def test_sampler_agrees_with_enumeration(transitions, length, alpha):
    seqs, _ = markov.sample_sequences(transitions, length, N_DRAWS, alpha, np.random.default_rng(length))
    p, q = exact_target(transitions, length, alpha), empirical(seqs)
    tv = 0.5 * np.abs(p - q).sum()
    # What TV an exact sampler gets at this n: 300 multinomial draws straight from p.
    exact_draws = np.random.default_rng(99).multinomial(N_DRAWS, p, size=300) / N_DRAWS
    exact_tv = 0.5 * np.abs(exact_draws - p).sum(axis=1)
    assert tv <= np.quantile(exact_tv, 0.99)
    # Chi-square on cells with enough expected mass; the rest pooled into one cell.
    expected = p * N_DRAWS
    big = expected >= 5
    observed = np.append(q[big] * N_DRAWS, q[~big].sum() * N_DRAWS)
    expected = np.append(expected[big], expected[~big].sum())
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_transitions_are_applied_cyclically():
    # Deterministic steps: T1 adds 1, T2 keeps, T3 adds 2 (mod 3); every sampled sequence must
    # follow T1, T2, T3, T1, T2, ... exactly, whatever x0 is.
    shift = lambda k: np.roll(np.eye(3), k, axis=1)  # noqa: E731 - row x has its one at x + k
    transitions = np.stack([shift(1), shift(0), shift(2)])
    seqs, ic = markov.sample_sequences(transitions, 11, 2000, 2.0, np.random.default_rng(0))
    adds = [1, 0, 2]
    for j in range(1, 11):
        np.testing.assert_array_equal(seqs[:, j], (seqs[:, j - 1] + adds[(j - 1) % 3]) % 3)
    assert set(np.unique(seqs[:, 0])) == {0, 1, 2}
    np.testing.assert_allclose(ic, np.log(3))


def test_ic_of_a_sampled_sequence_is_minus_log_probability(transitions):
    seqs, ic = markov.sample_sequences(transitions, 17, 200, 2.0, np.random.default_rng(1))
    for seq, value in zip(seqs, ic):
        p = 1 / 3
        for j in range(1, len(seq)):
            p *= transitions[(j - 1) % 3][seq[j - 1], seq[j]]
        assert value == pytest.approx(-np.log(p), rel=1e-12)


def test_long_sequences_do_not_underflow_and_avoid_impossible_steps():
    transitions = markov.make_transitions("dirichlet", 0.3, np.random.default_rng(2))
    transitions[0, 0] = [0.0, 0.5, 0.5]  # T1 never goes a → a
    seqs, ic = markov.sample_sequences(transitions, 200, 1000, 10.0, np.random.default_rng(3))
    assert np.all(np.isfinite(ic))
    t1_steps = np.arange(1, 200, 3)  # steps 1, 4, 7, ... use T1
    assert not np.any((seqs[:, t1_steps - 1] == 0) & (seqs[:, t1_steps] == 0))


def test_sampling_is_seeded_and_shapes_are_right(transitions):
    a = markov.sample_sequences(transitions, 8, 50, 2.0, np.random.default_rng(5))
    b = markov.sample_sequences(transitions, 8, 50, 2.0, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (50, 8) and a[0].dtype == np.int64 and a[1].shape == (50,)
    single, _ = markov.sample_sequences(transitions, 1, 30000, 2.0, np.random.default_rng(6))
    assert np.abs(np.bincount(single[:, 0], minlength=3) / 30000 - 1 / 3).max() < 0.02
