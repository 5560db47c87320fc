"""Algorithmic tasks (paper App. E.2, Fig. 14 a-e, Fig. 11): GPT-2-block Single-Attn,
Looped-Attn and SHIFT, trained on short inputs and tested on longer ones."""
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from loopviz.algo import rundir, summary
from loopviz.algo.config import MODELS, PRESETS, TASKS, preset
from loopviz.plots import algo as plots
from loopviz.ui import jobs, present

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "assets" / "algo"
FIRST = "bundled: parity"
USER_RUNS = Path(os.environ.get("LOOPVIZ_ALGO_RUNS", REPO / "runs" / "algo"))

st.title("Algorithmic tasks: Single vs Looped vs SHIFT")
st.caption("Paper App. E.2: decoder-only GPT-2 layers (pre-LayerNorm, causal multi-head attention, GELU MLP ×4, "
           "learned positions, or none with `--positions none`). **Single-Attn** predicts the whole output in one "
           "pass; **Looped-Attn** "
           "(FOP-Loop-Adaptive, after Fan et al. 2024) applies the same layers T = n times for an input of length n, "
           "loss at the last loop only, and picks its loop count at inference by the most confident output; "
           "**SHIFT** trains Single-Attn until the SHIFT Criterion with Patience fires, then continues the same "
           "weights as Looped-Attn. All three have the same parameters. Accuracy is exact match of the whole output.")


@st.cache_data(max_entries=32)
def load(path: str, stamp: float) -> rundir.AlgoRun:
    return rundir.read_run(Path(path))


def train_your_own() -> None:
    """Train your own: the three models as server jobs, and the same runs' command line. Drawn
    below the runs, and alone when there are none to show (then it is how one gets made)."""
    st.subheader("Train your own")
    preset_name = st.selectbox("preset", list(PRESETS), index=list(PRESETS).index("cpu"), key="algo_preset")
    task = st.selectbox("task", TASKS, key="algo_task")
    base = preset(preset_name, task=task)
    group = rundir.group_directory(USER_RUNS, base, preset_name)
    train_configs = {plots.LABELS[m]: base.replace(model=m) for m in MODELS}
    directories = {label: group / c.model for label, c in train_configs.items()}
    # The paper preset (50,001 steps at width 256) is the paper's GPU setting: a shared CPU server
    # does not train it. torch is imported for this check only when the user picks it.
    no_gpu = preset_name == "paper" and not jobs.cuda_available()
    if no_gpu:
        st.warning("The `paper` preset (width 256, AdamW lr 1e-4, 50,001 steps) needs a GPU, and this server's torch "
                   "sees none (`torch.cuda.is_available()` is false): it cannot train here. Run the command below on a "
                   "machine with a GPU, or pick `cpu`.")
    if not present.enabled():
        jobs.train_button(train_configs, st, key="algo_train", directories=directories, refused=no_gpu)

    def train_panel() -> None:
        """Live: each model's status, step/steps and ETA, and Cancel; where the runs went."""
        jobs.progress_panel(train_configs)
        jobs.cancel_button(train_configs, st, key="algo_cancel")
        if all(jobs.is_stored(d) for d in directories.values()):
            st.caption(f"These runs are stored in {group}; they are listed above as "
                       f"“yours: {group.relative_to(USER_RUNS)}”.")

    jobs.live_fragment(train_panel, train_configs)
    made = rundir.timings(BUNDLED, base)
    took = (f"The bundled runs with these settings took {min(w for w, _ in made) / 60:.0f}–"
            f"{max(w for w, _ in made) / 60:.0f} min each from start to finish, evaluation included "
            f"({min(t for _, t in made):.0f}–{max(t for _, t in made):.0f} s of it training), on the machine that made "
            "them; jobs here share this server's cores." if made else
            "No bundled run was made with these settings, so there is no measured time to show.")
    st.caption("Train runs Single-Attn, Looped-Attn and SHIFT as server jobs (SHIFT waits for the Single job and takes "
               f"its steps up to the switch as Stage I). {took} The same runs from the command line:")
    st.code(f"python -m loopviz algo run --task {task} --model single,looped,shift --preset {preset_name} "
            f"--out runs/algo/{task}-{preset_name}", language="bash")


groups = {**{f"bundled: {Path(g).name}": m for g, m in rundir.find_runs(BUNDLED).items()},
          **{f"yours: {Path(g).relative_to(USER_RUNS)}": m for g, m in rundir.find_runs(USER_RUNS).items()}}
