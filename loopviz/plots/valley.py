"""Figures for the river-valley page (Sec. 4.3, App. F): arrays in, plotly figures out.

Every slider move rebuilds every figure, and plotly's validation is the dominant cost:
it walks lists element by element but pays a fixed toll per array. So big static data
(contours, whole curves) goes in as arrays, the many small animation frames as lists,
and long runs are thinned: every step while valley hopping can still show, then evenly
spaced.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import MARGIN as _MARGIN
from .style import LEGEND, MODEL_COLOURS, TOOLBAR_PX, log_ticks
from .style import layout as _layout

U_COLOR, V_COLOR = "#1f77b4", "#d62728"
# The exported animation draws U and V in the model colours of the runs they stand for.
FRAME_COLOURS = {"U": MODEL_COLOURS["single"], "V": MODEL_COLOURS["looped"]}
_HOP_COLOR, _CALM_COLOR, _WILD_COLOR = "#ff7f0e", "#7f7f7f", "#000000"

# Hops flip sign every step, so any stride would alias them away: the first steps are
# drawn one by one, later ones thinned.
_EVERY_STEP = 150
_THINNED = 250
# Animation: one frame per step for the first steps, then log-spaced out to K; each
# frame redraws only the marker and a short tail behind it.
_EVERY_STEP_FRAMES = 24
_LATER_FRAMES = 16
_TAIL = 20
# Level-set shades, valley floor first.
_SHADES = 3
PLAY_BUTTONS_PX = 125  # "▶ play" and "❚❚" at 12 px with their padding are ~105 px wide
_SHADE_COLORS = ("rgb(8,48,107)", "rgb(66,146,198)", "rgb(198,219,239)")


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
    """inf → nan: a gap in the line is the honest picture of a blow-up (JSON has no infinity)."""
    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, np.nan)


def _small(a: np.ndarray) -> list:
    """`_clean` as a list, for the short arrays of animation frames."""
    return _clean(a).tolist()


def shown_steps(first: int, last: int) -> np.ndarray:
    """The steps drawn between `first` and `last`: each of the first _EVERY_STEP, then thinned."""
    head = np.arange(first, min(last, first + _EVERY_STEP) + 1)
    tail = np.linspace(head[-1], last, _THINNED).round().astype(int)
    return np.unique(np.concatenate([head, tail]))


def frame_steps(steps: int) -> np.ndarray:
    """The steps shown as animation frames."""
    early = np.arange(min(steps, _EVERY_STEP_FRAMES) + 1)
    late = np.geomspace(max(early[-1], 1), max(steps, 1), _LATER_FRAMES).round().astype(int)
    return np.unique(np.concatenate([early, late[late <= steps]]))


def path_figure(river: np.ndarray, valley: np.ndarray, level_river: np.ndarray,
                level_lower: np.ndarray, level_upper: np.ndarray, *, title: str, color: str,
                x_range: list[float], y_range: list[float]) -> go.Figure:
    """Animated GD path: river progress (x) against one valley coordinate (y) over level sets.

    `river`, `valley`: per-step coordinates [K+1]. `level_lower`, `level_upper`
    [n_levels, len(level_river)]: the two branches of each level set of the loss slice,
    lowest level first. The whole path is drawn faintly; ▶ moves a marker with a short
    tail along it.
    """
    river, valley = np.asarray(river, dtype=float), np.asarray(valley, dtype=float)
    drawn = shown_steps(0, river.size - 1)
    frames_at = frame_steps(river.size - 1)

    def tail_to(k: int) -> tuple[list, list]:
        idx = np.append(drawn[drawn < k][-_TAIL:], k)
        return _small(river[idx]), _small(valley[idx])

    # Level sets as plain lines, not go.Contour: plotly.js drops contour traces as soon
    # as an animation frame plays (plotly.js#4491), lines it leaves alone. Three shades
    # (floor dark, walls pale) in three traces: a trace per level costs a validation each.
    def branches(tier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both branches of each level in `tier`, one polyline with nan breaks."""
        pieces = [(level_river, branch[i]) for i in tier for branch in (level_lower, level_upper)]
        return (np.concatenate([np.append(x, np.nan) for x, _ in pieces]),
                np.concatenate([np.append(y, np.nan) for _, y in pieces]))

    levels = [go.Scatter(x=xs, y=_clean(ys), mode="lines", hoverinfo="skip",
                         line=dict(color=shade, width=1))
              for tier, shade in zip(np.array_split(np.arange(len(level_lower)), _SHADES),
                                     _SHADE_COLORS)
              for xs, ys in [branches(tier)]]
    n = len(levels)
    x0, y0 = tail_to(0)
    fig = go.Figure(
        data=levels + [
            go.Scatter(x=_clean(river[drawn]), y=_clean(valley[drawn]), mode="lines",
                       hoverinfo="skip", line=dict(color=color, width=1), opacity=0.35),
            go.Scatter(x=x0, y=y0, mode="lines+markers", line=dict(color=color, width=1.5),
                       marker=dict(size=3)),
            go.Scatter(x=x0[-1:], y=y0[-1:], mode="markers",
                       marker=dict(color=color, size=11, line=dict(color="white", width=1.5))),
        ],
        # Frames move only the tail and the marker (the last two traces). Plain dicts:
        # go.Frame(go.Scatter(...)) validates every frame twice.
        frames=[dict(name=str(k), traces=[n + 1, n + 2],
                     data=[dict(type="scatter", x=tx, y=ty),
                           dict(type="scatter", x=tx[-1:], y=ty[-1:])])
                for k in frames_at for tx, ty in [tail_to(int(k))]],
    )
    still = dict(frame=dict(duration=0, redraw=False), mode="immediate")
    play = dict(frame=dict(duration=70, redraw=False), transition=dict(duration=0),
                fromcurrent=True, mode="immediate")
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left"), modebar=dict(orientation="v"),
        margin=dict(_MARGIN, r=_MARGIN["r"] + TOOLBAR_PX, b=130), height=480, showlegend=False,   # toolbar lane
        plot_bgcolor="white",
        xaxis=dict(title="river progress ĥ_Rᵀ(θ_R,k − θ_R,0)", range=x_range, showgrid=False),
        yaxis=dict(title="valley coordinate v_iᵀθ_V,k", range=y_range, showgrid=False),
        # Controls keep a fixed font: presenter mode enlarges the chart's text, not its buttons.
        updatemenus=[dict(type="buttons", x=0.0, y=-0.3, xanchor="left", yanchor="top",
                          direction="left", showactive=False, font=dict(size=12),
                          buttons=[dict(label="▶ play", method="animate", args=[None, play]),
                                   dict(label="❚❚", method="animate", args=[[None], still])])],
        # The slider starts where the buttons end, in pixels (pad.l), not at a fraction of the
        # width: at 0.22 of a narrow panel (presenter mode at 1280 px) the buttons hid its start
        # and its "step k =" label.
        sliders=[dict(x=0.0, len=1.0, pad=dict(l=PLAY_BUTTONS_PX, t=20), y=-0.24, yanchor="top", active=0,
                      font=dict(size=11),
                      currentvalue=dict(prefix="step k = ", font=dict(size=12)),
                      steps=[dict(label=str(k), method="animate", args=[[str(k)], still])
                             for k in frames_at])],
    )
    return fig


