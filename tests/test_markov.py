import itertools

import numpy as np
import pytest

from loopviz.toy import markov


@pytest.fixture
def transitions():
    return markov.make_transitions("dirichlet", 1.0, np.random.default_rng(3))


@pytest.mark.parametrize("kind", ["dirichlet", "uniform"])
def test_transitions_are_three_distinct_row_stochastic_matrices(kind):
    T = markov.make_transitions(kind, 1.0, np.random.default_rng(0))
    assert T.shape == (3, 3, 3)
    assert np.all(T > 0)
    np.testing.assert_allclose(T.sum(-1), 1.0, atol=1e-12)
    assert not np.allclose(T[0], T[1]) and not np.allclose(T[1], T[2])
    np.testing.assert_array_equal(T, markov.make_transitions(kind, 1.0, np.random.default_rng(0)))


def test_log_prob_is_the_chain_product(transitions):
    T1, T2, T3 = transitions
    for seq in itertools.product(range(3), repeat=4):
        expected = (1 / 3) * T1[seq[0], seq[1]] * T2[seq[1], seq[2]] * T3[seq[2], seq[3]]
        assert markov.log_prob(np.array([seq]), transitions)[0] == pytest.approx(np.log(expected), rel=1e-12)


@pytest.mark.parametrize("length", [2, 4, 5, 7])
def test_probabilities_sum_to_one_with_cyclic_transitions(transitions, length):
    every = markov.enumerate_sequences(length)
    assert every.shape == (3 ** length, length)
    assert np.exp(markov.log_prob(every, transitions)).sum() == pytest.approx(1.0, abs=1e-12)


def test_cyclic_transitions_reuse_t1_after_t3(transitions):
    seq = np.array([[0, 1, 2, 0, 2]])
    T1, T2, T3 = transitions
    expected = np.log(1 / 3 * T1[0, 1] * T2[1, 2] * T3[2, 0] * T1[0, 2])
    assert markov.log_prob(seq, transitions)[0] == pytest.approx(expected)
    assert markov.information_content(seq, transitions)[0] == pytest.approx(-expected)


def test_keep_all_draw_holds_every_sequence_and_n_rows(transitions):
    seqs = markov.draw_training_sequences(transitions, 500, 2.0, True, np.random.default_rng(1))
    assert seqs.shape == (500, 4)
    assert len({tuple(s) for s in seqs}) == 81


def test_draw_follows_p_to_the_alpha(transitions):
    seqs = markov.draw_training_sequences(transitions, 200_000, 2.0, False, np.random.default_rng(2))
    every = markov.enumerate_sequences()
    weights = np.exp(2.0 * markov.log_prob(every, transitions))
    weights /= weights.sum()
    index = seqs @ (3 ** np.arange(3, -1, -1))
    freq = np.bincount(index, minlength=81) / len(seqs)
    assert 0.5 * np.abs(freq - weights).sum() < 0.01


def test_bucket_rule_uses_training_quantiles_and_never_splits_copies():
    task = markov.build_task("dirichlet", 1.0, 2.0, 500, 500, True, 0)
    ic = task.train_ic
    q40, q60 = np.quantile(ic, [0.4, 0.6])
    assert task.thresholds == pytest.approx((q40, q60))
    expected = np.where(ic <= q40, 0, np.where(ic >= q60, 2, 1))
    np.testing.assert_array_equal(task.train_bucket, expected)
    by_sequence = {}
    for seq, bucket in zip(map(tuple, task.train), task.train_bucket):
        assert by_sequence.setdefault(seq, bucket) == bucket
    assert (task.train_bucket == 0).mean() >= 0.4 and (task.train_bucket == 2).mean() >= 0.4


def test_build_task_is_seeded_and_parts_are_independent():
    a = markov.build_task("dirichlet", 1.0, 2.0, 500, 500, True, 7)
    b = markov.build_task("dirichlet", 1.0, 2.0, 500, 100, True, 7)
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.val[:100], a.train[:100])


def test_bayes_accuracy_by_brute_force(transitions):
    task = markov.build_task("dirichlet", 1.0, 2.0, 500, 500, True, 3)
    acc = markov.bayes_accuracy(task)
    hits = [np.argmax(task.transitions[2][s[2]]) == s[3] for s in task.train]
    assert acc["all"] == pytest.approx(np.mean(hits))
    high = [h for h, b in zip(hits, task.train_bucket) if b == 2]
    assert acc["high"] == pytest.approx(np.mean(high))


def test_majority_rule_is_the_best_training_accuracy():
    task = markov.build_task("dirichlet", 1.0, 2.0, 500, 500, True, 5)
    best = markov.memorisation_ceiling(task)["all"]
    assert best >= markov.bayes_accuracy(task)["all"]
    # brute force: per context, count the most frequent next token
    counts = {}
    for s in task.train:
        counts.setdefault(tuple(s[:3]), np.zeros(3))[s[3]] += 1
    assert best == pytest.approx(sum(c.max() for c in counts.values()) / len(task.train))
