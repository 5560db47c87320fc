"""Figures of the atlas: a map of shares over two grid axes, and one cell's seeds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import style
from .style import TOOLBAR_PX, two_lines

# A square holds three lines (count, share, 95 % interval) at a font of its own: squares are
# sized in pixels, so they do not grow with a chart's font. Presenter mode's (the chart font 17)
# are larger, and each row of the map is taller than a square, so squares never touch.
CELL_PX, CELL_FONT = 70, 12   # three columns stay apart in an 800 px window (a ~240 px plot)
CELL_PX_PRESENT, CELL_FONT_PRESENT = 112, 17
ROW_GAP_PX = 30
COLOUR_BAR_PX = 100   # the narrow bar with its three ticks and three-line title, at either font
MAP_MARGINS_PX, MAP_MARGINS_PX_PRESENT = 150, 230   # two-line title, ticks and axis title, per font
DARK_SHARE = 0.6   # above this share the 'Blues' square is too dark for black text


def _ticks(values) -> list[str]:
    return [f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v) for v in values]


def share_map(cells: pd.DataFrame, x: str, y: str, what: str, present: bool = False) -> go.Figure:
    """Share of seeds in which Looped-Attn is ahead, one square per (x, y) cell: its count,
    share and 95 % interval on the square, both models' shares and the test on hover. Squares
    are scatter markers, not a heatmap trace, so that a click selects a cell (Streamlit selects
    points). `present`: presenter mode's larger squares and text."""
    cell_px, font = (CELL_PX_PRESENT, CELL_FONT_PRESENT) if present else (CELL_PX, CELL_FONT)
    xs, ys = sorted(cells[x].unique()), sorted(cells[y].unique())
    xi = cells[x].map({v: i for i, v in enumerate(xs)})
    yi = cells[y].map({v: i for i, v in enumerate(ys)})
    hover = [
        f"{x} = {c[x]}, {y} = {c[y]}<br>Looped ahead in {c['wins']}/{c['n']} = {c['share_win']:.0%} "
        f"(95 % CI {c['win_low']:.0%}–{c['win_high']:.0%})<br>Single ahead in {c['losses']}/{c['n']} = "
        f"{c['share_loss']:.0%} ({c['loss_low']:.0%}–{c['loss_high']:.0%})<br>ties {c['ties']}; sign test "
        f"p = {c['p_value']:.2g}, q = {c['q_value']:.2g}: {c['verdict']}"
        for _, c in cells.iterrows()]
    # The share and its interval on the square itself, where the eye lands (not only on hover).
    text = [f"{c['wins']}/{c['n']}" + ("*" if c["verdict"] == "looped" else "†" if c["verdict"] == "single" else "")
            + f"<br>{c['share_win'] * 100:.0f} %<br>CI {c['win_low'] * 100:.0f}–{c['win_high'] * 100:.0f} %"
            for _, c in cells.iterrows()]
    fig = go.Figure(go.Scatter(
        x=xi, y=yi, mode="markers+text", text=text, textfont={"size": font, "color": [  # white on the darker blues
            "white" if v > DARK_SHARE else "black" for v in cells["share_win"]]},
        marker={"symbol": "square", "size": cell_px, "color": cells["share_win"], "cmin": 0, "cmax": 1,
                "colorscale": "Blues",
                "colorbar": {"title": "share<br>Looped<br>ahead", "thickness": 20, "tickvals": [0, 0.5, 1]},
                "line": {"color": ["crimson" if v == "single" else "black" if v == "looped" else "lightgrey"
                                   for v in cells["verdict"]], "width": 3}},
        customdata=np.stack([cells[x].astype(str), cells[y].astype(str)], axis=-1),
        hovertext=hover, hoverinfo="text", name="cells"))
    # Two lines (Plotly's default top margin holds them), left; the toolbar upright at the
    # right, beyond the colour bar (a wider right margin; the bar's narrow title keeps it within
    # that margin at presenter mode's larger font).
    fig.update_layout(title=dict(text=two_lines(f"Share of seeds in which Looped-Attn is {what}"), x=0, xanchor="left"),
                      modebar=dict(orientation="v"), margin=dict(l=70, r=COLOUR_BAR_PX + TOOLBAR_PX),
                      xaxis={"title": x, "tickvals": list(range(len(xs))), "ticktext": _ticks(xs),
                             "range": [-0.6, len(xs) - 0.4]},
                      yaxis={"title": y, "tickvals": list(range(len(ys))), "ticktext": _ticks(ys),
                             "range": [-0.6, len(ys) - 0.4]},
                      height=(cell_px + ROW_GAP_PX) * len(ys) + (MAP_MARGINS_PX_PRESENT if present else MAP_MARGINS_PX),
                      clickmode="event+select", dragmode=False)
    return fig


def cell_seeds(rows: pd.DataFrame, difference: pd.Series, label: str) -> go.Figure:
    """Each seed of one cell: the per-seed Looped − Single quantity behind the share;
    customdata carries the row index so a click can open that run."""
    fig = go.Figure(go.Scatter(
        x=difference, y=[f"{c}" for c in rows["config"]], mode="markers",
        marker={"size": 11, "color": np.sign(difference), "cmin": -1, "cmax": 1,
                "colorscale": [[0, "crimson"], [0.5, "grey"], [1, "royalblue"]]},
        customdata=rows.index.to_numpy(), name="seeds",
        hovertext=[f"seed {s}: {v:+.4g}" for s, v in zip(rows["seed"], difference)], hoverinfo="text"))
    style.vline(fig, x=0, line_dash="dot", line_color="grey")
    fig.update_layout(title="This cell's seeds (click one to open it in the explorer)", xaxis_title=label,
                      yaxis_title="configuration", height=max(260, 40 * rows["config"].nunique() + 160),
                      clickmode="event+select")
    return fig
