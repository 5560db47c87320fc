"""SHIFT (Sec. 5): train Single-Attn, switch the same weights to Looped-Attn at a chosen
epoch; the SCP criterion, the speed-up, the U→V reshaping and Theorem 3, measured."""
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from loopviz import shift, verdicts
from loopviz.config import RunConfig
from loopviz.plots import shift as shift_plots
from loopviz.plots import style
from loopviz.plots import training as plots
from loopviz.runs.format import RunData
from loopviz.sweeps import shift_timing_noise
from loopviz.ui import jobs
from loopviz.ui.config_sidebar import sidebar_config, warn_refused_int
from loopviz.ui.inputs import bounded_number
from loopviz.ui import present

SWEEP_FILE = Path(__file__).resolve().parent.parent / "assets" / "sweep_shift.csv"
# Pure Looped-Attn's repeated timings in the bundled sweep: a speed-up within this is noise.
TIMING_NOISE = shift_timing_noise(SWEEP_FILE)

st.title("SHIFT: Single-Attn first, then Looped-Attn")
st.caption("Stage I trains Single-Attn; at the shift epoch the same weights (and Adam state) continue as "
           "Looped-Attn. Stage I is the stored Single run itself: only Stage II is trained when you move the slider.")

config = sidebar_config(RunConfig())
base = jobs.pair_controls(config)

single = jobs.current_run(base["Single-Attn"])
if single is None or single.status != "complete":
    jobs.progress_panel(base)
    st.info("SHIFT starts from a finished Single-Attn run of this configuration: press **Train** in the sidebar.")
    st.stop()

with st.expander("SCP: SHIFT Criterion with Patience (App. E.1.4)", expanded=False):
    c1, c2, c3, c4 = st.columns(4)
    delta1 = bounded_number("δ1: least fall of validation loss", 1e-6, 1.0, shift.SCP_DEFAULTS["delta1"],
                            format="%g", key="scp_delta1", where=c1)
    window = bounded_number("p: plateau window (epochs)", 1, 200, shift.SCP_DEFAULTS["plateau_epochs"],
                            key="scp_window", where=c2)
    patience = bounded_number("W: patience (epochs)", 0, 500, shift.SCP_DEFAULTS["patience"], key="scp_patience",
                              where=c3)
    delta2 = bounded_number("δ2: gradient-norm spread", 1e-4, 10.0, shift.SCP_DEFAULTS["delta2"], format="%g",
                            key="scp_delta2", where=c4)
    wait = st.radio("E_shift", shift.SCP_WAITS, index=shift.SCP_WAITS.index(config.scp_wait), horizontal=True,
                    key="scp_wait", format_func={"patience": "E_plateau + W (the paper's rule)",
                                                 "gradient": "wait on until the gradient norm settles (ours)"}.get)
grad = single.records["grad_norm"].to_numpy()
plateau, suggested = shift.scp(single.records["val_loss"].to_numpy(), grad, delta1, int(window), int(patience),
                               delta2, wait=wait)
if plateau is None:
    st.warning("SCP found no plateau in the Single-Attn validation loss with these thresholds; pick the shift "
               "epoch by hand.")
elif suggested is None:
    st.warning(f"SCP found a plateau at epoch {plateau} but "
               + ("the gradient norm never settled within δ2 afterwards." if wait == "gradient"
                  else f"E_plateau + W = {plateau + int(patience)} lies past the run's end."))
else:
    spread = shift.gradient_spread(grad, suggested, int(window))
    rule = (f"E_shift = E_plateau + W = {plateau} + {int(patience)} = {suggested} (the paper's rule)"
            if wait == "patience" else
            f"E_shift = {suggested}, the first epoch ≥ E_plateau + W = {plateau + int(patience)} with a settled "
            f"gradient norm ({suggested - plateau - int(patience)} epochs past the paper's rule)")
    st.success(f"SCP: validation-loss plateau at epoch {plateau}; {rule}. Gradient-norm spread over the {int(window)} "
               f"epochs to E_shift: {spread:.3g} ({'settled' if spread < delta2 else 'not settled'} "
               f"by δ2 = {delta2:g}).")

default_epoch = suggested if suggested is not None else min(100, config.epochs)
warn_refused_int("shift_epoch", 0, config.epochs, default_epoch)
shift_epoch = st.slider("shift epoch", 0, config.epochs, value=default_epoch, key="shift_epoch",
                        bind="query-params", persist_state="session",
                        help="Moving it trains Stage II of a new SHIFT run at once (spectra follow); a newer "
                             "position cancels an older one that no other viewer is watching.")