if not groups:
    st.error(f"No algorithmic-task runs found in {BUNDLED} or {USER_RUNS}; Train below (or its command) makes one.")
    train_your_own()
    st.stop()
# Parity first when bundled: App. E.2's first task, and one every model fits at the cpu preset.
choice = st.selectbox("runs", list(groups), index=list(groups).index(FIRST) if FIRST in groups else 0, key="algo_group",
                      help="Bundled CPU-preset runs, and any `python -m loopviz algo run --out runs/algo/NAME` "
                           "of yours.")
runs: dict[str, rundir.AlgoRun] = {}
for model in ("single", "looped", "shift"):
    if model in groups[choice]:
        path = groups[choice][model]
        try:
            runs[model] = load(str(path), (path / "records.csv").stat().st_mtime)
        except rundir.RunFormatError as exc:
            st.warning(f"{model}: {exc}")
if not runs:
    train_your_own()
    st.stop()

first = next(iter(runs.values()))
config = first.config
params = {m: r.meta.get("params") for m, r in runs.items()}
st.markdown(f"**Task {config.task}**: trained on lengths {config.train_min_len}–{config.train_max_len}, tested on "
            f"{', '.join(map(str, config.test_lengths))}; width {config.width}, {config.heads} heads, depth "
            f"{config.depth}, {'learned positions' if config.positions == 'learned' else 'no position vectors'}, "
            f"AdamW lr {config.lr:g}, batch {config.batch_size}, {config.steps} steps; parameters "
            + ", ".join(f"{plots.LABELS[m]} {p:,}" for m, p in params.items() if p is not None) + ".")
for model, run in runs.items():
    if run.status != "complete":
        st.warning(f"{plots.LABELS[model]}: {run.status}. {run.meta.get('message', '')}")

shift_step = runs["shift"].meta.get("shift_step") if "shift" in runs else None
if "shift" in runs:
    st.caption(" ".join(filter(None, ("SHIFT — " + summary.switch_sentence(runs["shift"]),
                                      summary.stage_one_sentence(runs["shift"])))))

def pooled_text(pool) -> str:
    share, lo, hi, _ = pool
    return f"{share:.1%} ({lo:.1%}–{hi:.1%})"


def nope_sentence() -> str:
    """The same settings without position vectors, where such a group of runs is at hand."""
    for name, models in groups.items():
        try:
            other = {m: load(str(p), (p / "records.csv").stat().st_mtime) for m, p in models.items()}
        except rundir.RunFormatError:
            continue
        if "single" in other and "looped" in other and summary.same_but_positions(config, other["single"].config):
            pool = {m: summary.beyond_training(r) for m, r in other.items()}
            text = (f" Without them ({name}, otherwise the same settings), beyond the training lengths: "
                    + ", ".join(f"{plots.LABELS[m]} {pooled_text(p)}" for m, p in pool.items()) + "; Looped-Attn "
                    + ("does" if summary.verdict(pool["looped"], pool["single"]) else "does not")
                    + " generalise further than Single-Attn there")
            if "shift" in pool:
                text += ", SHIFT " + ("does" if summary.verdict(pool["shift"], pool["single"]) else "does not")
            return text + "."
    return ""


# ---------------------------------------------------------------- verdict
pooled = {m: summary.beyond_training(r) for m, r in runs.items()}
if "looped" in pooled and "single" in pooled:
    (lo_s, lo_lo, lo_hi, n_s), (si_s, si_lo, si_hi, _) = pooled["looped"], pooled["single"]
    numbers = (f"beyond the training lengths, Looped-Attn {lo_s:.1%} (95 % CI {lo_lo:.1%}–{lo_hi:.1%}) against "
               f"Single-Attn {si_s:.1%} ({si_lo:.1%}–{si_hi:.1%}), {n_s} test samples each")
    if summary.verdict(pooled["looped"], pooled["single"]):
        st.success(f"The paper's Fig. 14(c) shape appears: {numbers}.")
    else:
        why = ""
        if config.positions == "learned":
            why = (" With learned positions, the position vectors past the longest training sequence never receive a "
                   "gradient, so no model has been taught what those positions mean (`--positions none` drops them)."
                   + nope_sentence())
        st.warning(f"The paper's effect (Looped generalises to longer inputs, Single does not) does **not** appear in "
                   f"these runs: {numbers}.{why} The paper's claim is for width 256 and 50,001 steps on a GPU "
                   "(`--preset paper`).")
    if "shift" in pooled:
        st.caption(f"SHIFT beyond the training lengths: {pooled_text(pooled['shift'])}; by the same test "
                   f"(at least {summary.MIN_GAP * 100:.0f} points more, disjoint 95 % intervals) it "
                   + ("does" if summary.verdict(pooled["shift"], pooled["single"]) else "does not")
                   + " generalise further than Single-Attn (paper, Fig. 14(c): SHIFT comparable to Looped-Attn).")
    in_dist = {m: summary.final_train_accuracy(r) for m, r in runs.items()}
    st.caption("Final training accuracy (trained lengths, T as trained): paper, App. E.2.2 (a): near 100 % for all "
               "three; these runs: " + ", ".join(f"{plots.LABELS[m]} {a:.1%} (95 % CI {lo:.1%}–{hi:.1%}, {k} samples)"
                                                 for m, (a, lo, hi, k) in in_dist.items()) + ".")

