"""The shared sidebar: run-configuration widgets bound to the URL's query parameters.

Each knob is a widget whose key is its query parameter (`?d=8&epochs=300`), bound with
Streamlit's `bind="query-params"`: the URL seeds it, a change rewrites the URL, a value
equal to the default is left out. `persist_state="session"` keeps the value when the user
switches to a page without these widgets and back. A URL value the widget refuses
(malformed, out of range) falls back to the default, with a visible note.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from ..config import ConfigError, RunConfig, TRANSITION_KINDS, EMBEDDINGS, OPTIMIZERS
from .inputs import bounded_number, clear_range_note, warn_refused_query

NOTES_KEY = "run_config_notes"
SHARED_KEY = "run_config_shared"   # the config app.py drew in this run for the page it is about to run


@dataclass(frozen=True)
class Knob:
    """One widget: the config field, its label, and the range the widget accepts."""

    name: str
    label: str
    kind: str                    # int | float | choice | bool
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    help: str = ""


KNOBS = (
    Knob("d", "embedding width d", "int", 2, 32, help="P = 3d² + 3d trainable weights"),
    Knob("loops", "loops T (Looped-Attn)", "int", 1, 8),
    Knob("epochs", "epochs", "int", 1, 3000),
    Knob("lr", "learning rate", "choice", choices=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)),
    Knob("batch_size", "batch size (0 = full batch)", "choice", choices=(0, 16, 32, 64, 128, 250)),
    Knob("optimizer", "optimizer", "choice", choices=OPTIMIZERS,
         help="adam: the paper; sgd: minibatches (batch size > 0); gd: full batch (batch size 0)"),
    Knob("momentum", "momentum μ (sgd / gd)", "float", 0.0, 0.99,
         help="torch SGD momentum: u ← μu + g, θ ← θ − lr·u; must be 0 for adam"),
    Knob("init_scale", "initial weight std", "float", 0.001, 1.0),
    Knob("seed", "weight seed", "int", 0, 1_000_000),
    Knob("data_seed", "data seed", "int", 0, 1_000_000),
    Knob("transitions", "transition rows", "choice", choices=TRANSITION_KINDS),
    Knob("concentration", "Dirichlet concentration", "float", 0.05, 100.0),
    Knob("embedding", "embedding", "choice", choices=EMBEDDINGS),
    Knob("keep_all_sequences", "keep all 81 sequences once", "bool"),
    Knob("hessian_every", "spectrum every k epochs (0 = none)", "int", 0, 100),
)
KNOB_NAMES = tuple(k.name for k in KNOBS)


def _in_range(knob: Knob, value: Any) -> bool:
    if knob.kind == "choice":
        return value in knob.choices
    if knob.kind in ("int", "float"):
        return knob.low <= value <= knob.high
    return isinstance(value, bool)


def _a_number(knob: Knob, raw: str) -> bool:
    """Whether `raw` reads as a number of the knob's kind (int or float)."""
    try:
        {"int": int, "float": float}[knob.kind](raw)
    except (KeyError, ValueError):
        return False
    return True


def parse_query(params: dict[str, str], default: RunConfig,
                numeric_ranges: bool = True) -> tuple[RunConfig, dict[str, str]]:
    """Config from the knobs' query parameters; each bad one falls back to its default,
    with a note keyed by the knob's name. `numeric_ranges=False` leaves a number outside its
    knob's range unnoted (and unapplied): the sidebar's bounded widget says so itself."""
    values = default.to_dict()
    notes = {}
    for knob in KNOBS:
        if knob.name not in params:
            continue
        raw = params[knob.name]
        try:
            value = getattr(RunConfig.from_dict({**values, knob.name: raw}), knob.name)
        except ConfigError as exc:
            if not numeric_ranges and _a_number(knob, raw):   # a number, but out of range
                continue
            notes[knob.name] = (f"query parameter {knob.name}={raw!r} ignored ({exc}); "
                                f"using {getattr(default, knob.name)!r}")
            continue
        if not _in_range(knob, value):
            if not numeric_ranges and knob.kind in ("int", "float"):   # said by the widget
                continue
            notes[knob.name] = (f"query parameter {knob.name}={raw!r} is outside the app's range; "
                                f"using {getattr(default, knob.name)!r}")
            continue
        values[knob.name] = value
    return RunConfig.from_dict(values), notes


