"""The look every figure shares: one colour per model and the common layout."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly import shapeannotation

MODEL_COLOURS = {"single": "#457b9d", "looped": "#d62828", "shift": "#7b2cbf"}
MODEL_LABELS = {"single": "Single-Attn", "looped": "Looped-Attn", "shift": "SHIFT"}
MARGIN = dict(l=50, r=20, t=50, b=40)
TOOLBAR_PX = 30   # the vertical Plotly toolbar's lane at the right edge, kept clear of right-hand ticks
# A legend at the figure's bottom edge: Plotly reserves its rows there, and the x-axis
# (automargin) pushes the margin for its ticks and title above them, so a figure drawing it
# sets no bottom margin of its own (a fixed one would only add a gap between the two).
LEGEND = dict(orientation="h", yref="container", y=0, yanchor="bottom")


def layout(fig: go.Figure, title: str, x: str, y: str | None, height: int = 340, right: int = 20) -> go.Figure:
    """Shared look. The title starts at the left and the Plotly toolbar stands vertically at the
    right, in a lane of its own (TOOLBAR_PX beyond `right`, which right-hand ticks may use), so
    a half-width chart's title never runs under the toolbar, nor the toolbar over a right axis. The horizontal legend
    stands at the figure's bottom edge (container pixels): Plotly then reserves its height,
    however many rows it wraps into on a narrow chart, below the x-axis title (which pushes
    the margin itself), so neither lands on the other. `y=None` keeps axis titles set before
    (subplots)."""
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height,
                      margin={**MARGIN, "r": right + TOOLBAR_PX, "b": 0}, modebar=dict(orientation="v"),
                      legend=LEGEND, hovermode="x unified", xaxis_title=x)
    fig.update_xaxes(automargin=True)
    if y is not None:
        fig.update_layout(yaxis_title=y)
    return fig


def two_lines(text: str) -> str:
    """`text` broken at the space nearest its middle: Plotly never wraps a title, so a long one
    is cut at a narrow chart's edge (an 800 px window with the sidebar open)."""
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return text
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:cut] + "<br>" + text[cut + 1:]


def log_axis_label(fig: go.Figure, axis: str, value: float, text: str, **position) -> None:
    """A label for a reference line at `value` on a log axis. Plotly places shapes on a log
    axis by value but annotations by log10(value): add_hline/add_vline's annotation_text
    lands at 10^value (a label for 0.5 near 3), so the label is placed here in log10 units."""
    coordinate = float(np.log10(value))
    if axis == "x":
        fig.add_annotation(x=coordinate, xref="x", yref="paper", text=text, showarrow=False, **position)
    else:
        fig.add_annotation(y=coordinate, yref="y", xref="paper", text=text, showarrow=False, **position)


def log_ticks(lo: float, hi: float) -> dict:
    """Tick settings for a log axis over [10^lo, 10^hi] (log10 units) that name every tick in
    full. Plotly labels the 2× and 5× ticks of an axis spanning a few decades by their digit
    alone ("5, 2, 10k, 5, 2, 1000"), and a tick format alone labels all nine ticks of each
    decade, which crowd. Here: 1-2-5 ticks up to 3 decades, decades beyond; under one decade
    Plotly's own ticks (already full numbers)."""
    if hi - lo < 1:
        return {}
    mantissas = (1, 2, 5) if hi - lo <= 3 else (1,)
    values = [m * 10.0 ** e for e in range(int(np.floor(lo)), int(np.ceil(hi)) + 1) for m in mantissas
              if lo <= np.log10(m * 10.0 ** e) <= hi]
    return dict(tickmode="array", tickvals=values, ticktext=[f"{v:,.10g}" if v >= 1 else f"{v:.10g}" for v in values])


def vline(fig: go.Figure, x, **kwargs) -> go.Figure:
    """fig.add_vline(x, **kwargs), the same shape and annotation (tests/test_plots_layout.py),
    ~10× cheaper on a figure without subplots: Plotly's helper re-validates and copies the
    layout's shapes and annotations several times per line, a quarter of the SHIFT page's
    server time for its ~15 reference lines. With subplots, or row/col, it is Plotly's own."""
    return _spanning(fig, "vline", dict(type="line", x0=x, x1=x, y0=0, y1=1), kwargs)


def hline(fig: go.Figure, y, **kwargs) -> go.Figure:
    """fig.add_hline(y, **kwargs); see vline."""
    return _spanning(fig, "hline", dict(type="line", x0=0, x1=1, y0=y, y1=y), kwargs)


def vrect(fig: go.Figure, x0, x1, **kwargs) -> go.Figure:
    """fig.add_vrect(x0, x1, **kwargs); see vline."""
    return _spanning(fig, "vrect", dict(type="rect", x0=x0, x1=x1, y0=0, y1=1), kwargs)


def _spanning(fig: go.Figure, kind: str, shape_args: dict, kwargs: dict) -> go.Figure:
    """Plotly's _process_multiple_axis_spanning_shapes for one plot: the shape on axes x, y with
    the spanning direction in domain units, its annotation placed by Plotly's own rule
    (plotly.shapeannotation), both appended to the layout at once."""
    if "row" in kwargs or "col" in kwargs or fig._grid_ref is not None:   # subplots: Plotly's way
        position = {"vline": ("x0",), "hline": ("y0",), "vrect": ("x0", "x1")}[kind]
        return getattr(fig, f"add_{kind}")(*(shape_args[p] for p in position), **kwargs)
    shape_kwargs, annotation_kwargs = shapeannotation.split_dict_by_key_prefix(kwargs, "annotation_")
    annotation = shapeannotation.axis_spanning_shape_annotation(None, kind, shape_args, annotation_kwargs)
    span = "yref" if kind in ("vline", "vrect") else "xref"
    shape = go.layout.Shape(**{"xref": "x", "yref": "y", **shape_args, **shape_kwargs})
    shape[span] += " domain"
    fig.layout.shapes += (shape,)
    if annotation is not None:
        note = go.layout.Annotation(annotation, yref=shape_kwargs.get("yref", "y"))
        if note.xref is None:
            note.xref = "x"
        note[span] += " domain"
        fig.layout.annotations += (note,)
    return fig
