"""Spectrum evolution (Observations 1–2): accuracy by IC bucket, loss, Hessian entropy and
mutual information with phases, valley shape, and the eigenspectrum through epochs."""
from pathlib import Path

import dataclasses

import pandas as pd
import streamlit as st

from loopviz import curvature, stats, verdicts
from loopviz.toy import markov
from loopviz.config import RunConfig
from loopviz.plots import training as plots
from loopviz.runs.format import RunData
from loopviz.sweeps import summarise_seed_sweep, summary_line
from loopviz.ui import jobs
from loopviz.ui.config_sidebar import load_seed, selected_seed, sidebar_config, warn_refused_int
from loopviz.ui.downloads import run_downloads
from loopviz.ui import present

SWEEP_FILE = Path(__file__).resolve().parent.parent / "assets" / "sweep_seeds.csv"
PAPER_HIGH_BEFORE, PAPER_HIGH_AFTER = 0.4465, 0.5472   # Looped-Attn, high-IC, epochs 150 → 600 (Sec. 4.1)
DEFAULT_EPOCH = 150   # the paper's "before" epoch (Sec. 4.1)

st.title("Spectrum evolution: Single-Attn against Looped-Attn")
st.caption("Markov language task (paper App. E.1): predict x3 from (x0, x1, x2). Information content "
           "IC = −ln P(X) in nats; low = IC ≤ the training set's 40 % quantile, high = IC ≥ its 60 % quantile "
           "(copies of one sequence never straddle a threshold, so the shares are not exactly 40 %).")

config = sidebar_config(RunConfig())
pair = jobs.pair_controls(config)


def open_selected_seed() -> None:
    """Callback of the sweep scatter: load the clicked seed into the sidebar."""
    seed = selected_seed(st.session_state["sweep-scatter"]["selection"])
    if seed is not None:
        load_seed(seed)


def bayes(run: RunData) -> dict[str, float]:
    t = run.task
    return markov.bayes_bucket_accuracy(t["transitions"], t["train_inputs"], t["train_targets"], t["train_bucket"])


def verdict_panel(single: RunData, looped: RunData) -> None:
    """Observation 1 from this run's numbers: faster, higher or neither (verdicts.py), on training and
    held-out high-IC accuracy, at the run's end and, when it runs longer, at the paper's 600 epochs."""
    s, l = single.records, looped.records
    n = min(len(s), len(l))
    horizons = [int(s["epoch"].iloc[n - 1])]
    if horizons[0] > verdicts.PAPER_EPOCHS:
        horizons.append(verdicts.PAPER_EPOCHS)
    lines, reach = [], []
    for column, what in (("acc_high", "high-IC training accuracy"), ("val_acc_high", "high-IC held-out accuracy")):
        for horizon in horizons:
            v = verdicts.compare(s["epoch"].iloc[:n], s[column].iloc[:n], l[column].iloc[:n], horizon=horizon)
            lines.append(f"- **{v.word}** (to epoch {horizon}): {v.sentence(what)}")
            if horizon == horizons[0]:
                reach.append((what, v))
    st.info("**Is Looped-Attn faster, higher, or neither?** The paper reports Looped-Attn rising from "
            f"{PAPER_HIGH_BEFORE:.2%} to {PAPER_HIGH_AFTER:.2%} on high-IC sequences after epoch 150 while "
            "Single-Attn stays flat (Observation 1, 600 epochs). This run:\n" + "\n".join(lines))
    present.chart(st, plots.reach_figure(reach, verdicts.PAPER_EPOCHS), key="time-to-reach")


def bucket_caption(run: RunData) -> str:
    """The actual bucket shares of this run's training and validation draws, with intervals."""
    t = run.task
    parts = [f"{split}: low {stats.share(t[f'{split}_bucket'] == 0).text()}, high "
             f"{stats.share(t[f'{split}_bucket'] == 2).text()}" for split in ("train", "val")]
    return "Bucket shares — " + "; ".join(parts) + "."


@st.cache_data(max_entries=16, show_spinner=False)
def with_observation2(key: str, n_spectra: int, definition: str,
                      _run: RunData) -> tuple[RunData, curvature.Observation2]:
    """The run with entropy, MI and phases recomputed from its spectra under `definition`
    (curvature.observation2); cached by (config key, spectra so far, definition)."""
    c = _run.config
    found = curvature.observation2(_run.eigenvalues, _run.spectrum_epochs, _run.records["epoch"].to_numpy(),
                                   definition, curvature.log_bin_edges(c.entropy_bins, c.entropy_min, c.entropy_max))
    return dataclasses.replace(_run, records=_run.records.assign(**found.columns)), found


