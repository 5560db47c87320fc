"""River valleys: why a V-shaped valley carries gradient descent further down the river.

Sec. 4.3 and App. F of the paper: Setting 1 (quadratic) or Setting 2 (stiffening walls),
a U valley (Single-Attn) and a V valley (Looped-Attn) run from the same start, and
Theorem 1 / Corollaries 1–2 (or Theorem 2) checked live on the result.
"""
import sys
from pathlib import Path

import numpy as np
import streamlit as st

# Streamlit puts only the script's folder on sys.path; the repo root makes `loopviz`
# importable when this page runs on its own (`streamlit run app_pages/river_valley.py`).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from loopviz import quadratic as q
from loopviz.plots import valley as vp
from loopviz.ui import present
from loopviz.ui.inputs import parse_spectrum, warn_refused_query

U_PRESET, V_PRESET, CUSTOM = "U-valley (Single-Attn)", "V-valley (Looped-Attn)", "Custom spectrum"
MAX_DIM = 200          # d_V + d_R; the speed budget is set for this size
LAM_MAX = 1.0          # both presets share the steepest cliff, so η means the same to both
COUPLINGS = [-0.01, -0.003, -0.002, -0.001, 0.0, 0.001, 0.002, 0.003, 0.005, 0.01, 0.03, 0.1]
DRIVES = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
KAPPAS_V = [10, 30, 100, 300, 1000]
NOISES = [0.0, 1e-4, 1e-3, 1e-2, 0.03, 0.1]
MOMENTUM_MAX = 0.95
# Every knob is in the URL (its key is the query parameter), so a link opens this exact view.
URL = dict(bind="query-params", persist_state="session")


# cache_resource, not cache_data: a comparison at d = 200, K = 2000 pickles to ~14 MB, and
# cache_data would pickle it on every slider move and unpickle it on every toggle. Nothing
# downstream mutates it, so sharing the one object is safe.
@st.cache_resource(max_entries=8, show_spinner=False)
def run(single: tuple[float, ...], looped: tuple[float, ...], **knobs) -> q.Comparison:
    return q.compare_valleys(np.array(single), np.array(looped), **knobs)


def run_variant(problem: q.RiverValley, eta: float, steps: int, momentum: float, noise: float,
                feedback: bool) -> q.Trajectory:
    """Uncached: K Python steps of a d ≤ 200 matvec, ~tens of ms."""
    return q.simulate_momentum(problem.H_valley, problem.H_rv, problem.h_r, problem.theta_v0, problem.theta_r0,
                               eta, steps, momentum=momentum, noise=noise, feedback=feedback)


def optimizer_sentences(eigenvalues: dict[str, np.ndarray], eta: float, momentum: float,
                        noise: float) -> list[str]:
    """What momentum and noise change, computed from the chosen η, μ, σ and each side's spectrum:
    heavy ball is stable iff 0 < ηλ < 2(1 + μ) (q.momentum_stable); plain GD with noise σ settles to
    η²σ²/(1 − (1 − ηλ)²) per direction (q.noise_floor_variance)."""
    limit = 2 * (1 + momentum)
    parts = []
    for key, lam in eigenvalues.items():
        stable = q.momentum_stable(lam, eta, momentum)
        parts.append(f"{key}: η·λ_max = {eta * lam.max():.3g}, {int(stable.sum())} of {lam.size} directions "
                     + ("converge" if stable.all() else "converge, the others diverge"))
    lines = [f"**Momentum μ = {momentum:g}**: heavy ball converges along λ iff ηλ < 2(1 + μ) = {limit:.3g} "
             f"(plain GD: ηλ < 2), so directions with 1 < ηλ < {limit:.3g} oscillate without diverging. "
             f"At η = {eta:g} — " + "; ".join(parts) + "."]
    if noise > 0:
        floors = []
        for key, lam in eigenvalues.items():
            steep, flat = lam.max(), lam.min()
            values = [f"{q.noise_floor_variance(x, eta, noise):.3g}" if 0 < eta * x < 2 else "none (diverges)"
                      for x in (steep, flat)]
            floors.append(f"{key} {values[0]} along λ = {steep:.3g}, {values[1]} along λ = {flat:.3g}")
        lines.append(f"**Gradient noise σ = {noise:g}**: plain GD (μ = 0) settles to the stationary variance "
                     "η²σ²/(1 − (1 − ηλ)²) per valley direction — " + "; ".join(floors) + "."
                     + (" (That formula is for μ = 0; the dotted path here also has momentum.)" if momentum else ""))
    return lines


