"""Landscape (Sec. 4.1–4.2): the exact loss on a plane through the run with the Single,
Looped and SHIFT paths, the edge of stability (λ_max against 2/η; Adam's preconditioned
sharpness against 38/η), and the Hessian cut into its W_K, W_Q, W_V, W_h blocks."""
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from loopviz import landscape as L
from loopviz import shift, stats
from loopviz.config import RunConfig
from loopviz.export import export_command, render_bytes, spectrum_figures
from loopviz.plots import landscape as lp
from loopviz.runs.format import RunData
from loopviz.ui import jobs, present
from loopviz.ui.config_sidebar import sidebar_config
from loopviz.ui.inputs import bounded_number

REPO = Path(__file__).resolve().parent.parent
PLANES = {"θ₀ and the final Single and Looped weights": "endpoints", "top-2 PCA directions of the paths": "pca"}


# Cached by the configuration's JSON and the stored weights: the science, and torch, live in loopviz.landscape.
@st.cache_data(max_entries=8, show_spinner="Evaluating the loss on the plane…")
def surface(config_json: str, trajectories: dict[str, np.ndarray], kind: str, n: int) -> L.SurfaceView:
    return L.surface_view_of(config_json, trajectories, kind, n)


@st.cache_data(max_entries=16, show_spinner="Exact Hessians along the run…")
def curvature(config_json: str, thetas: np.ndarray, epochs: np.ndarray, stride: int, extra: tuple[int, ...]):
    return L.curvature_series_of(config_json, thetas, epochs, stride, extra)


@st.cache_data(max_entries=64, show_spinner=False)
def blocks_at(config_json: str, theta: np.ndarray, epoch: int) -> L.BlockSpectra:
    return L.block_spectra_of(config_json, theta, epoch)


def run_command(config: RunConfig) -> str:
    """`python -m loopviz run` with every field that differs from the defaults."""
    default = RunConfig().to_dict()
    options = [f"--{k.replace('_', '-')} {str(v).lower() if isinstance(v, bool) else v}"
               for k, v in config.to_dict().items() if k != "model" and v != default[k]]
    return " ".join(["python -m loopviz run --model single,looped", *options, "--out runs/mine"])


st.title("Landscape: loss surface, edge of stability, per-block curvature")
st.caption("Every number here is exact at d = 4 (P = 60 weights): the training loss evaluated on a grid, Hessians "
           "in closed form in float64 (checked against autodiff), Adam's state rebuilt from the stored weights.")

config = sidebar_config(RunConfig())
pair = jobs.pair_controls(config)
runs: dict[str, RunData | None] = {label: jobs.current_run(c) for label, c in pair.items()}
if any(r is None or len(r.records) < 3 for r in runs.values()):
    jobs.progress_panel(pair)
    st.info("The Landscape page needs both Single-Attn and Looped-Attn runs of this configuration (3 epochs at "
            "least): press **Train** in the sidebar.")
    st.stop()
single, looped = runs["Single-Attn"], runs["Looped-Attn"]
if len(single.weight_epochs) != len(single.records) or len(looped.weight_epochs) != len(looped.records):
    st.warning("These runs lack the weights of some epochs; the paths below use the epochs stored.")

plateau, suggested = shift.scp(single.records["val_loss"].to_numpy(), single.records["grad_norm"].to_numpy())
default_shift = min(int(suggested if suggested is not None else config.shift_epoch), config.epochs)
# Keyed by its range and default: another configuration's SCP epoch is a new widget with its own default.
shift_epoch = bounded_number("SHIFT run to draw: shift epoch", 0, config.epochs, default_shift, where=st.sidebar,
                             key=f"landscape_shift_epoch:{config.epochs}:{default_shift}",
                             help="Default: SCP's epoch for this Single run. The SHIFT page trains it.")
shift_config = config.replace(model="shift", shift_epoch=int(shift_epoch))
shifted = jobs.current_run(shift_config)
if shifted is not None and len(shifted.records) >= 3:
    runs["SHIFT"] = shifted
else:
    st.caption(f"No SHIFT run with shift epoch {shift_epoch} is stored for this configuration: open the SHIFT "
               "page to train one; until then only Single-Attn and Looped-Attn are drawn.")
models = {label: run.config.model for label, run in runs.items()}
last = int(min(r.weight_epochs[-1] for r in runs.values()))
epoch = st.slider("epoch", 0, last, value=min(last, 300), key="landscape_epoch",
                  help="The cursor: marked on the paths, the sharpness curves and the block spectra.")

# --- 1. the loss surface ------------------------------------------------------------
st.subheader("1. The exact loss on a plane through the run")
left, right = st.columns([3, 1])
kind = PLANES[left.radio("plane", list(PLANES), horizontal=True, key="landscape_plane")]
n = right.select_slider("grid", [21, 41, 61], value=41, key="landscape_grid", help="points per axis")
trajectories = {label: run.thetas for label, run in runs.items()}
try:
    view = surface(config.to_json(), trajectories, kind, n)