def comparable(single: RunData | None, looped: RunData | None) -> bool:
    """Both runs finished (complete, not mid-run or cancelled) at the same last epoch."""
    return (single is not None and looped is not None and single.status == looped.status == "complete"
            and len(single.records) > 0 and single.records["epoch"].iloc[-1] == looped.records["epoch"].iloc[-1])


def assumption_panel(single: RunData, looped: RunData, epoch: int) -> None:
    c = looped.config
    check = curvature.assumption1(single.spectrum_at(epoch), looped.spectrum_at(epoch), c.river_eps,
                                  c.low_curvature_tau)
    a, b, d = st.columns([1.15, 1.15, 0.7])   # the short verdict gives room to the long labels (800 px)
    a.metric("m1 (Single, valley λ ≤ τ)", check.m1)
    b.metric("m2 (Looped, valley λ ≤ τ)", check.m2)
    d.metric("Assumption 1", "holds" if check.holds else "fails")
    st.caption(f"(a) dimension m2 > m1: {'yes' if check.dimension else 'no'}; (b) dominance, the m1 smallest "
               f"Looped valley eigenvalues below Single's: {'yes' if check.dominance else 'no'} "
               f"(ε = {c.river_eps:g}, τ = {c.low_curvature_tau:g}).")


PLAY_KEY = "spectrum_playing"
PLAY_FRAMES = 120  # ▶ play steps through about this many spectra from the cursor to the end,
PLAY_TICK = 0.3    # one every this many seconds: ~3 frames/s, the whole run in ~36 s (bench/bench_play.py)


