"""Figures of the algorithmic-task page (paper Fig. 14 a-e, Fig. 11): data in, figure out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import style
from .style import MODEL_COLOURS, log_ticks
from .style import MODEL_LABELS as LABELS  # the Algorithmic tasks page reads plots.LABELS
from .style import layout as _layout



def accuracy_figure(records: dict[str, pd.DataFrame], column: str, title: str, shift_step: int | None) -> go.Figure:
    """`column` (train_acc or val_acc) against steps for each model; SHIFT's switch dotted."""
    fig = go.Figure()
    for model, rec in records.items():
        fig.add_scatter(x=rec["step"], y=rec[column], name=LABELS[model], line=dict(color=MODEL_COLOURS[model]))
    if shift_step is not None:
        # Its label at the foot of the line: accuracies near 1 ran through it at the top.
        style.vline(fig, x=shift_step, line=dict(color=MODEL_COLOURS["shift"], dash="dot"),
                    annotation_text=f"switch at {shift_step}", annotation_position="bottom right")
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, title, "step", "exact-match accuracy")


def length_figure(tables: dict[str, pd.DataFrame], column: str, train_range: tuple[int, int],
                  title: str) -> go.Figure:
    """Accuracy against test length (Fig. 14 c): 95 % intervals on the inference rule's
    accuracy, the trained lengths shaded, the best constant answer dotted."""
    fig = go.Figure()
    style.vrect(fig, x0=train_range[0] - 0.5, x1=train_range[1] + 0.5, fillcolor="rgba(0,0,0,0.06)", line_width=0,
                annotation_text="trained lengths", annotation_position="top left")
    for model, table in tables.items():
        error = None
        if column == "acc":
            error = dict(type="data", symmetric=False, array=table["hi"] - table["acc"],
                         arrayminus=table["acc"] - table["lo"])
        fig.add_scatter(x=table["length"], y=table[column], name=LABELS[model], mode="lines+markers",
                        error_y=error, line=dict(color=MODEL_COLOURS[model]))
    any_table = next(iter(tables.values()), None)
    if any_table is not None and np.isfinite(any_table["chance"]).any():
        fig.add_scatter(x=any_table["length"], y=any_table["chance"], name="best constant answer",
                        mode="lines", line=dict(color="#888", dash="dot"))
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, title, "test length n", "exact-match accuracy")


def loops_figure(tables: dict[str, pd.DataFrame]) -> go.Figure:
    """Loops the adaptive rule chose per test length, against the training rule T = n."""
    fig = go.Figure()
    lengths = next(iter(tables.values()))["length"] if tables else pd.Series(dtype=float)
    fig.add_scatter(x=lengths, y=lengths, name="T = n (training rule)", mode="lines",
                    line=dict(color="#888", dash="dot"))
    for model, table in tables.items():
        fig.add_scatter(x=table["length"], y=table["loops"], name=LABELS[model], mode="lines+markers",
                        line=dict(color=MODEL_COLOURS[model]))
    return _layout(fig, "Loops chosen at inference", "test length n", "loops")


def curvature_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], shift_step: int | None) -> go.Figure:
    """The largest Hessian eigenvalue (Lanczos) at the checkpoints, per model; the k-th
    largest as thinner lines."""
    fig = go.Figure()
    for model, (steps, top) in curves.items():
        for i in range(top.shape[1] if top.ndim == 2 else 0):
            fig.add_scatter(x=steps, y=top[:, i], mode="lines+markers", name=f"{LABELS[model]} λ{i + 1}",
                            showlegend=i == 0, legendgroup=model,
                            line=dict(color=MODEL_COLOURS[model], width=2.5 if i == 0 else 1))
    if shift_step is not None:
        style.vline(fig, x=shift_step, line=dict(color=MODEL_COLOURS["shift"], dash="dot"))
    shown = np.concatenate([np.ravel(top) for _, top in curves.values()] + [np.empty(0)])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    fig.update_yaxes(type="log", **(log_ticks(np.log10(shown.min()), np.log10(shown.max())) if shown.size else {}))
    return _layout(fig, "Top Hessian eigenvalues of the training loss", "step", "eigenvalue")


def timing_figure(saving: dict[str, float]) -> go.Figure:
    """Training seconds: pure Looped against SHIFT split into Stage I and Stage II (Fig. 11)."""
    fig = go.Figure()
    stage1 = saving["stage1_seconds"]
    fig.add_bar(y=["SHIFT", "Looped-Attn"], x=[stage1, 0], name="Stage I (Single)", orientation="h",
                marker_color=MODEL_COLOURS["single"])
    fig.add_bar(y=["SHIFT", "Looped-Attn"], x=[saving["shift_seconds"] - stage1, saving["looped_seconds"]],
                name="looped training", orientation="h", marker_color=MODEL_COLOURS["looped"])
    fig.update_layout(barmode="stack")
    return _layout(fig, "Training time", "seconds", "", height=240)
