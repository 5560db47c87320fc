"""Presenter mode (`?present=1`): no sidebar, no Train / Cancel, larger fonts for a projector.

The flag is read from the URL on every run and remembered for the session, so a page
switch that drops the query parameter does not drop the mode; leaving it is a button
(or a reload without the parameter: a new session).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

PARAM = "present"
STATE_KEY = "presenter_mode"
ON_VALUES = ("1", "true", "yes", "on")
CHART_FONT, TITLE_FONT = 17, 22
# Extra figure height in presenter mode, so the plot area keeps its size when projector-sized
# tick labels, axis title and legend rows (Plotly reserves their height) take more room.
LEGEND_PX = 90
# The narrowest a chart in a row of columns may get before the row wraps (each column then
# takes the full width): 360 px holds a 45-character title and a legend of three entries a
# row; projector fonts need more.
MIN_CHART_PX, MIN_CHART_PX_PRESENT = 360, 480

# Always: a live fragment redraws every second; Streamlit would fade the elements it is
# about to replace, and the page would flicker grey. And a row of columns holding charts
# wraps (flexbox) when its charts would be narrower than `min`: Streamlit stacks columns
# only below a 640 px viewport, so an 800 px window with the sidebar open kept pairs of
# ~200 px charts side by side.
_ROW = '[data-testid="stMain"] [data-testid="stHorizontalBlock"]:has([data-testid="stPlotlyChart"])'
_BASE_CSS = """
<style>
.stElementContainer[data-stale="true"], [data-stale="true"] { opacity: 1 !important; transition: none !important; }
%s { flex-wrap: wrap; }
%s > [data-testid="stColumn"] { min-width: min(100%%, %dpx); }
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


# Streamlit's browser side fetches Plotly (a ~4.7 MB chunk) only when the first chart element
# arrives, i.e. after the script has computed everything above that chart: the fetch, parse and
# start of Plotly (~1.5 s in a fresh headless Chromium, measured by bench/bench_paint.py) then
# come after the server's work instead of beside it. A script at the top of every run imports
# the same chunk at once (the module map keeps one instance); its element stays hidden.
_PRELOAD_MARK = "loopviz-plotly-preload"
_PRELOAD = """
<script data-mark="%s">
(() => {
  const index = [...document.querySelectorAll('script[type="module"][src]')]
    .find(s => /\\/index\\.[^/]+\\.js$/.test(s.src));
  if (index) import(new URL(%s, index.src).href).catch(() => {});
})();
</script>
"""
_PRELOAD_CSS = '<style>.stElementContainer:has(script[data-mark="%s"]) { display: none; }</style>' % _PRELOAD_MARK


@functools.cache
def plotly_chunk(static: Path = Path(st.__file__).parent / "static" / "static" / "js") -> str | None:
    """The file name of the installed Streamlit's Plotly chunk (beside its index.*.js), or None
    when there is not exactly one (another Streamlit build: then nothing is preloaded)."""
    found = [p.name for p in static.glob("PlotlyChart.*.js")]
    return found[0] if len(found) == 1 and re.fullmatch(r"PlotlyChart\.[\w-]+\.js", found[0]) else None


def preload_html(chunk: str) -> str:
    """The script that starts loading Plotly's chunk as the page opens (hidden by base CSS)."""
    return _PRELOAD % (_PRELOAD_MARK, repr(chunk))


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


def base_css(present: bool) -> str:
    """The CSS every run gets: no stale-element fading, chart rows that wrap when narrow."""
    return _BASE_CSS % (_ROW, _ROW, MIN_CHART_PX_PRESENT if present else MIN_CHART_PX) + _PRELOAD_CSS


def style() -> None:
    """Call once per run: no stale-element fading, chart rows that wrap on narrow screens; in
    presenter mode, no sidebar and larger text. And Plotly's browser side starts loading."""
    on = enabled()
    st.html(base_css(on) + (_CSS if on else ""))
    chunk = plotly_chunk()
    if chunk is not None:
        st.html(preload_html(chunk), unsafe_allow_javascript=True)


def leave_button() -> None:
    if enabled():
        st.button("leave presenter mode", key="present_leave", on_click=_leave, type="tertiary")


def chart(where, fig: go.Figure, key: str, **kwargs):
    """`where.plotly_chart(fig, key=key, ...)`, with projector-sized fonts in presenter mode."""
    if st.session_state.get(STATE_KEY):
        fig.update_layout(font=dict(size=CHART_FONT), title_font=dict(size=TITLE_FONT))
        legend = fig.layout.legend
        if legend.orientation == "h" and legend.yref == "container" and legend.y == 0:
            # The shared legend (style.LEGEND) reserves its own rows below the x-axis title;
            # a taller figure keeps the plot area its size under projector-sized text.
            fig.update_layout(height=(fig.layout.height or 340) + LEGEND_PX)
    return where.plotly_chart(fig, key=key, **kwargs)
