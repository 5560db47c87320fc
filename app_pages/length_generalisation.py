"""Length generalisation (Sec. 4.4, App. E.1.3): the trained models predict the last token of
longer sequences. Figure 7 (IC distributions), Figure 9 (accuracy against length) and
Table 1 (accuracy on simple sequences) beside the paper's numbers."""
import numpy as np
import pandas as pd
import streamlit as st

from loopviz import shift as shift_rules
from loopviz import stats
from loopviz.toy import lengthgen
from loopviz.config import RunConfig
from loopviz.plots import length as plots
from loopviz.runs.format import RunData
from loopviz.ui import jobs
from loopviz.ui.config_sidebar import sidebar_config
from loopviz.ui.inputs import bounded_number
from loopviz.ui import present

st.title("Length generalisation: longer sequences, same transitions")
st.caption("Test sequences of length L use the training transitions T1, T2, T3 cyclically and are drawn exactly "
           "∝ P(X)² (forward–backward sampling on the chain, no enumeration of 3^L sequences). Every training "
           "sequence ends with T3; *last step T3* phases the cycle so that test sequences do too (like with like), "
           "*cyclic* starts it at x0, so L = 8, 11, 14, 17 end with T1, a rule the models were never trained to "
           "predict. A sequence is "
           "*simple* when its information content IC = −ln P(X) (nats) is at most the largest training IC. "
           "Models see the first L − 1 tokens and predict the last, with their final weights.")

config = sidebar_config(RunConfig())
pair = jobs.pair_controls(config)

# The lengths on a row of their own: beside three knobs (800 px) the chips ran out of sight.
lengths = st.multiselect("test lengths L", list(range(5, 21)), default=list(lengthgen.PAPER_LENGTHS),
                         key="len_lengths")
middle, right, last = st.columns(3)
n_test = bounded_number("N_test per length", 100, 50_000, lengthgen.PAPER_N_TEST, step=500, key="len_n", where=middle)
test_seed = bounded_number("test-set seed", 0, 1_000_000, 0, key="len_seed", where=right,
                           help="The draw also depends on the data seed and on L.")
last_step = last.radio("last step", lengthgen.LAST_STEPS, key="len_last_step",
                       help="T3: like with like (the default); cyclic: the paper's words read literally.")


@st.cache_data(max_entries=16, show_spinner="Sampling test sets and evaluating…")
def accuracy_tables(keys: tuple[str, ...], _runs: tuple[RunData, ...], lengths: tuple[int, ...], n: int,
             seed: int, last_step: str = "T3") -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Cached by the runs' config keys: only finished runs are evaluated, and those never change."""
    table = lengthgen.accuracy_table(_runs, lengths, n, seed, last_step=last_step)
    sets = lengthgen.test_sets(_runs[0], lengths, n, seed, last_step)
    return table, {L: s.ic for L, s in sets.items()}


def finished(run: RunData | None) -> bool:
    """A stored run (a live one is still changing its weights): complete or diverged, as the store keeps."""
    return run is not None and run.status in jobs.STORED_STATUSES


def shift_epoch_shown(single: RunData) -> int | None:
    """The shift epoch the SHIFT page shows: its slider's value in this session, else SCP's."""
    if "shift_epoch" in st.session_state:
        return int(st.session_state["shift_epoch"])
    return shift_rules.scp(single.records["val_loss"].to_numpy(), single.records["grad_norm"].to_numpy(),
                           wait=single.config.scp_wait)[1]


def table1_view(comparison: pd.DataFrame, table: pd.DataFrame):
    """Table 1 for the screen: short headers, percentages, and a dash in empty cells; each of our
    accuracies and simple shares with its 95 % Clopper–Pearson interval (from `table`, the full
    evaluation), beside the paper's bare numbers. The cells are strings: the browser's grid shows
    a missing value as "None" whatever a Styler's na_rep says."""
    labels = {"data": "data", "length": "L", "share_simple": "simple share", "paper_share_simple": "paper",
              "single_acc_simple": "Single", "paper_single_acc_simple": "paper Single",
              "looped_acc_simple": "Looped", "paper_looped_acc_simple": "paper Looped",
              "shift_acc_simple": "SHIFT", "bayes_simple": "Bayes", "threshold": "threshold (nats)",
              "last_step": "last step", "chance": "chance"}
    rows = table.set_index(["data", "length", "model"])
    places = list(zip(comparison["data"], comparison["length"]))

    def ours(value: float, low: float, high: float) -> str:
        return f"{100 * value:.1f} % ({100 * low:.1f}–{100 * high:.1f})" if pd.notna(value) else "—"

    shown = comparison.rename(columns=labels)
    for column in comparison.columns:
        label = labels.get(column)
        if column.endswith("_acc_simple") and not column.startswith("paper_"):
            model = column[: -len("_acc_simple")]
            bounds = [rows.loc[(d, n, model), ["acc_simple_low", "acc_simple_high"]] for d, n in places]
            shown[label] = [ours(v, *b) for v, b in zip(comparison[column], bounds)]
        elif column == "share_simple":
            first = table.groupby(["data", "length"])[["n", "n_simple"]].first()
            shares = [stats.share_of(int(first.loc[p, "n_simple"]), int(first.loc[p, "n"])) for p in places]
            shown[label] = [ours(v, c.low, c.high) for v, c in zip(comparison[column], shares)]
        elif column not in ("data", "length", "last_step", "threshold"):
            shown[label] = [f"{v:.1%}".replace("%", " %") if pd.notna(v) else "—" for v in comparison[column]]
    shown["threshold (nats)"] = [f"{v:.2f}" for v in shown["threshold (nats)"]]
    return shown