except ValueError as exc:
    st.error(f"No plane: {exc}")
    st.stop()
start_loss = float(looped.records["loss"].iloc[0])   # both models start from the same θ₀ (≈ ln 3)
paths = {label: (models[label], view.coords[label], runs[label].weight_epochs) for label in runs}
columns = st.columns(2)
for column, (loops, name) in zip(columns, ((1, "Single-Attn's loss (T = 1)"),
                                          (config.loops, f"Looped-Attn's loss (T = {config.loops})"))):
    present.chart(column, lp.loss_plane_figure(view.alpha, view.beta, view.loss[loops], paths, epoch, name,
                                             2 * start_loss), key=f"surface-{loops}")
each = ", ".join(f"{label} {share:.1%}" for label, share in view.captured_each.items())
st.markdown(f"**The plane captures {view.captured:.1%} of the pooled trajectories' variance** ({each}); "
            f"the rest is off the plane: the farthest point of each path lies "
            + ", ".join(f"{view.residual_max[label]:.3g} from it ({label}, whose weights end "
                        f"{np.linalg.norm(runs[label].thetas[-1] - runs[label].thetas[0]):.3g} from θ₀)"
                        for label in runs)
            + ".")
st.caption("The two models' losses are different functions of the same 60 weights, so each gets its own surface; "
           "every path is drawn on both. A path's point off the plane has its own loss, not the surface's: only "
           + ("θ₀ and the two final weights lie exactly on this plane. " if kind == "endpoints" else
              "the projection is shown (the PCA plane passes through the mean of all points). ")
           + "α and β are distances in weight space along orthonormal directions; the two axes are not drawn to "
             "one scale. "
           + f"Colours: log10 of the loss, the scale capped at twice the initial loss ({2 * start_loss:.3g}). "
             "SHIFT runs on Single's "
             "loss up to its shift epoch and on Looped's after it.")

# --- 2. the edge of stability -----------------------------------------------------------
st.subheader("2. Edge of stability: sharpness against the stability thresholds")
stride = st.select_slider("Hessian every … epochs (preconditioned sharpness, block spectra)", [1, 2, 5, 10, 20],
                          value=20, key="landscape_stride",
                          help="λ_max(H) itself is read from the stored spectra at every epoch. 1 = exact Hessians at "
                               "all epochs (slower on first view; cached after).")
series = {label: curvature(run.config.to_json(), run.thetas, run.weight_epochs, int(stride), L.event_epochs(run))
          for label, run in runs.items()}
gd, adam = L.gd_threshold(config.lr), L.adam_threshold(config.lr)
left, right = st.columns(2)
present.chart(left, lp.sharpness_figure({label: (models[label], r.spectrum_epochs, r.eigenvalues[:, -1])
                                       for label, r in runs.items() if len(r.spectrum_epochs)},
                                      gd, f"2/η = {gd:g}", "λ_max(H): the GD picture", "λ_max", epoch),
                  key="sharpness-gd")
present.chart(right, lp.sharpness_figure({label: (models[label], s.epochs, s.precond_lambda_max)
                                        for label, (s, _) in series.items()
                                        if np.all(np.isfinite(s.precond_lambda_max))},
                                       adam, f"38/η = {adam:g}", "λ_max(P⁻¹H): Adam's preconditioned sharpness",
                                       "λ_max(P⁻¹H)", epoch), key="sharpness-adam")
lines = []
for label, run in runs.items():
    s, check = series[label]
    if len(run.spectrum_epochs):
        gd_edge = L.edge_summary(run.eigenvalues[:, -1], gd)
        peak = int(run.spectrum_epochs[np.argmax(run.eigenvalues[:, -1])])
        gd_text = f"λ_max peaks at {gd_edge['peak_ratio']:.3g} × 2/η (epoch {peak})"
    else:
        gd_text = "no stored spectra"
    reason = L.why_no_adam_state(run.config, run.weight_epochs)
    if reason:
        lines.append(f"- **{label}**: {gd_text}; no preconditioned sharpness: {reason}.")
        continue
    ad = L.edge_summary(s.precond_lambda_max, adam)
    ad_peak = int(s.epochs[np.argmax(s.precond_lambda_max)])
    near = stats.share_of(round(ad["share_near"] * len(s.epochs)), len(s.epochs))   # a share: with its interval
    lines.append(f"- **{label}**: {gd_text}; λ_max(P⁻¹H) peaks at **{ad['peak_ratio']:.3g} × 38/η** (epoch {ad_peak}), "
                 f"ends at {ad['final_ratio']:.3g} ×, and is within 10 % of it or above at {near.text()} of "
                 f"the epochs computed (every {stride}, plus the λ_max peak and any SHIFT switch). "
                 f"Adam's rebuilt steps reproduce the stored weights to {check:.1e}.")
