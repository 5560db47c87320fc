"""The five tasks against brute-force definitions over every input of small lengths."""
import itertools

import numpy as np
import pytest

from loopviz.algo import tasks
from loopviz.algo.tasks import EMPTY, PLUS, make_task


def all_strings(n: int, alphabet: int) -> np.ndarray:
    return np.array(list(itertools.product(range(alphabet), repeat=n)), dtype=np.int64).reshape(-1, n)


def naive_le(value: int, width: int) -> list[int]:
    digits = bin(value)[2:][::-1].ljust(width, "0")
    assert len(digits) == width
    return [int(c) for c in digits]


@pytest.mark.parametrize("n", range(1, 11))
def test_parity_of_every_bit_string(n):
    inputs = all_strings(n, 2)
    expected = [[sum(map(int, row)) % 2] for row in inputs]  # XOR of bits, one by one
    assert tasks.parity_target(inputs).tolist() == expected


@pytest.mark.parametrize("n", range(1, 11))
def test_binary_sum_of_every_bit_string(n):
    inputs = all_strings(n, 2)
    width = len(bin(n)) - 2
    expected = [naive_le(int(row.sum()), width) for row in inputs]
    assert tasks.binary_sum_target(inputs).tolist() == expected


@pytest.mark.parametrize("n", range(1, 6))
def test_addition_of_every_operand_pair(n):
    numbers = all_strings(n, 2)
    rows, expected = [], []
    for a, b in itertools.product(numbers, numbers):
        rows.append([*a, PLUS, *b])
        va = int("".join(map(str, a[::-1])), 2)
        vb = int("".join(map(str, b[::-1])), 2)
        expected.append(naive_le(va + vb, n + 1))
    assert tasks.addition_target(np.array(rows)).tolist() == expected


@pytest.mark.parametrize("n,alphabet", [(n, 3) for n in range(1, 8)] + [(4, 8)])
def test_unique_set_of_every_string(n, alphabet):
    inputs = all_strings(n, alphabet)
    expected = []
    for row in inputs:
        seen = []
        for s in row:
            if s not in seen:
                seen.append(int(s))
        expected.append(seen + [EMPTY] * (n - len(seen)))
    assert tasks.unique_set_target(inputs).tolist() == expected


def test_copy_is_the_input():
    inputs = all_strings(6, 2)
    assert tasks.copy_target(inputs).tolist() == inputs.tolist()


@pytest.mark.parametrize("name", ["parity", "addition", "copy", "binary_sum", "unique_set"])
def test_samples_are_seeded_shaped_and_correct_at_any_length(name):
    task = make_task(name)
    for n in (1, 3, 17, 40):
        x1, y1 = task.sample(np.random.default_rng([5, n]), n, 50)
        x2, y2 = task.sample(np.random.default_rng([5, n]), n, 50)
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
        assert x1.shape == (50, task.input_len(n)) and y1.shape == (50, task.output_len(n))
        assert np.array_equal(task.target(x1), y1)
        assert task.loops(n) == n
        seq = tasks.sequence(x1, y1.shape[1])
        assert seq.shape[1] == task.seq_len(n) and (seq[:, task.input_len(n):] == tasks.SLOT).all()
        assert seq.max() < tasks.VOCAB
    x3, _ = task.sample(np.random.default_rng([6, 3]), 3, 50)
    assert not np.array_equal(x3, task.sample(np.random.default_rng([5, 3]), 3, 50)[0])


def test_samples_cover_the_inputs_uniformly():
    from scipy.stats import chisquare

    x, _ = make_task("parity").sample(np.random.default_rng(0), 4, 8000)
    counts = np.bincount((x * (2 ** np.arange(4))).sum(1), minlength=16)
    assert chisquare(counts).pvalue > 1e-3


def test_bit_tasks_refuse_another_alphabet():
    with pytest.raises(ValueError):
        make_task("parity", alphabet=3)
    assert make_task("copy", alphabet=5).alphabet == 5
