"""Home: what the paper claims, what each page shows, and the bundled run at a glance."""
from pathlib import Path

import pandas as pd
import streamlit as st

from loopviz import shift, stats, verdicts
from loopviz.config import RunConfig
from loopviz.plots import shift as shift_plots
from loopviz.plots import training as plots
from loopviz.sweeps import shift_timing_noise
from loopviz.ui import jobs
from loopviz.ui import present

SWEEP_FILE = Path(__file__).resolve().parent.parent / "assets" / "sweep_seeds.csv"
SHIFT_SWEEP_FILE = SWEEP_FILE.parent / "sweep_shift.csv"

st.title("loopviz: why looped transformers learn what single-pass ones do not")
st.markdown(
    """
An interactive reproduction of *What Makes Looped Transformers Perform Better Than Non-Recursive Ones*
(Gong, Teng, Liu). The paper trains two toy models on a synthetic Markov language task —
**Single-Attn** (one linear-attention layer) and **Looped-Attn** (the same layer applied T = 3 times) —
and makes the claims below; beside each, what the bundled default runs of this app measure.
Every number here is computed: training runs and exact Hessian spectra (float64) stream in live.
"""
)
st.markdown(
    """
**Pages**
- **Spectrum evolution** — accuracy by information content, loss, matrix entropy and mutual information
  with the detected phases, the valley condition number, the eigenspectrum through epochs, Assumption 1,
  and how often the effect appears over seeds. Change the sidebar settings and press *Train* to run live.
- **River valleys** — the quadratic river-valley model of Theorems 1–2: U- against V-valley, the
  cumulative force and its bound, valley hopping animated.
- **SHIFT** — pick the switch epoch with a slider (SCP suggests one) and watch Stage II train; speed-up and
  final accuracy against pure Looped-Attn over all shift epochs; Theorem 3's gradient alignment, measured.
- **Length generalisation** — Table 1 and Figures 7 and 9: the trained models on sequences of length
  8 to 17, drawn exactly ∝ P(X)² by forward–backward sampling.
- **Landscape** — the exact loss on a plane through the run with every model's path, sharpness against
  the stability thresholds 2/η and 38/η (Adam), and the Hessian per weight matrix; GIF/MP4 export.
- **Where does it hold?** — the bundled atlas: over a grid of configurations × seeds, how often Looped-Attn
  is faster or higher than Single-Attn, with intervals.
- **Algorithmic tasks** — the paper's App. E.2: GPT-2-block Single, Looped and SHIFT on Parity and Copy at
  CPU scale, accuracy against test length and the loops chosen.
"""
)



def lecture_links(scp_epoch: int | None) -> str:
    """Ready links that open a page in a given state, in presenter mode (every knob is in the URL)."""
    links = [("Observation 1 at the paper's horizon (epoch 600), spectra at that epoch",
              "spectrum?present=1&epoch=600"),
             ("Watch the spectrum evolve: press ▶ play from epoch 0", "spectrum?present=1&epoch=0"),
             ("Valley hopping in a V valley (η λ_max = 1.8: the steepest direction flips sign every step)",
              "river-valley?present=1&eta=1.8&direction=steepest"),
             ("U against V without hopping (η = 0.5)", "river-valley?present=1&eta=0.5"),
             ("SHIFT early, at epoch 50 (its speed-up is in the bundled sweep)", "shift?present=1&shift_epoch=50")]
    if scp_epoch is not None:
        links.insert(4, (f"SHIFT at the SCP epoch ({scp_epoch})", f"shift?present=1&shift_epoch={scp_epoch}"))
    return "\n".join(f"- [{text}](./{target})" for text, target in links)


@st.cache_data(max_entries=8, show_spinner=False)
def claims_of(*records_and_sweeps) -> list[tuple[str, str]]:
    """verdicts.home_claims, kept per content of its inputs (hashed by Streamlit: a live run's
    growing records are new inputs). Its phase tests take ~0.3 s, a third of Home's script run."""
    return verdicts.home_claims(*records_and_sweeps)


