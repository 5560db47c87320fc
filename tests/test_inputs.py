"""Parsing what the user types (loopviz.ui.inputs): one clear message for each kind of bad input."""
import numpy as np
import pytest

from loopviz.ui.inputs import parse_spectrum


@pytest.mark.parametrize("text, fragment", [
    ("1, x, 3", "`x` is not a number"),
    ("1, -2", "must be positive"),
    ("1, 0", "must be positive"),
    ("", "at least one"),
    ("1, nan", "finite"),
    (", ".join(["1"] * 10), "Too many"),
])
def test_parse_spectrum_rejects_bad_input(text, fragment):
    lam, message = parse_spectrum(text, max_size=9)
    assert lam is None and fragment in message


def test_parse_spectrum_accepts_numbers():
    lam, message = parse_spectrum(" 1, 0.5,1e-2 ", max_size=9)
    assert message == "" and np.array_equal(lam, [1, 0.5, 0.01])