def add_variant_path(fig: go.Figure, river: np.ndarray, valley: np.ndarray, *, color: str, name: str) -> go.Figure:
    """A second path (heavy ball and/or gradient noise) drawn dashed over path_figure's plot.

    Appended after path_figure's traces, so its frames (which move traces n + 1, n + 2) leave it alone.
    """
    river, valley = np.asarray(river, dtype=float), np.asarray(valley, dtype=float)
    drawn = shown_steps(0, river.size - 1)
    fig.add_trace(go.Scatter(x=_clean(river[drawn]), y=_clean(valley[drawn]), mode="lines", name=name,
                             hoverinfo="name", line=dict(color=color, width=1.5, dash="dot")))
    return fig


def valley_surface_figure(river: np.ndarray, valley: np.ndarray, loss_on_path: np.ndarray,
                   grid_river: np.ndarray, grid_valley: np.ndarray, grid_loss: np.ndarray, *,
                   title: str, color: str) -> go.Figure:
    """The loss slice as a 3D surface with the path on it (heights from the same slice)."""
    idx = shown_steps(0, np.asarray(river).size - 1)
    fig = go.Figure([
        go.Surface(x=_clean(grid_river), y=_clean(grid_valley), z=_clean(grid_loss),
                   colorscale="Blues", reversescale=True, showscale=False, opacity=0.85,
                   hoverinfo="skip"),
        go.Scatter3d(x=_clean(river[idx]), y=_clean(valley[idx]), z=_clean(loss_on_path[idx]),
                     mode="lines+markers", line=dict(color=color, width=4), marker=dict(size=2)),
    ])
    fig.update_layout(title=title, height=460, margin=dict(l=0, r=0, t=40, b=0), showlegend=False,
                      scene=dict(xaxis_title="river", yaxis_title="valley v_i", zaxis_title="loss"))
    return fig


