"""User inputs: typed text parsed into the arrays the science functions take, and URL
query parameters that a widget refuses, named."""
from __future__ import annotations

from typing import Callable

import numpy as np
import streamlit as st


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


def warn_refused_query(key: str, accept: Callable[[str], bool], refusal: str) -> None:
    """Before a widget bound to `?key=` is drawn: a visible warning when the URL's value is
    refused (`accept` is false or raises ValueError), since Streamlit drops it without a word.
    The warning reads "query parameter key='value' " + refusal."""
    raw = st.query_params.get(key)
    if raw is None:
        return
    try:
        ok = bool(accept(raw))
    except ValueError:
        ok = False
    if not ok:
        st.warning(f"query parameter {key}={raw!r} {refusal}")