# ---------------------------------------------------------------- curves
records = {m: r.records for m, r in runs.items()}
left, right = st.columns(2)
present.chart(left, plots.accuracy_figure(records, "train_acc", "Training accuracy (T as trained)", shift_step),
              key="algo-train")
present.chart(right, plots.accuracy_figure(records, "val_acc", "Validation accuracy (fresh samples)",
                                           shift_step), key="algo-val")

rule = st.radio("Looped inference", ("adaptive (most confident loop)", "T = n (the training rule)"), horizontal=True,
                key="algo_rule")
column = "acc" if rule.startswith("adaptive") else "oracle_acc"
tables = {m: summary.length_table(r) for m, r in runs.items()}
left, right = st.columns(2)
present.chart(left, plots.length_figure(tables, column, (config.train_min_len, config.train_max_len),
                                        f"Accuracy by test length ({rule.split(' (')[0]})"),
              key="algo-length")
present.chart(right, plots.loops_figure({m: t for m, t in tables.items() if m != "single"}), key="algo-loops")
with st.expander("Numbers per length"):
    st.dataframe(pd.concat({plots.LABELS[m]: t.set_index("length") for m, t in tables.items()}, axis=1),
                 width="stretch")

if "shift" in runs and "looped" in runs:
    st.subheader("SHIFT's saving (Fig. 11)")
    saving = summary.shift_saving(runs["looped"], runs["shift"])
    # Two rows of two: four in a row cut the labels in an 800 px window.
    a, b = st.columns(2)
    a.metric("pure Looped-Attn training", f"{saving['looped_seconds']:.1f} s")
    b.metric("SHIFT (Stage I + II)", f"{saving['shift_seconds']:.1f} s")
    c, d = st.columns(2)
    c.metric("speed-up", f"×{saving['speedup']:.2f}")
    shift_pool, looped_pool = pooled["shift"], pooled["looped"]
    d.metric("SHIFT − Looped accuracy",   # a longer label is cut at 800 px: the help says the rest
             f"{100 * (saving['shift_train_acc'] - saving['looped_train_acc']):+.1f} pp",
             help="Final training accuracy of SHIFT minus pure Looped-Attn, in percentage points. Beyond the "
                  "training lengths: SHIFT − Looped "
                  f"{100 * (shift_pool[0] - looped_pool[0]):+.1f} pp.")
    present.chart(st, plots.timing_figure(saving), key="algo-time")
    st.caption("Training time is the CPU time of the training thread (synchronised wall-clock on a GPU), evaluation "
               "excluded; the two runs were timed one after the other on a shared machine, so the ratio carries "
               "their timing noise. SHIFT's Stage I is the Single run's first steps exactly (same seeds and batches; "
               "reused, not retrained, when both are trained by one command).")

curves = {m: (r.curvature_steps, r.curvature_top) for m, r in runs.items() if len(r.curvature_steps)}
if curves:
    st.subheader("Curvature at the checkpoints")
    present.chart(st, plots.curvature_figure(curves, shift_step), key="algo-curv")
    st.caption("The largest Hessian eigenvalues of each model's own training loss (T = 1 or T = n) on a fixed batch, "
               "by Lanczos on Hessian-vector products (float64). A steeper valley for Looped-Attn (larger top "
               "eigenvalues) is what the River-V-Valley conjecture predicts; the top few eigenvalues alone cannot "
               "show the whole valley's shape. " + summary.curvature_sentence(curves, plots.LABELS))

train_your_own()