st.markdown("\n".join(lines))
st.caption("Full-batch GD is stable on a quadratic while λ_max < 2/η; these runs use Adam, whose step is "
           "θ ← θ − η P⁻¹m with P = (1 − β₁ᵗ)(√(v/(1 − β₂ᵗ)) + ε) (torch's Adam); Cohen et al. (2022) show that "
           "Adam trains at the edge where λ_max(P⁻¹H) ≈ (2 + 2β₁)/((1 − β₁)η) = 38/η (β₁ = 0.9). A curve at its "
           "threshold trains at the edge of stability; the River valleys page's \"hopping above 1/η\" is the "
           "quadratic picture of the same thing. Adam's state is not stored in a run: in a full-batch run it is a "
           "function of the gradients at the stored weights, rebuilt here and checked against every stored step.")

# --- 3. per-block spectra ------------------------------------------------------------------
st.subheader("3. The Hessian block by block: W_K, W_Q, W_V, W_h")
columns = st.columns(len(runs))
for column, (label, run) in zip(columns, runs.items()):
    present.chart(column, lp.block_series_figure(series[label][0], label, epoch), key=f"blocks-{label}")
columns = st.columns(len(runs))
summary = []
for column, (label, run) in zip(columns, runs.items()):
    idx = int(np.clip(np.searchsorted(run.weight_epochs, epoch), 0, len(run.weight_epochs) - 1))
    at = int(run.weight_epochs[idx])
    blocks = blocks_at(run.config.to_json(), run.thetas[idx], at)
    present.chart(column, lp.block_spectrum_figure(blocks, f"{label}: block eigenvalues at epoch {at}"),
                        key=f"block-spectrum-{label}")
    top = blocks.largest()
    summary.append(f"{label}: {top} (λ_max {blocks.eigenvalues[top][-1]:.3g}; coupling "
                   f"{blocks.coupling_share:.0%} of ‖H‖²)")
st.markdown(f"**At epoch {epoch} the largest own-block eigenvalue sits in** " + "; ".join(summary) + ".")
st.caption("A block's eigenvalues are the curvature when only that matrix moves (the diagonal block of H); by "
           "Cauchy interlacing none exceeds λ_max(H). The coupling share ‖off-block part‖²_F / ‖H‖²_F says how much "
           "of the curvature mixes two matrices: moving W_V changes the gradient of W_K, and so on. W_h's block always "
           "has d zero eigenvalues (adding one vector to every row of W_h leaves the softmax unchanged); |λ| below "
           "1e-12 is drawn at 1e-12.")

# --- 4. export -----------------------------------------------------------------------------
st.subheader("Export and reproduce")
dirs = []
for label, run in runs.items():
    path = jobs.store_path(run.config)
    try:
        dirs.append(str(path.relative_to(REPO)))
    except ValueError:
        dirs.append(str(path))
frames = st.select_slider("frames", [15, 30, 60], value=30, key="landscape_frames",
                          help="Rendering takes ~0.3–1 s a frame (kaleido, headless Chromium).")
left, right = st.columns(2)
for column, suffix, mime in ((left, ".gif", "image/gif"), (right, ".mp4", "video/mp4")):
    column.download_button(f"Spectrum animation ({suffix[1:].upper()})",
                           lambda suffix=suffix: render_bytes(spectrum_figures(runs, int(frames)), suffix),
                           f"loopviz-spectrum{suffix}", mime, key=f"export{suffix}", on_click="ignore",
                           disabled=any(len(r.spectrum_epochs) == 0 for r in runs.values()),
                           help="Rendered when clicked: allow a few seconds per frame on a busy machine.")
table = pd.concat([pd.DataFrame({"model": label, "epoch": s.epochs, "lambda_max": s.lambda_max,
                                "precond_lambda_max": s.precond_lambda_max, "coupling_share": s.coupling_share,
                                **{f"lambda_max_{b}": s.block_max[b] for b in L.BLOCKS},
                                **{f"lambda_min_{b}": s.block_min[b] for b in L.BLOCKS}})
                   for label, (s, _) in series.items()])
st.download_button("Curvature instruments (CSV)", lambda: table.to_csv(index=False), "loopviz-landscape.csv",
                   "text/csv", key="landscape-csv", on_click="ignore",
                   help=f"Per model, every {stride}-th epoch: λ_max, λ_max(P⁻¹H), each block's extreme eigenvalues "
                        "and the coupling share.")
st.markdown("The commands that reproduce this view: train the runs, then export the animation.")
st.code(run_command(config) + "\n" + export_command("spectrum", dirs, "spectrum.gif", int(frames)), language="bash",
        wrap_lines=True)