def body() -> None:
    jobs.progress_panel(pair)
    runs = {label: jobs.current_run(c) for label, c in pair.items()}
    missing = [label for label in pair if not finished(runs[label])]
    if missing:
        st.info(f"No finished run of {' and '.join(missing)} for this configuration yet: press **Train** in the "
                "sidebar to start one; the evaluation uses the final weights.")
        return
    shift_epoch = shift_epoch_shown(runs["Single-Attn"])
    # SHIFT's switch must lie inside the run: a run shorter than the shift epoch has no SHIFT.
    if shift_epoch is not None and 0 <= shift_epoch <= config.epochs:
        shift = jobs.current_run(config.replace(model="shift", shift_epoch=shift_epoch))
        if finished(shift):
            runs["SHIFT"] = shift
            st.caption(f"SHIFT is the run that switched to Looped-Attn at epoch {shift_epoch} (the SHIFT page's "
                       "slider, or SCP's epoch before you moved it).")
        else:
            st.caption(f"No finished SHIFT run switching at epoch {shift_epoch} (the SHIFT page's slider): open "
                       "the SHIFT page to train it, and it joins the comparison here.")
    for label, run in runs.items():
        if run.status == "diverged":
            st.warning(f"{label} diverged during training; its final weights are not a trained model.")
    if not lengths:
        st.info("Choose at least one test length.")
        return
    try:
        args = (tuple(r.config.key() for r in runs.values()), tuple(runs.values()), tuple(sorted(lengths)),
                int(n_test), int(test_seed))
        table, test_ic = accuracy_tables(*args, last_step)
        other = accuracy_tables(*args, "cyclic" if last_step == "T3" else "T3")[0]
    except lengthgen.LengthGenError as exc:
        st.error(f"Cannot evaluate these lengths: {exc}")
        return
    single = runs["Single-Attn"]
    threshold = lengthgen.simple_threshold(single.task)

    st.subheader("Figure 7: longer sequences carry more information")
    present.chart(st, plots.ic_distribution_figure(test_ic, single.task["train_ic"], threshold,
                                                 lengthgen.PAPER_THRESHOLD), key="len-ic")
    st.caption(lengthgen.threshold_sentence(threshold, table))

    st.subheader("Figure 9: accuracy against length")
    present.chart(st, plots.accuracy_vs_length_figure(table), key="len-acc")
    st.caption("The Bayes rule predicts argmax of the last transition's row given the second-to-last token: "
               f"the best any model can do in expectation; chance is 1/3. Last step here: {last_step}.")

    st.subheader("Table 1: accuracy on relatively simple sequences, ours beside the paper's")
    comparison = lengthgen.comparison_table(table)
    st.dataframe(table1_view(comparison, table), hide_index=True, key="len-table")
    st.caption("—: no simple sequence at that length (the paper's N/A) or no paper value. The paper's "
               "last row says L = 18, its text says 17. Ours in brackets: 95 % Clopper–Pearson intervals (over the "
               "simple sequences of that length for accuracies, over all N_test for the simple share); per-model "
               "totals are in the full table below.")
    t3, cyclic = (table, other) if last_step == "T3" else (other, table)
    st.info(lengthgen.reading_sentence(t3, cyclic))
    with st.expander("full table (every model, length and column)"):
        st.dataframe(table, hide_index=True, key="len-full")

    st.subheader("Downloads")
    slug = f"loopviz-length-{config.key()}-seed{int(test_seed)}-{last_step}"
    a, b, c = st.columns(3)
    a.download_button("table (CSV, as `length-gen` writes it)", lambda: table.to_csv(index=False), f"{slug}.csv",
                      "text/csv", key="len-dl-table", on_click="ignore")
    b.download_button("Table 1 beside the paper (CSV)", lambda: comparison.to_csv(index=False), f"{slug}-table1.csv",
                      "text/csv", key="len-dl-compare", on_click="ignore")
    ics = pd.DataFrame([(L, v) for L, values in test_ic.items() for v in values], columns=["length", "ic"])
    c.download_button("test-set IC values (CSV)", lambda: ics.to_csv(index=False), f"{slug}-ic.csv", "text/csv",
                      key="len-dl-ic", on_click="ignore")
    st.caption(f"The same table from the command line: `python -m loopviz length-gen --runs DIR --lengths "
               f"{','.join(map(str, sorted(lengths)))} --n {int(n_test)} --seed {int(test_seed)} "
               f"--last-step {last_step} --out table.csv`.")


jobs.live_fragment(body, pair)
