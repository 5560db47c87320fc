"""Figures for the river-valley page (Sec. 4.3, App. F): arrays in, plotly figures out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

U_COLOR, V_COLOR = "#1f77b4", "#d62728"
_HOP_COLOR, _CALM_COLOR, _WILD_COLOR = "#ff7f0e", "#7f7f7f", "#000000"
_MARGIN = dict(l=50, r=20, t=50, b=40)

# Frames of the animation: every step first (hops alternate sign each step, so a
# stride would alias them away), then log-spaced out to K.
_EVERY_STEP_FRAMES = 40
_LATER_FRAMES = 40
# Points kept in a drawn trail; long runs are thinned past the first steps.
_TRAIL_POINTS = 400


def finite_range(*arrays: np.ndarray, pad: float = 0.05) -> list[float]:
    """[lo, hi] over the finite entries of all arrays, padded; [-1, 1] when none are finite."""
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [-1.0, 1.0]
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else max(abs(hi), 1e-12)
    return [lo - pad * span, hi + pad * span]


def log_range(*arrays: np.ndarray, pad: float = 0.3) -> list[float] | None:
    """[log10 lo − pad, log10 hi + pad] over the positive finite entries; None when there are none."""
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return None
    return [float(np.log10(values.min())) - pad, float(np.log10(values.max())) + pad]


def _clean(a: np.ndarray) -> np.ndarray:
    """inf → nan: JSON has no infinity, and a gap in a line is the honest picture of a blow-up."""
    return np.where(np.isfinite(a), a, np.nan)


def frame_steps(steps: int) -> np.ndarray:
    """The steps shown as animation frames."""
    early = np.arange(min(steps, _EVERY_STEP_FRAMES) + 1)
    late = np.geomspace(max(early[-1], 1), max(steps, 1), _LATER_FRAMES).round().astype(int)
    return np.unique(np.concatenate([early, late[late <= steps]]))


def _trail_steps(steps: int) -> np.ndarray:
    head = np.arange(min(steps, _TRAIL_POINTS // 2) + 1)
    tail = np.linspace(head[-1], steps, _TRAIL_POINTS // 2).round().astype(int)
    return np.unique(np.concatenate([head, tail]))


def path_figure(river: np.ndarray, valley: np.ndarray, grid_river: np.ndarray,
                grid_valley: np.ndarray, grid_loss: np.ndarray, *, title: str, color: str,
                x_range: list[float], y_range: list[float]) -> go.Figure:
    """Animated GD path: river progress (x) against one valley coordinate (y) over loss contours.

    `river`, `valley`: per-step coordinates [K+1]; `grid_loss` [len(grid_valley), len(grid_river)].
    """
    river, valley = _clean(river), _clean(valley)
    trail = _trail_steps(river.size - 1)
    frames_at = frame_steps(river.size - 1)

    def trail_to(k: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.append(trail[trail < k], k)
        return river[idx], valley[idx]

    x0, y0 = trail_to(0)
    fig = go.Figure(
        data=[
            go.Contour(x=grid_river, y=grid_valley, z=grid_loss, colorscale="Blues", reversescale=True,
                       showscale=False, ncontours=25, line=dict(width=0.5), hoverinfo="skip"),
            go.Scatter(x=river[trail], y=valley[trail], mode="lines", hoverinfo="skip",
                       line=dict(color="white", width=1)),
            go.Scatter(x=x0, y=y0, mode="lines+markers", line=dict(color=color, width=1.5),
                       marker=dict(size=3)),
            go.Scatter(x=x0[-1:], y=y0[-1:], mode="markers",
                       marker=dict(color=color, size=11, line=dict(color="white", width=1.5))),
        ],
        # Frames touch only the trail and the marker, so the contour is drawn once.
        frames=[go.Frame(name=str(k), traces=[2, 3],
                         data=[go.Scatter(x=tx, y=ty), go.Scatter(x=tx[-1:], y=ty[-1:])])
                for k in frames_at for tx, ty in [trail_to(int(k))]],
    )
    still = dict(frame=dict(duration=0, redraw=False), mode="immediate")
    play = dict(frame=dict(duration=70, redraw=False), transition=dict(duration=0),
                fromcurrent=True, mode="immediate")
    fig.update_layout(
        title=title, margin=dict(_MARGIN, b=130), height=480, showlegend=False,
        xaxis=dict(title="river progress ĥ_Rᵀ(θ_R,k − θ_R,0)", range=x_range),
        yaxis=dict(title="valley coordinate v_iᵀθ_V,k", range=y_range),
        updatemenus=[dict(type="buttons", x=0.0, y=-0.3, xanchor="left", yanchor="top",
                          direction="left", showactive=False,
                          buttons=[dict(label="▶ play", method="animate", args=[None, play]),
                                   dict(label="❚❚", method="animate", args=[[None], still])])],
        sliders=[dict(x=0.22, len=0.78, y=-0.24, yanchor="top", active=0,
                      currentvalue=dict(prefix="step k = "),
                      steps=[dict(label=str(k), method="animate", args=[[str(k)], still])
                             for k in frames_at])],
    )
    return fig


def surface_figure(river: np.ndarray, valley: np.ndarray, loss_on_path: np.ndarray,
                   grid_river: np.ndarray, grid_valley: np.ndarray, grid_loss: np.ndarray, *,
                   title: str, color: str) -> go.Figure:
    """The loss slice as a 3D surface with the path drawn on it (heights from the same slice)."""
    idx = _trail_steps(river.size - 1)
    fig = go.Figure([
        go.Surface(x=grid_river, y=grid_valley, z=grid_loss, colorscale="Blues", reversescale=True,
                   showscale=False, opacity=0.85, hoverinfo="skip"),
        go.Scatter3d(x=_clean(river[idx]), y=_clean(valley[idx]), z=_clean(loss_on_path[idx]),
                     mode="lines+markers", line=dict(color=color, width=4), marker=dict(size=2)),
    ])
    fig.update_layout(title=title, height=460, margin=dict(l=0, r=0, t=40, b=0), showlegend=False,
                      scene=dict(xaxis_title="river", yaxis_title="valley v_i", zaxis_title="loss"))
    return fig


def progress_loss_figure(steps: np.ndarray, progress: dict[str, np.ndarray],
                         loss: dict[str, np.ndarray]) -> go.Figure:
    """River progress and loss over steps for both valleys, and the loss over the later half zoomed.

    The valleys' own descent dwarfs the river's share of the loss; the zoomed panel is
    where Corollary 2's comparison is visible.
    """
    half = steps.size // 2
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=(
        "river progress", "loss L(θ_k)", f"loss, steps {int(steps[half])}–{int(steps[-1])}"))
    for name, color in (("U", U_COLOR), ("V", V_COLOR)):
        common = dict(line=dict(color=color), legendgroup=name)
        fig.add_trace(go.Scatter(x=steps, y=_clean(progress[name]), name=f"{name} valley", **common), 1, 1)
        fig.add_trace(go.Scatter(x=steps, y=_clean(loss[name]), showlegend=False, **common), 1, 2)
        fig.add_trace(go.Scatter(x=steps[half:], y=_clean(loss[name][half:]), showlegend=False,
                                 **common), 1, 3)
    fig.update_xaxes(title_text="step k")
    fig.update_layout(height=340, margin=_MARGIN, legend=dict(orientation="h", y=1.18, x=0))
    return fig


def force_figure(steps: np.ndarray, force: np.ndarray, unforced: np.ndarray, bound: float, *,
                 title: str, color: str, y_range: list[float] | None) -> go.Figure:
    """‖C_k‖ (the run) and ‖Ĉ_k‖ (unforced part, eq. 6) against Theorem 1's 𝒞, log scale.

    `force`, `unforced`: the norms per step [K+1]; `y_range` in log10 units.
    """
    k = steps[1:]
    fig = go.Figure([
        go.Scatter(x=k, y=_clean(force[1:]), name="‖C_k‖ (run)", line=dict(color=color)),
        go.Scatter(x=k, y=_clean(unforced[1:]), name="‖Ĉ_k‖ (unforced, Thm 1)",
                   line=dict(color=color, dash="dash")),
        go.Scatter(x=[k[0], k[-1]], y=[bound, bound], name="𝒞 (bound)", mode="lines",
                   line=dict(color="black", dash="dot")),
    ])
    fig.update_layout(title=title, height=320, margin=_MARGIN,
                      legend=dict(orientation="h", y=-0.25, x=0),
                      xaxis=dict(title="step k"),
                      yaxis=dict(title="force norm", type="log", range=y_range))
    return fig


def spectrum_figure(eigenvalues: np.ndarray, *, tau: float, eta: float, title: str) -> go.Figure:
    """Valley eigenvalues, largest first, coloured by GD regime, with τ, 1/η and 2/η marked.

    1/η < λ < 2/η is valley hopping (ρ < 0); λ ≥ 2/η diverges (|ρ| ≥ 1).
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=float))[::-1]
    regime = np.where(eta * lam >= 2, _WILD_COLOR, np.where(eta * lam > 1, _HOP_COLOR, _CALM_COLOR))
    fig = go.Figure(go.Bar(x=np.arange(1, lam.size + 1), y=lam, marker_color=regime,
                           hovertemplate="λ_%{x} = %{y:.4g}<extra></extra>"))
    for y, label, dash in ((tau, "τ", "dash"), (1 / eta, "1/η: hopping above", "dot"),
                           (2 / eta, "2/η: diverges above", "dashdot")):
        fig.add_hline(y=y, line=dict(dash=dash, width=1), annotation_text=label,
                      annotation_position="top right")
    fig.update_layout(title=title, height=300, margin=_MARGIN, bargap=0.15,
                      xaxis=dict(title="i (largest first)"),
                      yaxis=dict(title="λ_i", type="log"))
    return fig