st.title("River valleys: U against V")
st.markdown(
    "Gradient descent on the paper's river-valley loss (Sec. 4.3, App. F). Both runs start "
    "from the same point; the valley's motion pushes the river through the coupling "
    "H_RV, and the **cumulative force** $C_K = \\eta \\sum_{k<K} H_{RV}\\,\\theta_{V,k}$ adds to the river's own "
    "drive. A V valley has many small eigenvalues; those directions settle slowly and keep "
    "pushing (1/λ_i in Theorem 1's 𝒞)."
)

# Bad URL values are named here, on the page (not in the sidebar or a closed expander):
# Streamlit drops a value its widget refuses without a word. (key, accepts, default shown)
URL_KNOBS = [("eta", lambda v: 0.05 <= float(v) <= 2.2, "1.8"), ("steps", lambda v: 10 <= float(v) <= 2000, "1000"),
             ("coupling", lambda v: float(v) in COUPLINGS, "0.002"),
             ("offset", lambda v: 0.0 <= float(v) <= 3.0, "1"),
             ("momentum", lambda v: 0.0 <= float(v) <= MOMENTUM_MAX, "0"), ("noise", lambda v: float(v) in NOISES, "0"),
             ("d_r", lambda v: 1 <= float(v) <= 50, "5"), ("d_v", lambda v: 2 <= float(v) <= MAX_DIM - 1, "20"),
             ("kappa_u", lambda v: 1.0 <= float(v) <= 3.0, "1.2"), ("kappa_v", lambda v: float(v) in KAPPAS_V, "100"),
             ("tau", lambda v: 0.05 <= float(v) <= 1.0, "0.5"), ("drive", lambda v: float(v) in DRIVES, "1e-05"),
             ("stiffening", lambda v: 0.0 <= float(v) <= 2.0, "0.5")]
for knob, accepts, default in URL_KNOBS:
    warn_refused_query(knob, accepts, f"is outside this knob's values; using {default}")

# Presenter mode hides the sidebar; the knobs then sit in an expander on the page, so a
# lecturer can still move η or κ in front of the room.
with st.expander("valley knobs", expanded=False) if present.enabled() else st.sidebar:
    st.header("River valleys")
    setting = st.radio("Loss", ["Setting 1: quadratic", "Setting 2: stiffening walls"], key="setting", **URL,
                       help="Setting 2 adds (γ/4)Σ(v_iᵀθ_V)⁴: the valley Hessian changes along the "
                            "path and stays above H^B = the chosen spectrum (Assumption 3).")
    setting_no = 1 if setting.startswith("Setting 1") else 2
    left = st.selectbox("Single-Attn side", [U_PRESET, V_PRESET, CUSTOM], index=0, key="single_side", **URL)
    right = st.selectbox("Looped-Attn side", [U_PRESET, V_PRESET, CUSTOM], index=1, key="looped_side", **URL)
    custom_text = ""
    if CUSTOM in (left, right):
        custom_text = st.text_input("Custom eigenvalues (comma-separated)", "1, 0.6, 0.2, 0.05, 0.01", key="custom",
                                    **URL,
                                    help="The valley Hessian's eigenvalues, each > 0.")
    eta = st.slider("step size η", 0.05, 2.2, 1.8, 0.05, key="eta", **URL,
                    help="ηλ between 1 and 2: valley hopping; ηλ ≥ 2: divergence.")
    steps = st.slider("steps K", 10, 2000, 1000, 10, key="steps", **URL)
    coupling = st.select_slider("coupling strength ‖H_RV‖ (signed)", COUPLINGS, value=0.002, key="coupling", **URL,
                                help="Negative flips the push: the valley then drives the river "
                                     "upstream.")
    offset = st.slider("initial valley offset ‖θ_V,0‖", 0.0, 3.0, 1.0, 0.1, key="offset", **URL)
    momentum = st.slider("momentum μ (heavy ball)", 0.0, MOMENTUM_MAX, 0.0, 0.05, key="momentum", **URL,
                         help="torch's SGD momentum: u ← μu + g, θ ← θ − ηu. Setting 1 only; the "
                              "stability threshold moves from ηλ < 2 to ηλ < 2(1 + μ).")
    noise = st.select_slider("gradient noise σ", NOISES, value=0.0, key="noise", **URL,
                             help="g = ∇L + σξ, ξ ~ N(0, I) seeded: SGD's noise in Setting 1.")
    with st.expander("More knobs"):
        d_r = st.slider("river dimension d_R", 1, 50, 5, key="d_r", **URL)
        d_v = st.slider("valley dimension d_V (presets)", 2, MAX_DIM - d_r, 20, key="d_v", **URL)
        kappa_u = st.slider("κ of the U preset", 1.0, 3.0, 1.2, 0.1, key="kappa_u", **URL)
        kappa_v = st.select_slider("κ of the V preset", KAPPAS_V, value=100, key="kappa_v", **URL)
        tau = st.slider("τ (Assumption 1)", 0.05, 1.0, 0.5, 0.05, key="tau", **URL)
        drive = st.select_slider("river drive ‖h_R‖", DRIVES, value=1e-5, key="drive", **URL)
        stiffening = st.slider("wall stiffening γ (Setting 2)", 0.0, 2.0, 0.5, 0.1,
                               disabled=setting_no == 1, key="stiffening", **URL)
        feedback = st.checkbox("river → valley feedback (eq. 1 in full)", value=True, key="feedback", **URL,
                               help="Off: drop −ηH_VRθ_R from eq. 1, the approximation under which "
                                    "Theorem 1 is proved; then C_K = Ĉ_K.")

