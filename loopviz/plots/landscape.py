"""Figures of the Landscape page: the loss on a plane with the paths, sharpness against the
stability thresholds, per-block spectra. Data in, figure out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..landscape import BLOCKS, BlockSpectra, CurvatureSeries
from . import style
from .style import MODEL_COLOURS, TOOLBAR_PX, log_ticks
from .style import layout as _layout

# The loss planes' colour bar: a narrow bar, two-decimal ticks and a two-line title keep it
# within this even at presenter mode's larger chart font.
COLOUR_BAR_PX = 110
BLOCK_COLOURS = {"W_K": "#e76f51", "W_Q": "#f4a261", "W_V": "#2a9d8f", "W_h": "#264653"}


def loss_plane_figure(alpha: np.ndarray, beta: np.ndarray, loss: np.ndarray,
                   paths: dict[str, tuple[str, np.ndarray, np.ndarray]], epoch: int, title: str,
                   cap: float) -> go.Figure:
    """Contours of log10(loss) on the plane; each path (label → (model, [N, 2] coords, epochs))
    drawn as a line from its start (circle) with a marker at `epoch`.

    The colour scale stops at `cap` (the page passes twice the initial loss): the Looped loss
    grows like a high power of the weights away from the run and would wash out the basin.
    """
    z = np.log10(loss)
    top = float(min(z.max(), np.log10(cap)))
    fig = go.Figure(go.Contour(x=alpha, y=beta, z=z, colorscale="Viridis", zmin=float(z.min()), zmax=top,
                               contours=dict(start=float(z.min()), end=top, size=(top - float(z.min())) / 25),
                               colorbar=dict(title="log10<br>loss", len=0.8, thickness=20, tickformat=".2f"),
                               hovertemplate="α %{x:.3g}<br>β %{y:.3g}<br>log10 loss %{z:.4f}<extra></extra>"))
    for label, (model, coords, epochs) in paths.items():
        colour = MODEL_COLOURS.get(model, "#333")
        fig.add_scatter(x=coords[:, 0], y=coords[:, 1], mode="lines", name=label, line=dict(color=colour, width=2),
                        customdata=epochs, hovertemplate=f"{label}<br>epoch %{{customdata}}<extra></extra>")
        at = int(np.clip(np.searchsorted(epochs, epoch, side="right") - 1, 0, len(epochs) - 1))
        fig.add_scatter(x=[coords[at, 0]], y=[coords[at, 1]], mode="markers", showlegend=False,
                        marker=dict(color=colour, size=13, symbol="x", line=dict(color="white", width=1.5)),
                        hovertemplate=f"{label} at epoch {int(epochs[at])}<extra></extra>")
        fig.add_scatter(x=[coords[0, 0]], y=[coords[0, 1]], mode="markers", showlegend=False,
                        marker=dict(color="white", size=8, line=dict(color=colour, width=2)),
                        hovertemplate=f"{label} start<extra></extra>")
    fig.update_xaxes(range=[alpha[0], alpha[-1]])
    fig.update_yaxes(range=[beta[0], beta[-1]])
    fig = _layout(fig, title, "α (along the plane's first direction)", "β", height=470)
    # The colour bar stands in a right margin wide enough for it and, beyond it, the upright
    # toolbar's lane (across the top, the toolbar covered the title of a half-width chart).
    fig.update_layout(hovermode="closest", margin=dict(r=COLOUR_BAR_PX + TOOLBAR_PX))
    return fig


def sharpness_figure(curves: dict[str, tuple[str, np.ndarray, np.ndarray]], threshold: float, threshold_label: str,
                     title: str, y_title: str, epoch: int | None = None) -> go.Figure:
    """Sharpness curves (label → (model, epochs, values)) on a log axis with a stability threshold."""
    fig = go.Figure()
    for label, (model, epochs, values) in curves.items():
        fig.add_scatter(x=epochs, y=values, name=label, line=dict(color=MODEL_COLOURS.get(model, "#333")))
    every = np.concatenate([np.asarray(c[1], float) for c in curves.values()]) if curves else np.array([0.0, 1.0])
    fig.add_scatter(x=[every.min(), every.max()], y=[threshold, threshold], mode="lines", name=threshold_label,
                    line=dict(color="#111", dash="dash"))
    if epoch is not None:
        style.vline(fig, x=epoch, line=dict(color="#777", dash="dot"))
    shown = np.concatenate([np.asarray(c[2], float) for c in curves.values()] + [[threshold]])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    fig.update_yaxes(type="log", **(log_ticks(np.log10(shown.min()), np.log10(shown.max())) if shown.size else {}))
    return _layout(fig, title, "epoch", y_title, height=380)


def block_series_figure(series: CurvatureSeries, label: str, epoch: int | None = None) -> go.Figure:
    """Each block's largest eigenvalue over epochs (log axis), and the coupling share (right axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for block in BLOCKS:
        fig.add_scatter(x=series.epochs, y=np.maximum(series.block_max[block], 1e-12), name=f"λ_max({block})",
                        line=dict(color=BLOCK_COLOURS[block]))
    fig.add_scatter(x=series.epochs, y=series.lambda_max, name="λ_max(H), whole", line=dict(color="#111", dash="dot"))
    fig.add_scatter(x=series.epochs, y=series.coupling_share, name="coupling (right)",
                    line=dict(color="#7b2cbf", dash="dash"), secondary_y=True)
    if epoch is not None:
        style.vline(fig, x=epoch, line=dict(color="#777", dash="dot"))
    fig.update_yaxes(type="log", secondary_y=False, title_text="largest eigenvalue")
    fig.update_yaxes(range=[0, 1], tickmode="linear", dtick=0.2, showgrid=False, secondary_y=True,
                     title_text="‖off-block‖²/‖H‖²")
    return _layout(fig, f"{label}: per-block curvature", "epoch", "largest eigenvalue", height=400,
                   right=60)   # the right axis's ticks and title


def block_spectrum_figure(blocks: BlockSpectra, title: str) -> go.Figure:
    """Every eigenvalue of each diagonal block at one epoch, |λ| on a log axis (λ ≤ 0 hollow;
    |λ| below 1e-12, such as W_h's d exact zeros, drawn at 1e-12)."""
    fig = go.Figure()
    for block in BLOCKS:
        lam = blocks.eigenvalues[block]
        pos = lam > 0
        for mask, name, symbol in ((pos, "λ > 0", "circle"), (~pos, "λ ≤ 0 (|λ| shown)", "circle-open")):
            if mask.any():
                fig.add_scatter(x=[block] * int(mask.sum()), y=np.maximum(np.abs(lam[mask]), 1e-12), mode="markers",
                                name=f"{block} {name}", showlegend=False,
                                marker=dict(color=BLOCK_COLOURS[block], symbol=symbol, size=9))
    fig.update_yaxes(type="log")
    return _layout(fig, title, "block", "|eigenvalue|", height=360)