def progress_loss_figure(progress: dict[str, np.ndarray], loss: dict[str, np.ndarray]) -> go.Figure:
    """River progress and loss over steps for both valleys, and the later half of the loss zoomed.

    Arrays are indexed by step k = 0..K. The valleys' own descent dwarfs the river's
    share of the loss; the zoomed panel is where Corollary 2's comparison shows.
    River progress spans the top row; the two loss panels share the row below (three
    panels side by side were ~90 px each in an 800 px window, their ticks running together).
    """
    last = next(iter(loss.values())).size - 1
    whole, late = shown_steps(0, last), shown_steps(last // 2, last)
    gap, row_gap = 0.16, 0.2
    half = (1 - gap) / 2
    top, bottom = [0.5 + row_gap / 2, 1.0], [0.0, 0.5 - row_gap / 2]
    panels = (("river progress ĥ_Rᵀ(θ_R,k − θ_R,0)", progress, whole, [0, 1], top),
              ("loss L(θ_k)", loss, whole, [0, half], bottom),
              (f"loss, steps {last // 2}–{last}", loss, late, [1 - half, 1], bottom))
    # Axes laid out by hand: make_subplots costs more than the data.
    layout = dict(annotations=[])
    data = []
    for j, (label, series, steps, x_domain, y_domain) in enumerate(panels):
        suffix = "" if j == 0 else str(j + 1)
        layout[f"xaxis{suffix}"] = dict(domain=x_domain, anchor=f"y{suffix}", title=dict(text="step k"),
                                        automargin=True)
        # Plain numbers ("−2e−7"): an SI prefix on a loss ("−0.2µ") reads like a unit.
        layout[f"yaxis{suffix}"] = dict(domain=y_domain, anchor=f"x{suffix}", tickformat="~g", nticks=5)
        layout["annotations"].append(dict(text=label, x=x_domain[0], y=y_domain[1], xref="paper", yref="paper",
                                          showarrow=False, xanchor="left", yanchor="bottom"))
        for name, color in (("U", U_COLOR), ("V", V_COLOR)):
            data.append(go.Scatter(x=steps, y=_clean(series[name][steps]), xaxis=f"x{suffix}",
                                   yaxis=f"y{suffix}", name=f"{name} valley", legendgroup=name,
                                   showlegend=j == 0, line=dict(color=color)))
    fig = go.Figure(data, layout)
    fig = _layout(fig, "River progress and loss", "step k", None, height=560)
    # The top panel's own title stands between the figure's title and the plot: room for both,
    # at presenter mode's larger fonts too.
    return fig.update_layout(margin_t=90)


def force_figure(force: np.ndarray, unforced: np.ndarray, bound: float, *, title: str,
                 color: str, y_range: list[float] | None) -> go.Figure:
    """‖C_k‖ (the run) and ‖Ĉ_k‖ (unforced part, eq. 6) against Theorem 1's 𝒞, log scale.

    `force`, `unforced`: norms per step k = 0..K; `y_range` in log10 units.
    """
    k = shown_steps(1, force.size - 1)
    fig = go.Figure([
        go.Scatter(x=k, y=_clean(force[k]), name="‖C_k‖ (run)", line=dict(color=color)),
        go.Scatter(x=k, y=_clean(unforced[k]), name="‖Ĉ_k‖ (unforced, Thm 1)",
                   line=dict(color=color, dash="dash")),
        go.Scatter(x=[1, int(k[-1])], y=[bound, bound], name="𝒞 (bound)", mode="lines",
                   line=dict(color="black", dash="dot")),
    ])
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=320,
                      margin=dict(_MARGIN, r=_MARGIN["r"] + TOOLBAR_PX, b=0),   # the upright toolbar's lane
                      modebar=dict(orientation="v"), legend=dict(LEGEND, x=0),
                      xaxis=dict(title="step k", automargin=True),
                      yaxis=dict(title="force norm", type="log", range=y_range,
                                 **(log_ticks(*y_range) if y_range is not None else {})))
    return fig


def label_positions(levels: np.ndarray, gap: float) -> np.ndarray:
    """Heights (log10) for labels of lines at `levels` (log10): each at its line, pushed up
    just enough to keep `gap` from the one below, so close lines' labels never overlap."""
    order = np.argsort(levels)
    placed = np.empty(len(levels))
    floor = -np.inf
    for i in order:
        placed[i] = max(levels[i], floor + gap)
        floor = placed[i]
    return placed


