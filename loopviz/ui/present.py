"""Presenter mode (`?present=1`): no sidebar, no Train / Cancel, larger fonts for a projector.

The flag is read from the URL on every run and remembered for the session, so a page
switch that drops the query parameter does not drop the mode; leaving it is a button
(or a reload without the parameter: a new session).
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

PARAM = "present"
STATE_KEY = "presenter_mode"
ON_VALUES = ("1", "true", "yes", "on")
CHART_FONT, TITLE_FONT = 17, 22
# Room below a projector-sized x-axis title for the shared horizontal legend (up to two rows).
LEGEND_PX = 90

# Always: a live fragment redraws every second; Streamlit would fade the elements it is
# about to replace, and the page would flicker grey.
_BASE_CSS = """
<style>
.stElementContainer[data-stale="true"], [data-stale="true"] { opacity: 1 !important; transition: none !important; }
</style>
"""
_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"]
  { display: none !important; }
html, .stMarkdown, [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li
  { font-size: 1.3rem; }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] * { font-size: 2.6rem !important; }
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *
  { white-space: normal !important; overflow: visible !important; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { font-size: 1.05rem !important; }
h1 { font-size: 2.8rem !important; }
</style>
"""


def enabled() -> bool:
    """Whether this session is in presenter mode; keeps `?present=1` in the URL across pages."""
    raw = st.query_params.get(PARAM)
    if raw is not None:
        st.session_state[STATE_KEY] = raw.lower() in ON_VALUES
    elif st.session_state.get(STATE_KEY):
        st.query_params[PARAM] = "1"
    return bool(st.session_state.get(STATE_KEY, False))


def _leave() -> None:
    st.session_state[STATE_KEY] = False
    if PARAM in st.query_params:
        del st.query_params[PARAM]


def style() -> None:
    """Call once per run: no stale-element fading; in presenter mode, no sidebar and larger text."""
    st.html(_BASE_CSS + (_CSS if enabled() else ""))


def leave_button() -> None:
    if enabled():
        st.button("leave presenter mode", key="present_leave", on_click=_leave, type="tertiary")


def chart(where, fig: go.Figure, key: str, **kwargs):
    """`where.plotly_chart(fig, key=key, ...)`, with projector-sized fonts in presenter mode."""
    if st.session_state.get(STATE_KEY):
        fig.update_layout(font=dict(size=CHART_FONT), title_font=dict(size=TITLE_FONT))
        legend = fig.layout.legend
        if legend.orientation == "h" and legend.y == -0.25 and legend.yref in (None, "paper"):
            # The shared legend stands 0.25 of the plot's height below it: with projector-sized
            # tick labels and axis title, that is on the x-axis title. Pin it to the figure's
            # bottom edge (pixels) instead, in a margin grown by its height.
            fig.update_layout(legend=dict(yref="container", y=0, yanchor="bottom"),
                              margin=dict(b=(fig.layout.margin.b or 40) + LEGEND_PX),
                              height=(fig.layout.height or 340) + LEGEND_PX)
    return where.plotly_chart(fig, key=key, **kwargs)
