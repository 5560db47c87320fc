"""Figures of the SHIFT page: three models on one chart, the efficiency sweep, Theorem 3."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..runs.format import RunData
from . import style
from .style import MODEL_COLOURS
from .style import layout as _layout


def compare_accuracy_figure(runs: dict[str, RunData], bucket: str, shift_epoch: int | None,
                            marks: dict[str, int] | None = None) -> go.Figure:
    """One IC bucket's accuracy for Single, Looped and SHIFT: train solid, validation dashed;
    the switch and any other marked epochs (SCP's plateau and shift) as vertical lines."""
    fig = go.Figure()
    for label, run in runs.items():
        colour = MODEL_COLOURS.get(run.config.model, "#333")
        fig.add_scatter(x=run.records["epoch"], y=run.records[f"acc_{bucket}"], name=f"{label} train",
                        line=dict(color=colour))
        fig.add_scatter(x=run.records["epoch"], y=run.records[f"val_acc_{bucket}"], name=f"{label} val",
                        line=dict(color=colour, dash="dash", width=1.5))
    if shift_epoch is not None:
        style.vline(fig, x=shift_epoch, line=dict(color=MODEL_COLOURS["shift"], dash="dot"),
                    annotation_text=f"switch at {shift_epoch}")
    for i, (label, epoch) in enumerate((marks or {}).items()):
        # Alternate sides, so that two close marks (SCP's plateau and shift) keep their labels apart.
        style.vline(fig, x=epoch, line=dict(color="#888", dash="dash", width=1), annotation_text=label,
                    annotation_position="bottom left" if i % 2 == 0 else "bottom right")
    return _layout(fig, f"Accuracy on {bucket}-information samples", "epoch", "accuracy")


def sweep_shift_figure(table: pd.DataFrame, scp_epoch: int | None, chosen: int | None) -> go.Figure:
    """Speed-up over pure Looped-Attn and final-accuracy gap against the shift epoch."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=table["shift_epoch"], y=table["speedup"], name="speed-up ×", mode="lines+markers",
                    line=dict(color=MODEL_COLOURS["shift"]))
    # Accuracy differences are in percentage points, not percent of anything.
    fig.add_scatter(x=table["shift_epoch"], y=100 * table["gap_acc_all"], name="final accuracy − pure Looped",
                    mode="lines+markers", line=dict(color="#2a9d8f", dash="dash"), secondary_y=True)
    fig.add_scatter(x=table["shift_epoch"], y=100 * table["gap_acc_high"],
                    name="final high-IC accuracy − pure Looped",
                    mode="lines+markers", line=dict(color="#e76f51", dash="dot"), secondary_y=True)
    style.hline(fig, y=1.0, line=dict(color="#999", width=1))
    # The paper's range is named in the legend: a label on the band ran into the SCP line's label.
    style.vrect(fig, x0=100, x1=150, fillcolor="rgba(123,44,191,0.08)", line_width=0)
    fig.add_scatter(x=[None], y=[None], mode="markers", name="paper's SCP range (100–150)",
                    marker=dict(symbol="square", size=12, color="rgba(123,44,191,0.25)"))
    if scp_epoch is not None:
        style.vline(fig, x=scp_epoch, line=dict(dash="dot", color="#555"), annotation_text=f"SCP {scp_epoch}")
    if chosen is not None:
        style.vline(fig, x=chosen, line=dict(color=MODEL_COLOURS["shift"], width=1), annotation_text="slider",
                    annotation_position="bottom right")
    fig.update_yaxes(title_text="speed-up (× pure Looped)", secondary_y=False)
    # Whole 5-point steps: left to itself the right axis ticked at −19, −13, −6.
    fig.update_yaxes(title_text="accuracy gap (points)", tickformat="+.0f", tickmode="linear", tick0=0, dtick=5,
                     showgrid=False, secondary_y=True)
    return _layout(fig, "SHIFT speed-up and final accuracy by shift epoch", "shift epoch", None,
                   right=60)


def alignment_figure(table: dict[str, np.ndarray]) -> go.Figure:
    fig = go.Figure()
    for name, colour in (("K", "#264653"), ("Q", "#e76f51")):
        fig.add_scatter(x=table["epoch"], y=table[f"cos_{name}"], name=f"cos ∇W_{name}", line=dict(color=colour))
    style.hline(fig, y=0, line=dict(color="#999", width=1))
    fig.update_yaxes(range=[-1.05, 1.05])
    return _layout(fig, "Theorem 3: Single vs Looped gradient cosine", "epoch",
                   "cosine")


def assumption4_figure(table: dict[str, np.ndarray]) -> go.Figure:
    """Top: ‖W − diag W‖₂ / max|diag W| (log; Assumption 4 wants ≪ 1). Bottom: the share of
    negative diagonal entries (a PSD diagonal has none)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    for name, colour in (("K", "#264653"), ("Q", "#e76f51"), ("V", "#2a9d8f")):
        fig.add_scatter(x=table["epoch"], y=table[f"offdiag_ratio_{name}"], name=f"W_{name}",
                        line=dict(color=colour), legendgroup=name, row=1, col=1)
        fig.add_scatter(x=table["epoch"], y=table[f"negative_diag_{name}"], name=f"W_{name}", showlegend=False,
                        line=dict(color=colour), legendgroup=name, row=2, col=1)
    style.hline(fig, y=1.0, line=dict(color="#999", dash="dash"), row=1, col=1)
    fig.update_yaxes(type="log", title_text="‖ε‖₂ / ‖D‖", row=1, col=1)
    fig.update_yaxes(range=[-0.05, 1.05], tickformat=".0%", title_text="diag < 0", row=2, col=1)
    _layout(fig, "Assumption 4: off-diagonals, negative diagonals", "", None, height=380)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    return fig