def valley_spectrum_figure(eigenvalues: np.ndarray, *, tau: float, eta: float, title: str) -> go.Figure:
    """Valley eigenvalues, largest first, coloured by GD regime, with τ, 1/η and 2/η marked.

    1/η < λ < 2/η is valley hopping (ρ < 0); λ ≥ 2/η diverges (|ρ| ≥ 1). The lines' labels
    stand in the right margin, in the line's colour (never over the bars), and a legend
    names the bar colours.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=float))[::-1]
    index = np.arange(1, lam.size + 1)
    marks = ((tau, "τ (Assumption 1)", "dash", "#7b2cbf"), (1 / eta, "1/η: hopping above", "dot", _HOP_COLOR),
             (2 / eta, "2/η: diverges above", "dashdot", _WILD_COLOR))
    levels = np.concatenate([lam[lam > 0], [tau, 1 / eta, 2 / eta]])
    lo, hi = float(np.log10(levels.min())) - 0.15, float(np.log10(levels.max())) + 0.15
    # On a log axis shapes take values, annotations log10 values (plotly.js).
    heights = label_positions(np.log10([m[0] for m in marks]), gap=0.09 * (hi - lo))
    # One bar trace per regime, not a colour per bar: plotly validates colours one by one.
    regimes = ((eta * lam <= 1, _CALM_COLOR, "ηλ ≤ 1: settles"), ((eta * lam > 1) & (eta * lam < 2),
               _HOP_COLOR, "1 < ηλ < 2: hops"), (eta * lam >= 2, _WILD_COLOR, "ηλ ≥ 2: diverges"))
    fig = go.Figure(
        [go.Bar(x=index[sel], y=_clean(lam[sel]), marker_color=shade, name=name,
                hovertemplate="λ_%{x} = %{y:.4g}<extra></extra>")
         for sel, shade, name in regimes if sel.any()],
        # Shapes in one layout, not add_hline per mark: each add_hline re-copies the layout.
        layout=dict(
            shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=y, y1=y,
                         line=dict(dash=dash, width=1.5, color=colour)) for y, _, dash, colour in marks],
            annotations=[dict(xref="paper", x=1.01, y=float(h), text=label, showarrow=False, xanchor="left",
                              yanchor="middle", font=dict(color=colour, size=11))
                         for (_, label, _, colour), h in zip(marks, heights)]),
    )
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=330,
                      margin=dict(_MARGIN, r=140, b=0), bargap=0.15, showlegend=True,
                      legend=dict(LEGEND, x=0), barmode="overlay", modebar=dict(orientation="v"),
                      xaxis=dict(title="i (largest first)", automargin=True),
                      # every tick in full, not "1, 5, 2, 0.1, 5, 2" (Plotly's digit-only 2× and 5× labels)
                      yaxis=dict(title="λ_i", type="log", range=[lo, hi], **log_ticks(lo, hi)))
    return fig


def valley_frame(paths: dict[str, tuple[np.ndarray, np.ndarray]], step: int, x_range: list[float],
                 y_range: list[float], title: str) -> go.Figure:
    """One animation frame of the River valleys paths: river progress (x) against the valley
    coordinate (y) up to `step`, U and V side by side on shared fixed axes."""
    fig = make_subplots(rows=1, cols=len(paths), subplot_titles=[f"{k} valley" for k in paths],
                        shared_yaxes=True)
    for col, (key, (river, valley)) in enumerate(paths.items(), start=1):
        colour = FRAME_COLOURS.get(key, "#333")
        fig.add_scatter(x=river, y=valley, mode="lines", line=dict(color=colour, width=1), opacity=0.25,
                        showlegend=False, row=1, col=col)
        fig.add_scatter(x=river[:step + 1], y=valley[:step + 1], mode="lines", line=dict(color=colour, width=2),
                        showlegend=False, row=1, col=col)
        fig.add_scatter(x=[river[step]], y=[valley[step]], mode="markers", marker=dict(color=colour, size=10),
                        showlegend=False, row=1, col=col)
        fig.update_xaxes(range=x_range, title_text="river progress ĥ_Rᵀθ_R", row=1, col=col)
    fig.update_yaxes(range=y_range)
    fig.update_yaxes(title_text="valley coordinate v_iᵀθ_V", row=1, col=1)
    return _layout(fig, f"{title}, step {step}", "river progress ĥ_Rᵀθ_R", "valley coordinate v_iᵀθ_V", height=420)