shift_config = config.replace(model="shift", shift_epoch=int(shift_epoch))
# A position the user moves to trains at once; one they cancelled stays cancelled until they
# move away and back, or press the button below.
moved = st.session_state.get("shift_position") != shift_config.key()
st.session_state["shift_position"] = shift_config.key()
refusal = ""
started = jobs.needs_training(shift_config) and (moved or not jobs.has_job(shift_config))
if started:
    refusal = jobs.start(shift_config)
jobs.follow("shift", shift_config)   # the position moved away from is cancelled first
if started and not refusal:
    # Stage II trains in ~0.3 s at the defaults: drawn complete by this run, not a second later
    # by the live fragment (the spectra follow there).
    jobs.wait_for_training([shift_config])
if jobs.needs_training(shift_config) and not present.enabled():
    if st.button(f"Train the SHIFT run at epoch {int(shift_epoch)}", key="train-shift"):
        refusal = jobs.start(shift_config)
        if not refusal:
            st.rerun()
if refusal:
    st.error(refusal)
runs_config = {**base, "SHIFT": shift_config}
SWEEP = pd.read_csv(SWEEP_FILE) if SWEEP_FILE.exists() else None


def timing_panel(looped: RunData, shifted: RunData) -> None:
    """Training times and the speed-up, only from times measured the same way: the bundled
    sweep (every point timed together, median of repeats) or runs all trained in this server."""
    t_looped, t_shift = float(looped.records["seconds"].iloc[-1]), float(shifted.records["seconds"].iloc[-1])
    last_l, last_s = looped.records.iloc[-1], shifted.records.iloc[-1]
    # The bundled sweep timed the default configuration only.
    timing = verdicts.speedup_shown(SWEEP if config == RunConfig() else None, int(shift_epoch),
                                    jobs.all_trained_here(runs_config), t_looped, t_shift)
    # Two rows of two: four in a row truncated labels and values ("-1.4 …") in an 800 px window.
    a, b = st.columns(2)
    a.metric("pure Looped-Attn training", f"{t_looped:.2f} s")
    b.metric("SHIFT training (Stage I + II)", f"{t_shift:.2f} s")
    c, d = st.columns(2)
    c.metric("speed-up", timing[0], help=timing[1])
    d.metric("SHIFT − Looped accuracy",   # a longer label is cut at 800 px: the help says the rest
             f"{100 * (last_s['acc_all'] - last_l['acc_all']):+.1f} / "
             f"{100 * (last_s['acc_high'] - last_l['acc_high']):+.1f} pp",
             help="Final training accuracy of SHIFT minus pure Looped-Attn, in percentage points (pp): "
                  "all-IC / high-IC.")
    # Said on screen, not only on hover: the two times above are these runs' own, and the
    # speed-up may come from elsewhere (the sweep), so the three need not agree.
    st.caption(f"The two times are these runs' own training times; the speed-up ({timing[0]}) is {timing[1]}")
    S = int(shifted.config.shift_epoch)
    at = min(int(np.searchsorted(single.weight_epochs, S)), len(single.thetas) - 1)
    jump = switch_jump_at(config.to_json(), S, single.thetas[at])
    st.info(verdicts.shift_sentence(S, timing[2], last_s["acc_all"] - last_l["acc_all"],
                                    last_s["acc_high"] - last_l["acc_high"], jump, noise=TIMING_NOISE))
    st.caption(f"Speed-up: {timing[1]} Training time is the CPU time of the training thread (wall-clock on an "
               "idle core), evaluation excluded.")


@st.cache_data(max_entries=8, show_spinner=False)
def switch_jump_at(config_json: str, epoch: int, _theta) -> dict:
    """Single and Looped loss and gradient norm at the Single weights of the switch epoch (cached by epoch)."""
    return shift.switch_jump_of(config_json, _theta)


def shown_runs() -> dict[str, RunData]:
    """The page's runs that have records, by label (live ones as they are now)."""
    runs = {label: jobs.current_run(c) for label, c in runs_config.items()}
    return {label: run for label, run in runs.items() if run is not None and len(run.records)}


