"""Parsing of user-typed inputs into the arrays the science functions take."""
from __future__ import annotations

import numpy as np


def parse_spectrum(text: str, max_size: int) -> tuple[np.ndarray | None, str]:
    """Comma-separated valley eigenvalues → (array, "") or (None, what is wrong with them).

    Valley eigenvalues are curvatures above the river threshold (Definition 1), so each
    must be a finite number > 0.
    """
    tokens = [t.strip() for t in text.split(",")]
    if not any(tokens):
        return None, "Enter at least one eigenvalue, e.g. `1, 0.3, 0.01`."
    values = []
    for t in tokens:
        try:
            values.append(float(t))
        except ValueError:
            what = f"`{t}` is not a number" if t else "there is an empty entry"
            return None, f"{what}: enter numbers separated by commas, e.g. `1, 0.3, 0.01`."
    lam = np.array(values)
    if not np.all(np.isfinite(lam)):
        return None, "Eigenvalues must be finite numbers (no `nan` or `inf`)."
    if np.any(lam <= 0):
        bad = ", ".join(f"{x:g}" for x in lam[lam <= 0])
        return None, (f"Valley eigenvalues must be positive (got {bad}): the valley is where the "
                      "curvature is above the river's ε > 0 (Definition 1).")
    if lam.size > max_size:
        return None, (f"Too many eigenvalues: {lam.size} given, at most {max_size} here "
                      "(d_V + d_R ≤ 200).")
    return lam, ""
