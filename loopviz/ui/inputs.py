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


def _valid_key(key: str) -> str:
    return f"{key}::valid"


def _note_key(key: str) -> str:
    return f"{key}::note"


def _restore_key(key: str) -> str:
    return f"{key}::restore"


def range_note(label: str, low: float, high: float, value: float, kept: float, source: str = "") -> str:
    """The one message for a number outside its knob's range."""
    return (f"**{label}** must be between {low:g} and {high:g}: {source}{value:g} was not applied; "
            f"it stays {kept:g}.")


def clear_range_note(key: str) -> None:
    """Forget a knob's out-of-range message (a callback that set its value, such as reset)."""
    st.session_state.pop(_note_key(key), None)


def _check_typed(key: str, label: str, low: float, high: float, default: float) -> None:
    """on_change of a bounded number: a typed value out of range is put back to the last valid
    one (a callback runs before the widget is drawn, so it may set it), with a message."""
    value = st.session_state[key]
    if low <= value <= high:
        clear_range_note(key)
        return
    kept = st.session_state.get(_valid_key(key), default)
    st.session_state[key] = kept
    st.session_state[_note_key(key)] = range_note(label, low, high, value, kept)


def bounded_number(label: str, low: float, high: float, value: float, *, key: str, where=st, **kwargs) -> float:
    """`st.number_input` whose range [low, high] is checked here rather than by Streamlit.

    Streamlit 1.67's browser widget refuses a typed number outside min/max by a red outline
    and an icon whose tooltip holds the reason, keeps the old value and never tells the
    script; a user sees the charts not change. Without min/max the script sees the number:
    a typed one is put back to the last valid value by the on_change callback; one seeded
    from the URL (`bind="query-params"`, first run) cannot be changed once drawn, so the run
    is redone with the last valid value set before the widget. Either way one warning under
    the widget names the knob, its range and the value in use. Integers when `value` is an int;
    `where` is the container (st, a column, st.sidebar).
    """
    restore = st.session_state.pop(_restore_key(key), None)
    if restore is not None:
        st.session_state[key] = restore
    shown = where.number_input(label, value=value, key=key, on_change=_check_typed,
                               args=(key, label, low, high, value), **kwargs)
    if not low <= shown <= high:
        kept = st.session_state.get(_valid_key(key), value)
        st.session_state[_restore_key(key)] = kept
        st.session_state[_note_key(key)] = range_note(label, low, high, shown, kept, "the link's ")
        st.rerun()
    st.session_state[_valid_key(key)] = shown
    note = st.session_state.get(_note_key(key))
    if note:
        where.warning(note)
    return shown
