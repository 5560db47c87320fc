"""Figures of training runs: accuracy by IC bucket, loss, entropy / MI with phases,
valley condition number, the eigenspectrum through epochs (and its fixed-axes frames for
`python -m loopviz export`), and the seed sweep."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..curvature import PHASE_NAMES, bin_index, log_bin_edges
from ..runs.format import RunData
from . import style
from .style import MODEL_COLOURS
from .style import layout as _layout
from .style import log_axis_label

BUCKET_COLOURS = {"low": "#2a9d8f", "high": "#e76f51", "all": "#264653"}
PHASE_COLOURS = {1: "rgba(231,111,81,0.12)", 2: "rgba(233,196,106,0.18)", 3: "rgba(42,157,143,0.12)"}


def bucket_accuracy_figure(run: RunData, title: str, bayes: dict[str, float] | None = None,
                    marks: dict[str, int] | None = None) -> go.Figure:
    """Train accuracy (solid) and validation accuracy (dashed) per IC bucket, Bayes ceiling dotted."""
    rec = run.records
    fig = go.Figure()
    for bucket, colour in BUCKET_COLOURS.items():
        fig.add_scatter(x=rec["epoch"], y=rec[f"acc_{bucket}"], name=f"train {bucket}", line=dict(color=colour))
        fig.add_scatter(x=rec["epoch"], y=rec[f"val_acc_{bucket}"], name=f"val {bucket}",
                        line=dict(color=colour, dash="dash", width=1.5))
    for bucket, value in (bayes or {}).items():
        if bucket in ("high", "all") and np.isfinite(value):
            # A trace, not an annotated hline: the legend names it, so no label lies over the curves.
            fig.add_scatter(x=[rec["epoch"].iloc[0], rec["epoch"].iloc[-1]], y=[value, value], mode="lines",
                            name=f"Bayes {bucket} {value:.2f}", hoverinfo="skip",
                            line=dict(color=BUCKET_COLOURS[bucket], dash="dot", width=1))
    for label, epoch in (marks or {}).items():
        style.vline(fig, x=epoch, line=dict(color="#555", dash="dot"), annotation_text=label)
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, title, "epoch", "accuracy")


def loss_figure(runs: dict[str, RunData]) -> go.Figure:
    fig = go.Figure()
    for label, run in runs.items():
        colour = MODEL_COLOURS.get(run.config.model, "#333")
        fig.add_scatter(x=run.records["epoch"], y=run.records["loss"], name=f"{label} train", line=dict(color=colour))
        fig.add_scatter(x=run.records["epoch"], y=run.records["val_loss"], name=f"{label} val",
                        line=dict(color=colour, dash="dash"))
    return _layout(fig, "Cross-entropy loss", "epoch", "loss (nats)")


def _phase_spans(epochs: np.ndarray, phases: np.ndarray) -> list[tuple[int, float, float]]:
    spans = []
    start = 0
    for i in range(1, len(phases) + 1):
        if i == len(phases) or phases[i] != phases[start]:
            spans.append((int(phases[start]), float(epochs[start]), float(epochs[i - 1])))
            start = i
    return spans


def entropy_figure(run: RunData, title: str) -> go.Figure:
    """Matrix entropy and mutual information (nats); only significant phases (label > 0) shaded."""
    rec = run.records.dropna(subset=["entropy"])
    fig = go.Figure()
    fig.add_scatter(x=rec["epoch"], y=rec["entropy"], name="entropy E(H)", line=dict(color="#264653"))
    fig.add_scatter(x=rec["epoch"], y=rec["mutual_info"], name="mutual info I(H_s; H_s+1)",
                    line=dict(color="#e9c46a"))
    if len(rec) > 2:
        spans = _phase_spans(rec["epoch"].to_numpy(), rec["phase"].to_numpy().astype(int))
        for i, (phase, lo, hi) in enumerate(s for s in spans if s[0] > 0):
            # Alternate label corners so that the names of short neighbouring phases do not collide.
            style.vrect(fig, x0=lo, x1=hi, fillcolor=PHASE_COLOURS[phase], line_width=0,
                        annotation_text=PHASE_NAMES[phase],
                        annotation_position="top left" if i % 2 == 0 else "bottom left")
    return _layout(fig, title, "epoch", "nats")


def kappa_figure(runs: dict[str, RunData], delta: float) -> go.Figure:
    """Valley condition number κ over epochs (log axis); U-shaped below 1 + δ."""
    fig = go.Figure()
    for label, run in runs.items():
        rec = run.records.dropna(subset=["kappa_valley"])
        fig.add_scatter(x=rec["epoch"], y=rec["kappa_valley"], name=label,
                        line=dict(color=MODEL_COLOURS.get(run.config.model, "#333")),
                        customdata=np.stack([rec["valley_shape"], rec["n_valley"], rec["n_low_curvature"]], -1),
                        hovertemplate="κ %{y:.3g}, %{customdata[0]}-shaped, valley dim %{customdata[1]}, "
                                      "low-curvature %{customdata[2]}")
    style.hline(fig, y=1 + delta, line=dict(dash="dot", color="#888"))
    fig.update_yaxes(type="log")
    log_axis_label(fig, "y", 1 + delta, f"U if κ ≤ 1 + δ = {1 + delta:g}", x=0, xanchor="left",
                   yanchor="bottom", font=dict(color="#555"))
    return _layout(fig, "Valley condition κ = λ_max / λ_min, λ > ε", "epoch", "κ")


def _spectrum_bars(eigenvalues: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(edges) - 1
    idx = bin_index(eigenvalues, edges)
    positive = np.bincount(idx[eigenvalues > 0], minlength=n)
    negative = np.bincount(idx[eigenvalues <= 0], minlength=n)
    return positive, negative


def largest_bin(run: RunData) -> int:
    """The tallest bar any of the run's spectra draws in eigenspectrum_figure (|λ| of either
    sign in one log bin): a scale that holds still while ▶ play moves through the epochs."""
    if not len(run.spectrum_epochs):
        return 0
    config = run.config
    edges = log_bin_edges(config.entropy_bins, config.entropy_min, config.entropy_max)
    n = len(edges) - 1
    rows = bin_index(run.eigenvalues, edges) + n * np.arange(len(run.eigenvalues))[:, None]
    return int(np.bincount(rows.ravel(), minlength=n * len(run.eigenvalues)).max())


def eigenspectrum_figure(run: RunData, epoch: int, eps: float, tau: float, y_max: int | None = None) -> go.Figure:
    """Histogram of |λ| on log bins for the spectrum at (or last before) `epoch`, negatives
    stacked; the river threshold ε and Assumption 1's τ marked. The page's epoch cursor
    (and its ▶ play) picks the epoch, so every panel on the page shows the same one.
    y_max: a fixed count axis 0..y_max (largest_bin over the runs shown side by side), so
    that frames and panels compare at one scale; None lets Plotly fit this spectrum."""
    config = run.config
    edges = log_bin_edges(config.entropy_bins, config.entropy_min, config.entropy_max)
    centres = np.sqrt(edges[:-1] * edges[1:])
    widths = edges[1:] - edges[:-1]
    epochs = run.spectrum_epochs
    index = max(int(np.searchsorted(epochs, epoch, side="right")) - 1, 0)
    pos, neg = _spectrum_bars(run.eigenvalues[index], edges)
    fig = go.Figure([go.Bar(x=centres, y=pos, width=widths, name="λ > 0", marker_color="#264653"),
                     go.Bar(x=centres, y=neg, base=pos, width=widths, name="λ ≤ 0 (|λ| shown)",
                            marker_color="#e76f51")])
    style.vline(fig, x=eps, line=dict(dash="dash", color="#2a9d8f"))
    style.vline(fig, x=tau, line=dict(dash="dot", color="#7b2cbf"))
    log_axis_label(fig, "x", eps, f"river ε = {eps:g}", y=1, yanchor="bottom", xanchor="right",
                   font=dict(color="#2a9d8f"))
    log_axis_label(fig, "x", tau, f"τ = {tau:g}", y=1, yanchor="bottom", xanchor="left", font=dict(color="#7b2cbf"))
    # Stacked by hand (base=pos), not barmode="stack": on a log axis Plotly groups bars to stack
    # by their linear x, so all the tiny-|λ| bins (1e-8, 1.5e-7, …) stacked into one floating pile.
    fig.update_layout(barmode="overlay", xaxis_type="log")
    _layout(fig, f"{run.config.model} eigenspectrum at epoch {int(epochs[index])} (P = {run.eigenvalues.shape[1]})",
            "|λ| (log)", "eigenvalues in bin", height=400)
    fig.update_layout(margin=dict(t=80), hovermode="closest")
    if y_max:
        fig.update_yaxes(range=[0, 1.05 * y_max])
    return fig


def eigenspectrum_frame(eigenvalues: dict[str, tuple[str, np.ndarray]], edges: np.ndarray, y_max: float,
                   epoch: int, eps: float, tau: float) -> go.Figure:
    """One animation frame: histograms of |λ| on fixed log bins for each run (label → (model,
    eigenvalues)), with fixed axes so that frames can be played one after another."""
    centres = np.sqrt(edges[:-1] * edges[1:])
    fig = go.Figure()
    for label, (model, lam) in eigenvalues.items():
        counts, _ = np.histogram(np.clip(np.abs(lam), edges[0], edges[-1]), bins=edges)
        fig.add_bar(x=centres, y=counts, width=edges[1:] - edges[:-1], name=label, opacity=0.7,
                    marker_color=MODEL_COLOURS.get(model, "#333"))
    style.vline(fig, x=eps, line=dict(dash="dash", color="#2a9d8f"), annotation_text=f"ε = {eps:g}")
    style.vline(fig, x=tau, line=dict(dash="dot", color="#7b2cbf"), annotation_text=f"τ = {tau:g}",
                annotation_position="bottom right")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(type="log", range=[np.log10(edges[0]), np.log10(edges[-1])])
    fig.update_yaxes(range=[0, y_max])
    fig = _layout(fig, f"Hessian eigenspectrum, epoch {epoch}", "|λ| (log bins)", "eigenvalues in bin", height=420)
    fig.update_layout(legend=dict(orientation="h", y=1.0, x=1.0, xanchor="right", yanchor="bottom"))
    return fig


def sweep_figure(table: pd.DataFrame, marked_seed: int | None) -> go.Figure:
    """Looped − Single gap in high-IC accuracy per seed: training against validation."""
    fig = go.Figure()
    fig.add_scatter(x=table["gap_acc_high"], y=table["gap_val_acc_high"], mode="markers", name="seeds",
                    marker=dict(size=9, color="#457b9d"), text=[f"seed {s}" for s in table["seed"]],
                    customdata=table["seed"].to_numpy(),  # a click on a point can load that seed
                    hovertemplate="%{text}: train gap %{x:+.3f}, validation gap %{y:+.3f}")
    if marked_seed is not None and marked_seed in set(table["seed"]):
        row = table[table["seed"] == marked_seed].iloc[0]
        fig.add_scatter(x=[row["gap_acc_high"]], y=[row["gap_val_acc_high"]], mode="markers", name="default run",
                        marker=dict(size=16, symbol="star", color="#d62828"))
    style.vline(fig, x=0, line=dict(color="#999", width=1))
    style.hline(fig, y=0, line=dict(color="#999", width=1))
    return _layout(fig, "Looped − Single high-IC gap per seed", "training gap", "validation gap")


def gap_histogram(table: pd.DataFrame) -> go.Figure:
    """The gap over seeds. No 'paper' line: the paper reports no Looped − Single gap of this kind."""
    fig = go.Figure(go.Histogram(x=table["gap_acc_high"], nbinsx=30, marker_color="#457b9d", name="seeds"))
    style.vline(fig, x=0, line=dict(color="#999", width=1))
    return _layout(fig, "Distribution of the high-IC training gap over seeds", "Looped − Single", "seeds")


def reach_figure(verdicts: list, paper_epochs: int | None = None) -> go.Figure:
    """Time to reach: for each accuracy level, the first epoch each model's smoothed curve reaches it
    (verdicts.compare's levels and epochs); a level a model never reaches has no point."""
    fig = go.Figure()
    for (what, v), dash in zip(verdicts, ("solid", "dash")):
        for name, epochs, colour in (("Single-Attn", v.reach_single, MODEL_COLOURS["single"]),
                                     ("Looped-Attn", v.reach_looped, MODEL_COLOURS["looped"])):
            fig.add_scatter(x=v.levels, y=epochs, name=f"{name}, {what}", mode="lines+markers",
                            line=dict(color=colour, dash=dash))
    if paper_epochs is not None:
        style.hline(fig, y=paper_epochs, line=dict(color="#888", dash="dot"), annotation_text=f"paper's {paper_epochs}")
    return _layout(fig, "Time to reach each accuracy level (lower = earlier)", "accuracy level", "first epoch")
