"""Figures of length generalisation (paper Sec. 4.4, App. E.1.3): the IC distributions per
test length against the training threshold (Figure 7), and accuracy against length per
model (Figure 9). Tables and arrays in, plotly figures out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from . import style
from .style import MARGIN as _MARGIN
from .style import LEGEND, MODEL_COLOURS, MODEL_LABELS, TOOLBAR_PX



def ic_distribution_figure(test_ic: dict[int, np.ndarray], train_ic: np.ndarray, threshold: float,
                           paper_threshold: float | None = None) -> go.Figure:
    """Figure 7: density of IC (nats) per test length, the training draw's beside them, and
    the 'simple' threshold (max training IC); sequences left of the line count as simple.
    Our label sits left of our line and the paper's right of its line, so they never overlap."""
    fig = go.Figure()
    shades = plotly.colors.sample_colorscale("Viridis", np.linspace(0.1, 0.85, max(len(test_ic), 1)))
    # One shared bin width, so the densities of different lengths compare by area.
    everything = np.concatenate([train_ic, *test_ic.values()])
    size = max(float(np.ptp(everything)) / 60, 1e-6)
    bins = dict(start=float(everything.min()), end=float(everything.max()) + size, size=size)
    fig.add_histogram(x=train_ic.tolist(), name="training (L = 4)", histnorm="probability density",
                      xbins=bins, marker_color="#888888", opacity=0.55)
    for (length, ic), colour in zip(sorted(test_ic.items()), shades):
        fig.add_histogram(x=ic.tolist(), name=f"L = {length}", histnorm="probability density", xbins=bins,
                          marker_color=colour, opacity=0.55)
    style.vline(fig, x=threshold, line=dict(color="#d62828", dash="dash"),
                annotation_text=f"max training IC {threshold:.2f}", annotation_position="top left")
    if paper_threshold is not None:
        style.vline(fig, x=paper_threshold, line=dict(color="#555555", dash="dot"),
                    annotation_text=f"paper {paper_threshold:.2f}", annotation_position="top right")
    fig.update_layout(barmode="overlay", height=380,
                      title=dict(text="IC distributions of the test sets (Figure 7)", x=0, xanchor="left"),
                      modebar=dict(orientation="v"),
                      margin=dict(_MARGIN, r=_MARGIN["r"] + TOOLBAR_PX, b=0), legend=LEGEND,
                      xaxis_title="information content −ln P(X) (nats)", xaxis_automargin=True, yaxis_title="density")
    return fig


def accuracy_vs_length_figure(table: pd.DataFrame) -> go.Figure:
    """Figure 9: total (solid) and simple-sequence (dashed) accuracy against length per model,
    the Bayes rule's total accuracy dotted; each model's training-set accuracy (L = 4) as a
    lone diamond, since it is measured on the training draw, not a fresh test set."""
    fig = go.Figure()
    test = table[table["data"] == "test"].sort_values("length")
    train = table[table["data"] == "train"]
    for model, rows in test.groupby("model", sort=False):
        colour, label = MODEL_COLOURS.get(model, "#333333"), MODEL_LABELS.get(model, model)
        fig.add_scatter(x=rows["length"].tolist(), y=rows["acc_total"].tolist(), name=f"{label} total",
                        mode="lines+markers", line=dict(color=colour))
        fig.add_scatter(x=rows["length"].tolist(), y=rows["acc_simple"].tolist(), name=f"{label} simple",
                        mode="lines+markers", line=dict(color=colour, dash="dash"))
    for _, row in train.iterrows():
        fig.add_scatter(x=[row["length"]], y=[row["acc_total"]], mode="markers", showlegend=False,
                        name=f"{MODEL_LABELS.get(row['model'], row['model'])} training set",
                        marker=dict(symbol="diamond", size=10, color=MODEL_COLOURS.get(row["model"], "#333333")))
    bayes = test.drop_duplicates("length")
    fig.add_scatter(x=bayes["length"].tolist(), y=bayes["bayes_total"].tolist(), name="Bayes rule total",
                    mode="lines+markers", line=dict(color="#2a9d8f", dash="dot"))
    if "chance" in table.columns and len(table):
        chance = float(table["chance"].iloc[0])
        style.hline(fig, y=chance, line=dict(color="#888888", dash="dash", width=1),
                    annotation_text=f"chance {chance:.2f}")
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(title=dict(text="Accuracy against sequence length (Figure 9)", x=0, xanchor="left"),
                      height=380, modebar=dict(orientation="v"),
                      margin=dict(_MARGIN, r=_MARGIN["r"] + TOOLBAR_PX, b=0),   # the toolbar's lane
                      legend=LEGEND, hovermode="x unified",
                      xaxis_title="sequence length L (◆ = training set, L = 4)", xaxis_automargin=True,
                      yaxis_title="accuracy")
    return fig