spectra = {U_PRESET: q.u_valley_spectrum(d_v, LAM_MAX, kappa_u),
           V_PRESET: q.v_valley_spectrum(d_v, LAM_MAX, kappa_v)}
if CUSTOM in (left, right):
    custom, problem = parse_spectrum(custom_text, MAX_DIM - d_r)
    if custom is None:
        st.error(f"Custom spectrum: {problem}")
        st.stop()
    spectra[CUSTOM] = custom

cmp = run(tuple(spectra[left]), tuple(spectra[right]), d_r=d_r, coupling=coupling, offset=offset,
          drive=drive, eta=eta, steps=steps, tau=tau, setting=setting_no,
          stiffening=stiffening if setting_no == 2 else 0.0, feedback=feedback)
sides = {"U": cmp.single, "V": cmp.looped}
names = {"U": left, "V": right}



def number(side: q.Side, value: float, spec: str) -> str:
    """A side's number, or "diverges" when its run blew up (no 2e40 % or nan on screen)."""
    return "diverges" if side.diverged or not np.isfinite(value) else format(value, spec)


# --- verdict ----------------------------------------------------------------------
OK, NO = ":green[:material/check_circle:]", ":red[:material/cancel:]"
WARN, HOP = ":orange[:material/warning:]", ":orange[:material/swap_vert:]"
with st.container(border=True):
    st.subheader(f"Verdict — Setting {setting_no}, K = {steps}")
    a1 = cmp.assumption1
    st.markdown(f"{OK if a1.holds else WARN} **Assumption 1** {'holds' if a1.holds else 'fails'} "
                f"— {a1.describe()}")
    for claim in cmp.claims:
        if claim.holds:
            st.markdown(f"{OK} **{claim.name}** holds — {claim.compared}")
        else:
            compared = ("its numbers are not finite: a run diverges" if cmp.single.diverged or cmp.looped.diverged
                        else claim.compared)
            st.markdown(f"{NO} **{claim.name}** fails — {compared}  \n"
                        f"↳ *because* {claim.why_not}")
    U, V = sides["U"], sides["V"]
    st.caption(
        f"Theorem {1 if setting_no == 1 else '2(a)'} bounds Ĉ_K, the force the valley exerts when "
        "the river does not feed back into it (App. F.2, eq. 6): that is what is compared with 𝒞 "
        f"(share of 𝒞 reached: U {number(U, U.bound_share, '.1%')}, V {number(V, V.bound_share, '.1%')}). "
        f"The run's own force C_K (eq. 1 in full) is ‖C_K‖ = {number(U, U.force_norm, '.3g')} (U), "
        f"{number(V, V.force_norm, '.3g')} (V); feedback share ‖C_K − Ĉ_K‖/‖Ĉ_K‖ = "
        f"{number(U, U.feedback_share, '.2g')} (U), {number(V, V.feedback_share, '.2g')} (V). "
        "App. F.2 calls it a minor perturbation; we call ≤ "
        f"{q.MINOR_FEEDBACK:g} minor. No theorem bounds C_K: with feedback the loss is unbounded "
        "below."
    )
    if U.eigenvalues.size != V.eigenvalues.size:
        st.caption(f"d_V differs ({U.eigenvalues.size} vs {V.eigenvalues.size}): both start at "
                   f"‖θ_V,0‖ = {offset:g}, but not at the same point, as Corollary 2 assumes.")
    if U.hopping or V.hopping:
        st.markdown(f"{HOP} **Valley hopping** — {U.hopping} direction(s) "
                    f"of U and {V.hopping} of V have 1 < ηλ < 2, so ρ = 1 − ηλ < 0 and their "
                    "coordinate flips sign every step: press ▶ on a path below (steepest direction). "
                    "The hops add little force: direction i adds (v_iᵀθ_V,0/λ_i)(1 − ρ_i^K) H_RV v_i, "
                    "small for a large λ_i whether it hops or not; V's extra push comes from its "
                    "small λ_i.")
    for key, side in sides.items():
        if side.diverged:
            st.markdown(f"{NO} **{key} diverges** — η·λ_max = {side.eta_lam_max:.3g} ≥ 2 "
                        "(|ρ| ≥ 1).")