def curves() -> None:
    jobs.progress_panel({"SHIFT": shift_config})
    jobs.cancel_button({"SHIFT": shift_config}, st, key="cancel-shift", label="Cancel this SHIFT run")
    jobs.job_counts_caption()
    shown = shown_runs()
    bucket = st.radio("IC bucket", ("high", "low", "all"), horizontal=True, key="shift_bucket")
    marks = {name: epoch for name, epoch in (("SCP plateau", plateau), ("SCP shift", suggested)) if epoch is not None}
    present.chart(st, shift_plots.compare_accuracy_figure(shown, bucket, int(shift_epoch), marks), key="shift-acc")
    loss = plots.loss_figure(shown)
    style.vline(loss, x=int(shift_epoch), line=dict(color="#7b2cbf", dash="dot"), annotation_text="switch")
    style.hline(loss, y=float(np.log(3)), line=dict(color="#999", dash="dash"), annotation_text="ln 3: a uniform guess")
    present.chart(st, loss, key="shift-loss")


def landscape() -> None:
    shown = shown_runs()
    if "SHIFT" in shown and "Looped-Attn" in shown and shown["SHIFT"].status != "running":
        timing_panel(shown["Looped-Attn"], shown["SHIFT"])
    with_spectra = {label: run for label, run in shown.items() if len(run.spectrum_epochs)}
    if "SHIFT" in with_spectra:
        st.subheader("The landscape across the switch")
        left, right = st.columns(2)
        fig = plots.entropy_figure(with_spectra["SHIFT"], "SHIFT: entropy and mutual information")
        style.vline(fig, x=int(shift_epoch), line=dict(color="#7b2cbf", dash="dot"), annotation_text="switch")
        present.chart(left, fig, key="shift-entropy")
        present.chart(right, plots.kappa_figure(with_spectra, config.valley_delta), key="shift-kappa")


jobs.live_fragment(curves, {"SHIFT": shift_config})
if started:
    # The curves are on screen; a just-moved slider's spectra are done about a second after the
    # key. This run waits for them and draws the landscape complete, not the live fragment's next tick.
    jobs.wait_for_spectra([shift_config])
jobs.live_fragment(landscape, {"SHIFT": shift_config})

st.subheader("Efficiency over shift epochs")
if SWEEP is not None:
    sweep = SWEEP
    present.chart(st, shift_plots.sweep_shift_figure(sweep, suggested, int(shift_epoch)), key="shift-sweep")
    best = sweep.loc[sweep["speedup"].idxmax()]
    st.caption(f"Bundled `python -m loopviz sweep-shift` at the default configuration ({int(sweep['epoch'].max())} "
               f"epochs): pure Looped-Attn {sweep['looped_seconds'].iloc[0]:.2f} s (median of its repeats); best "
               f"speed-up ×{best['speedup']:.2f} at epoch {int(best['shift_epoch'])}, final accuracy gap "
               f"{100 * best['gap_acc_all']:+.1f} points (all-IC) / "
               f"{100 * best['gap_acc_high']:+.1f} points (high-IC). "
               f"{verdicts.shift_sweep_sentence(sweep, noise=TIMING_NOISE)} "
               "The paper reports ×1.26 for a shift between epochs 100 and "
               "150, without compromising final performance.")
else:
    st.warning("No bundled SHIFT sweep found (assets/sweep_shift.csv); README.md says how to make it.")


@st.cache_data(max_entries=8, show_spinner="Measuring Theorem 3 along the Single run…")
def theorem3(config_json: str, epochs: tuple[int, ...], _thetas) -> dict:
    return shift.theorem3_of(config_json, list(epochs), _thetas)


st.subheader("Theorem 3: a shared river upstream")
step = max(1, len(single.weight_epochs) // 60)
picked = single.weight_epochs[::step]
table = theorem3(base["Single-Attn"].to_json(), tuple(int(e) for e in picked), single.thetas[::step])
left, right = st.columns(2)
present.chart(left, shift_plots.alignment_figure(table), key="thm3-cos")
present.chart(right, shift_plots.assumption4_figure(table), key="thm3-assumption4")
negative = int(((table["inner_K"] < 0) | (table["inner_Q"] < 0)).sum())
st.caption(f"Along the Single run ({len(picked)} epochs), the W_K and W_Q gradient inner products are negative at "
           f"{negative} of them; Theorem 3 promises ≥ 0 only under Assumptions 4–5, whose distance is on the right.")