config = RunConfig()
single, looped = jobs.current_run(config.replace(model="single")), jobs.current_run(config.replace(model="looped"))
if single is not None and looped is not None:
    _, scp_epoch = shift.scp(single.records["val_loss"].to_numpy(), single.records["grad_norm"].to_numpy(),
                             wait=config.scp_wait)
    shifted = jobs.current_run(config.replace(model="shift", shift_epoch=scp_epoch)) if scp_epoch is not None else None
    shift_sweep = pd.read_csv(SHIFT_SWEEP_FILE) if SHIFT_SWEEP_FILE.exists() else None
    noise = shift_timing_noise(SHIFT_SWEEP_FILE)
    seed_sweep = pd.read_csv(SWEEP_FILE) if SWEEP_FILE.exists() else None
    claims = claims_of(single.records, looped.records, shifted.records if shifted is not None else None,
                       seed_sweep, shift_sweep,
                       shift.speedup(float(looped.records["seconds"].iloc[-1]),
                                     float(shifted.records["seconds"].iloc[-1])) if shifted is not None else None,
                       noise)
    st.subheader("The paper's claims, and ours beside them")
    for number, (paper, ours) in enumerate(claims, 1):
        st.markdown(f"{number}. **The paper:** {paper}  \n   **The bundled runs:** {ours}")
    st.subheader("The bundled default run")
    s, l = single.records.iloc[-1], looped.records.iloc[-1]
    # Two rows of two (train, then validation): three in a row cut the labels at 800 px.
    for split, name, where in (("acc_high", "train", "training"), ("val_acc_high", "val.", "held-out validation")):
        a, b = st.columns(2)
        a.metric(f"Single, high-IC {name}", f"{s[split]:.1%}",
                 help=f"Single-Attn's final accuracy on the high-information-content {where} samples.")
        b.metric(f"Looped, high-IC {name}", f"{l[split]:.1%}", f"{100 * (l[split] - s[split]):+.1f} pp",
                 help=f"Looped-Attn's final accuracy on the high-information-content {where} samples; below it, "
                      "Looped − Single: a difference of two accuracies in percentage points (pp). Each accuracy's "
                      "95 % interval is below the chart.")
    present.chart(st, shift_plots.compare_accuracy_figure({"Single-Attn": single, "Looped-Attn": looped}, "high", None),
                  key="home-acc")
    task = single.task
    n_high, n_val_high = int((task["train_bucket"] == 2).sum()), int((task["val_bucket"] == 2).sum())
    st.caption("High-IC accuracy of both models: training (solid) and held-out validation (dashed). At the final "
               "epoch, as shares with 95 % intervals — Single-Attn "
               f"{stats.share_of(round(s['acc_high'] * n_high), n_high).text()}, Looped-Attn "
               f"{stats.share_of(round(l['acc_high'] * n_high), n_high).text()} (training); validation "
               f"{stats.share_of(round(s['val_acc_high'] * n_val_high), n_val_high).text()} and "
               f"{stats.share_of(round(l['val_acc_high'] * n_val_high), n_val_high).text()}. "
               f"d = {config.d}, T = {config.loops}, {config.epochs} epochs, Adam lr {config.lr:g}, "
               f"seed {config.seed}, data seed {config.data_seed}.")
    st.markdown(verdicts.loss_gap_sentence(float(l["loss"]), float(l["val_loss"]), looped.task))
    with st.expander("the loss curves"):
        present.chart(st, plots.loss_figure({"Single-Attn": single, "Looped-Attn": looped}), key="home-loss")
    if seed_sweep is not None:
        summary = stats.seed_sweep_summary(seed_sweep)
        st.warning(f"This seed was chosen because it shows the paper's shape at 600 epochs. Over {summary['runs']} "
                   f"seeds of the same configuration ({int(seed_sweep['looped_epoch'].max())} epochs) the Looped − "
                   f"Single high-IC gap is ≥ +4 points in {summary['up'].text()} of them (mean "
                   f"{summary['gap_acc_high'].text()}): see the Spectrum evolution page.")
else:
    st.warning("The bundled default run is missing from assets/default; README.md says how to regenerate it.")
    scp_epoch = None

st.subheader("For a lecture")
st.markdown("Each link opens a page in that state in presenter mode (`?present=1`: no sidebar, larger text; "
            "every knob is in the URL, so a link is the whole view).\n\n" + lecture_links(scp_epoch))
