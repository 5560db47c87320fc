"""The shared sidebar: run-configuration widgets mirrored in the URL's query parameters.

The config lives in st.session_state["run_config"], which survives page switches
(widget keys do not). Query parameters seed it once per session; a malformed or
out-of-range parameter falls back to the default and is named in a visible note.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import streamlit as st

from ..config import ConfigError, RunConfig, TRANSITION_KINDS, EMBEDDINGS

STATE_KEY = "run_config"
NOTES_KEY = "run_config_notes"
WIDGET_PREFIX = "cfg_"


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
    Knob("lr", "Adam learning rate", "choice", choices=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
    Knob("batch_size", "batch size (0 = full batch)", "choice", choices=(0, 16, 32, 64, 128, 250)),
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


def parse_query(params: dict[str, str], default: RunConfig) -> tuple[RunConfig, list[str]]:
    """Config from query parameters; each bad one falls back to its default with a note."""
    values = default.to_dict()
    notes = []
    known = {f.name for f in fields(RunConfig)}
    for name, raw in params.items():
        if name not in known or name == "model":
            continue
        try:
            candidate = RunConfig.from_dict({**values, name: raw})
        except ConfigError as exc:
            notes.append(f"query parameter {name}={raw!r} ignored ({exc}); using {getattr(default, name)!r}")
            continue
        value = getattr(candidate, name)
        knob = next((k for k in KNOBS if k.name == name), None)
        if knob is not None and not _in_range(knob, value):
            notes.append(f"query parameter {name}={raw!r} is outside the app's range; using {getattr(default, name)!r}")
            continue
        values[name] = value
    return RunConfig.from_dict(values), notes


def sidebar_config(default: RunConfig) -> RunConfig:
    """Draw the config widgets in the sidebar; return the chosen config (model as default's)."""
    if STATE_KEY not in st.session_state:
        config, notes = parse_query(dict(st.query_params), default)
        st.session_state[STATE_KEY] = config
        st.session_state[NOTES_KEY] = notes
    config: RunConfig = st.session_state[STATE_KEY]
    for knob in KNOBS:  # (re)seed widget state after a page switch dropped it
        st.session_state.setdefault(WIDGET_PREFIX + knob.name, getattr(config, knob.name))

    side = st.sidebar
    side.header("Run configuration")
    for note in st.session_state.get(NOTES_KEY, []):
        side.warning(note)
    chosen = {}
    with side.expander("model and training", expanded=True):
        for knob in KNOBS[:7]:
            chosen[knob.name] = _widget(knob)
    with side.expander("task and curvature"):
        for knob in KNOBS[7:]:
            chosen[knob.name] = _widget(knob)
    if side.button("reset to defaults", key="cfg_reset"):
        for knob in KNOBS:
            st.session_state[WIDGET_PREFIX + knob.name] = getattr(default, knob.name)
        st.session_state[NOTES_KEY] = []
        st.rerun()
    try:
        config = default.replace(**chosen)
    except ConfigError as exc:
        side.error(f"invalid configuration: {exc}")
        config = default
    st.session_state[STATE_KEY] = config
    _mirror_to_query(config, default)
    return config


def _widget(knob: Knob) -> Any:
    key = WIDGET_PREFIX + knob.name
    if knob.kind == "int":
        return int(st.number_input(knob.label, int(knob.low), int(knob.high), step=1, key=key, help=knob.help or None))
    if knob.kind == "float":
        return float(st.number_input(knob.label, float(knob.low), float(knob.high), key=key, format="%g",
                                     help=knob.help or None))
    if knob.kind == "choice":
        return st.selectbox(knob.label, knob.choices, key=key, help=knob.help or None)
    return bool(st.checkbox(knob.label, key=key, help=knob.help or None))


def _mirror_to_query(config: RunConfig, default: RunConfig) -> None:
    """Keep only the fields that differ from the default in the URL, so links stay short."""
    for name in KNOB_NAMES:
        value = getattr(config, name)
        if value != getattr(default, name):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if st.query_params.get(name) != text:
                st.query_params[name] = text
        elif name in st.query_params:
            del st.query_params[name]


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
    st.session_state[WIDGET_PREFIX + "seed"] = seed
    st.session_state[WIDGET_PREFIX + "data_seed"] = seed