def epoch_cursor(with_spectra: dict[str, RunData]) -> int:
    """The page's one epoch cursor (`?epoch=` in the URL) and ▶ play, which moves it; returns
    the epoch of the spectra to show: the last computed (for every model) at or before the
    cursor. Its range is the configured epochs, so it stands still while a live run streams."""
    per_run = [set(int(e) for e in run.spectrum_epochs) for run in with_spectra.values()]
    computed = sorted(set.intersection(*per_run) or per_run[0])
    last = computed[-1]
    if st.session_state.get(PLAY_KEY):  # advance before the slider is drawn, so the slider shows it
        cursor = int(st.session_state.get("epoch", DEFAULT_EPOCH))
        step = max(1, config.epochs // PLAY_FRAMES)
        later = [e for e in computed if e >= cursor + step]
        st.session_state["epoch"] = later[0] if later else last
        if not later:
            st.session_state[PLAY_KEY] = False
    warn_refused_int("epoch", 0, config.epochs, min(DEFAULT_EPOCH, config.epochs))
    epoch = st.slider("epoch", 0, config.epochs, value=min(DEFAULT_EPOCH, config.epochs), key="epoch",
                      bind="query-params", persist_state="session",
                      help="One cursor for the spectra, their titles and Assumption 1 below; ▶ play moves it.")
    playing = st.session_state.get(PLAY_KEY, False)
    if st.button("❚❚ pause" if playing else f"▶ play from epoch {epoch}", key="spectrum_play"):
        st.session_state[PLAY_KEY] = not playing
        if not playing and epoch >= last:
            st.session_state["epoch"] = 0  # at the end, play starts over
        st.rerun()
    shown = max([e for e in computed if e <= epoch] or [computed[0]])
    if shown != epoch:
        st.caption(f"No spectrum at epoch {epoch}" + (f" yet (computed up to {last})" if epoch > last else "") +
                   f": showing epoch {shown}, the last one computed at or before it.")
    return shown


def runs_now() -> dict[str, RunData]:
    """The pair's runs that exist, by label (live ones as they are now)."""
    runs = {label: jobs.current_run(c) for label, c in pair.items()}
    return {label: run for label, run in runs.items() if run is not None}


def observations() -> None:
    jobs.progress_panel(pair)
    shown = runs_now()
    if not shown:
        st.info("No run for this configuration yet: press **Train** in the sidebar to start one.")
        return
    single, looped = shown.get("Single-Attn"), shown.get("Looped-Attn")
    if comparable(single, looped):
        verdict_panel(single, looped)
    elif single is not None and looped is not None:
        st.caption("The verdict on the paper's effect waits until both runs have finished at the same epoch.")

    st.subheader("Observation 1: accuracy by information content")
    columns = st.columns(len(shown))
    for column, (label, run) in zip(columns, shown.items()):
        marks = {"paper's 600": verdicts.PAPER_EPOCHS} if run.config.epochs > verdicts.PAPER_EPOCHS else None
        present.chart(column, plots.bucket_accuracy_figure(run, f"{label}: train (solid), validation (dashed)",
                                                           bayes(run), marks), key=f"acc-{label}")
    st.caption(bucket_caption(next(iter(shown.values()))))
    present.chart(st, plots.loss_figure(shown), key="loss")

    st.subheader("Observation 2: Hessian matrix entropy, mutual information and phases")
    with_spectra = {label: run for label, run in shown.items() if len(run.spectrum_epochs)}
    if not with_spectra:
        st.info("No spectra yet (they follow the training curves, or hessian_every is 0).")
        return
    definition = st.radio("p(|λ|) for entropy and MI", curvature.ENTROPY_DEFINITIONS, horizontal=True,
                          index=curvature.ENTROPY_DEFINITIONS.index(config.entropy_definition), key="entropy_def",
                          help="histogram: shares of |λ| in 40 log bins; spectral: p_i = |λ_i| / Σ|λ| (the "
                               "paper's formula read literally).")
    columns = st.columns(len(with_spectra))
    sentences = []
    for column, (label, run) in zip(columns, with_spectra.items()):
        shown_run, found = with_observation2(run.config.key(), len(run.spectrum_epochs), definition, run)
        present.chart(column, plots.entropy_figure(shown_run, label), key=f"entropy-{label}")
        sentences.append(found.sentence(label, run.spectrum_epochs))
    st.caption("Observation 2's shape depends on this choice: the paper writes p(|λ_i|) without saying what it "
               "is, and the two readings give different curves and different phases. Phases are shaded only "
               "where a permutation test against time-shuffled curves finds structure (α = "
               f"{curvature.PHASE_ALPHA:g}); " + " ".join(sentences))
    present.chart(st, plots.kappa_figure(with_spectra, config.valley_delta), key="kappa")
    shapes = []
    for label, run in with_spectra.items():
        rec = run.records.dropna(subset=["kappa_valley"])
        share_u = stats.share(rec["valley_shape"] == "U")
        shapes.append(f"{label} is U-shaped at {share_u.text()} of its spectra "
                      f"(final κ = {rec['kappa_valley'].iloc[-1]:.3g})"
                      if len(rec) else f"{label} has no valley yet")
    st.caption("By Definition 1 (U when κ ≤ 1 + δ = " + f"{1 + config.valley_delta:g}): " + "; ".join(shapes) +
               ". Conjecture 1 expects Single-Attn's valley to be U-shaped; compare the two curves' levels.")


def eigenspectra() -> None:
    shown = runs_now()
    with_spectra = {label: run for label, run in shown.items() if len(run.spectrum_epochs)}
    if with_spectra:
        st.subheader("The eigenspectrum through training")
        epoch = epoch_cursor(with_spectra)
        y_max = max(plots.largest_bin(run) for run in with_spectra.values())   # one scale for every frame
        columns = st.columns(len(with_spectra))
        for column, (label, run) in zip(columns, with_spectra.items()):
            present.chart(column, plots.eigenspectrum_figure(run, epoch, config.river_eps, config.low_curvature_tau,
                                                             y_max), key=f"spectrum-{label}")
        if len(with_spectra) == 2:
            assumption_panel(with_spectra["Single-Attn"], with_spectra["Looped-Attn"], epoch)
    if shown:
        st.subheader("Downloads")
        for label, run in shown.items():
            run_downloads(label, run)


# Two fragments: the observations redraw while a run trains; the eigenspectra (the epoch cursor)
# also while ▶ play moves it, or when the cursor is scrubbed, and then alone.
jobs.live_fragment(observations, pair)
jobs.live_fragment(eigenspectra, pair, also_while=lambda: st.session_state.get(PLAY_KEY, False),
                   every=PLAY_TICK if st.session_state.get(PLAY_KEY) else 1.0)

st.divider()
st.subheader("Reproduction: how often does the effect appear?")
if SWEEP_FILE.exists():
    sweep = pd.read_csv(SWEEP_FILE)
    sweep_epochs = int(sweep["looped_epoch"].max())
    st.markdown(f"**{summary_line(summarise_seed_sweep(sweep))}** (bundled `python -m loopviz sweep-seeds` "
                f"at the default configuration but {sweep_epochs} epochs, one point per seed, spectra off).")
    left, right = st.columns(2)
    present.chart(left, plots.gap_histogram(sweep), key="sweep-hist")
    present.chart(right, plots.sweep_figure(sweep, RunConfig().seed),
                       key="sweep-scatter", on_select=open_selected_seed, selection_mode="points")
    st.caption("The paper reports no Looped − Single gap to draw here (its 54.72 % − 44.65 % is Looped-Attn's own "
               "gain after epoch 150), so none is drawn. The star is the default run's seed. A training gain "
               "without a validation gain is memorisation of the draw. Click a point to load that seed in the "
               "sidebar (then Train it).")
else:
    st.warning("No bundled seed sweep found (assets/sweep_seeds.csv); README says how to make it.")