def reset(default: RunConfig) -> None:
    """Callback of "reset to defaults": runs before the widgets are drawn, so it may set them."""
    for knob in KNOBS:
        st.session_state[knob.name] = getattr(default, knob.name)
        clear_range_note(knob.name)
    st.session_state[NOTES_KEY] = {}


def shared_sidebar_config(default: RunConfig, needed: bool) -> None:
    """app.py: draw the config widgets for a page that needs them, before the page runs.

    Widgets drawn by the entry script are one widget on every page (same id, and a URL
    binding that page switches keep); drawn by each page, they would be a new widget per
    page, and Streamlit drops a page's bound query parameters when another page opens.
    """
    st.session_state[SHARED_KEY] = sidebar_config(default, shared=False) if needed else None


def sidebar_config(default: RunConfig, shared: bool = True) -> RunConfig:
    """Draw the config widgets in the sidebar (unless app.py drew them for this page in this
    run); return the chosen config (model as default's)."""
    if shared and st.session_state.get(SHARED_KEY) is not None:
        return st.session_state[SHARED_KEY]
    # The URL's raw values are seen here before the widgets consume them: Streamlit drops a
    # value its widget refuses without a word, so the note is ours to give.
    _, refused = parse_query({k: st.query_params[k] for k in KNOB_NAMES if k in st.query_params}, default,
                             numeric_ranges=False)
    notes = st.session_state.setdefault(NOTES_KEY, {})
    notes.update(refused)

    side = st.sidebar
    side.header("Run configuration")
    chosen = {}
    with side.expander("model and training", expanded=True):
        for knob in KNOBS[:9]:
            chosen[knob.name] = _widget(knob, getattr(default, knob.name))
    with side.expander("task and curvature"):
        for knob in KNOBS[9:]:
            chosen[knob.name] = _widget(knob, getattr(default, knob.name))
    side.button("reset to defaults", key="cfg_reset", on_click=reset, args=(default,))
    for name, note in list(notes.items()):
        if chosen[name] == getattr(default, name):  # the note stands while the fallback does
            side.warning(note)
        else:
            del notes[name]
    try:
        return default.replace(**chosen)
    except ConfigError as exc:
        side.error(f"invalid configuration: {exc}")
        # On the page too: the charts below are the default run's, not the sidebar's (and
        # presenter mode hides the sidebar).
        st.warning(f"The sidebar's configuration is invalid ({exc}); the page shows the default configuration.")
        return default


def _widget(knob: Knob, default: Any) -> Any:
    common = dict(key=knob.name, help=knob.help or None, bind="query-params", persist_state="session")
    if knob.kind == "int":
        return int(bounded_number(knob.label, int(knob.low), int(knob.high), int(default), step=1, **common))
    if knob.kind == "float":
        return float(bounded_number(knob.label, float(knob.low), float(knob.high), float(default), format="%g",
                                    **common))
    if knob.kind == "choice":
        return st.selectbox(knob.label, knob.choices, index=knob.choices.index(default), **common)
    return bool(st.checkbox(knob.label, bool(default), **common))


def warn_refused_int(key: str, low: int, high: int, fallback: int) -> None:
    """Before an integer widget bound to `?key=` is drawn: a visible note when the URL's value
    is not an integer in [low, high] (Streamlit drops it without a word)."""
    warn_refused_query(key, lambda raw: low <= int(raw) <= high,
                       f"is not an epoch in [{low}, {high}]; using {fallback}")


def selected_seed(selection: dict) -> int | None:
    """The seed of the first point picked on a chart whose first trace carries seeds as
    customdata (the seed sweep's scatter), or None."""
    for point in selection.get("points", []):
        if point.get("curve_number") == 0 and point.get("customdata") is not None:
            value = point["customdata"]
            return int(value[0] if isinstance(value, (list, tuple)) else value)
    return None


def load_seed(seed: int) -> None:
    """Set the sidebar to one seed of the sweep (data_seed = seed = s). Call from a callback,
    which runs before the widgets are drawn."""
    st.session_state["seed"] = seed
    st.session_state["data_seed"] = seed