# --- paths ------------------------------------------------------------------------
direction = st.radio("valley direction drawn", ["steepest", "flattest"], horizontal=True, key="direction", **URL,
                     help="Steepest: where hopping shows. Flattest: the slow push of a small λ.")
show_3d = st.checkbox("3D surface", key="show_3d", **URL)
paths = {k: q.valley_direction(s.problem, s.run, direction) for k, s in sides.items()}
progress = {k: q.river_progress(s.run.theta_r, s.problem.h_r) for k, s in sides.items()}
# Heavy ball and/or gradient noise (Setting 1): drawn dotted beside the plain GD path.
variant_on = setting_no == 1 and (momentum > 0 or noise > 0)
variants = {}
if variant_on:
    for k, s in sides.items():
        traj = run_variant(s.problem, eta, steps, momentum, noise, feedback)
        variants[k] = (q.river_progress(traj.theta_r, s.problem.h_r), q.valley_direction(s.problem, traj, direction)[2])
# Shared axes over the sides that do not diverge: a diverging side's 1e300 would shrink the
# other's path to a dot. The diverging path then leaves the frame, which is what it does.
framed = [k for k, s in sides.items() if not s.diverged] or list(sides)
x_range = vp.finite_range(*(progress[k] for k in framed), *(variants[k][0] for k in framed if k in variants))
y_range = vp.finite_range(*(paths[k][2] for k in framed), *(variants[k][1] for k in framed if k in variants))
grid_x = np.linspace(*x_range, 60)
grid_y = np.linspace(*y_range, 60)
colors = {"U": vp.U_COLOR, "V": vp.V_COLOR}
gamma = stiffening if setting_no == 2 else 0.0

for col, (key, side) in zip(st.columns(2), sides.items()):
    lam_i, cross, coord = paths[key]
    with col:
        role = "Single-Attn" if key == "U" else "Looped-Attn"
        st.markdown(f"**{key} ({role} side): {names[key]}** — d_V = {side.eigenvalues.size}, "
                    f"κ = {side.eigenvalues.max() / side.eigenvalues.min():.3g}")
        grid, lower, upper = q.slice_contours(lam_i, drive, cross, gamma, grid_x, grid_y)
        figure = vp.path_figure(progress[key], coord, grid_x, lower, upper,
                                title=f"path, {direction} direction (λ = {lam_i:.3g})",
                                color=colors[key], x_range=x_range, y_range=y_range)
        if key in variants:
            vp.add_variant_path(figure, *variants[key], color=colors[key],
                                name=f"μ = {momentum:g}, σ = {noise:g}")
        present.chart(st, figure, key=f"path_{key}")
        if show_3d:
            on_path = q.loss_slice(lam_i, drive, cross, gamma, progress[key], coord)
            present.chart(st, vp.valley_surface_figure(progress[key], coord, on_path, grid_x, grid_y, grid,
                                              title="loss slice", color=colors[key]),
                            key=f"surface_{key}")

st.caption("Level sets (dark: low) of the loss on the plane spanned by the drawn valley "
           "direction and the river flow ĥ_R through θ = 0; the faint line is the whole path. Both "
           "panels share their axes.")
if setting_no == 1:
    for line in optimizer_sentences({k: s.eigenvalues for k, s in sides.items()}, eta, momentum, noise):
        st.markdown(line)
    if variant_on:
        st.caption(f"Dotted: the same start under heavy ball μ = {momentum:g} with gradient noise σ = {noise:g} "
                   "(seeded); the verdict above is plain GD's.")
elif momentum > 0 or noise > 0:
    st.caption("Momentum and gradient noise are drawn for Setting 1 only.")

present.chart(st, vp.progress_loss_figure(progress, {k: s.run.loss for k, s in sides.items()}),
                key="progress_loss")

norms = {k: (np.linalg.norm(s.run.force, axis=1), np.linalg.norm(s.unforced, axis=1))
         for k, s in sides.items()}
force_range = vp.log_range(*(n for pair in norms.values() for n in pair),
                           np.array([s.bound for s in sides.values()]))
for col, (key, side) in zip(st.columns(2), sides.items()):
    with col:
        present.chart(st, vp.force_figure(*norms[key], side.bound, title=f"{key}: force vs 𝒞",
                                        color=colors[key], y_range=force_range), key=f"force_{key}")
        present.chart(st, vp.valley_spectrum_figure(side.eigenvalues, tau=tau, eta=eta,
                                           title=f"{key}: valley spectrum"
                                                 + (" (H^B)" if setting_no == 2 else "")),
                        key=f"spectrum_{key}")
