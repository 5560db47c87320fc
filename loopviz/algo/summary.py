"""What the page reads off algorithmic-task runs (no torch): accuracy per length with
intervals, chance levels, the length-generalisation verdict, SHIFT's saving."""
from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from .rundir import AlgoRun
from .tasks import DEFAULT_ALPHABET

MIN_GAP = 0.10   # Looped must beat Single by 10 points beyond the training lengths, and by more than noise


def chance(task: str, n: int, alphabet: int = 0) -> float:
    """Exact-match accuracy of the best constant answer at length n (NaN where not closed-form).
    parity 1/2; copy a^-n; addition 2^-n (the most frequent sum, 2^n - 1, has 2^n of 4^n
    operand pairs); binary sum C(n, n//2)/2^n (the most frequent count of ones)."""
    a = alphabet or DEFAULT_ALPHABET[task]
    if task == "parity":
        return 0.5
    if task == "copy":
        return float(a) ** -n
    if task == "addition":
        return 2.0 ** -n
    if task == "binary_sum":
        return comb(n, n // 2) / 2.0 ** n
    return float("nan")


def interval(share: float, count: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of an accuracy measured on `count` samples."""
    if not np.isfinite(share) or count <= 0:
        return float("nan"), float("nan")
    ci = binomtest(int(round(share * count)), count).proportion_ci(level, method="exact")
    return float(ci.low), float(ci.high)


def length_table(run: AlgoRun, row: int = -1) -> pd.DataFrame:
    """Per test length at one record: accuracy (inference rule) with its 95 % interval,
    accuracy at T = n, loops chosen, chance, and whether the length was trained on."""
    config, rec = run.config, run.records.iloc[row]
    rows = []
    for n in config.test_lengths:
        acc = float(rec[f"acc_{n}"])
        lo, hi = interval(acc, config.eval_samples)
        rows.append({"length": n, "acc": acc, "lo": lo, "hi": hi, "oracle_acc": float(rec[f"oracle_acc_{n}"]),
                     "loops": float(rec[f"loops_{n}"]), "chance": chance(config.task, n, config.alphabet),
                     "trained": config.train_min_len <= n <= config.train_max_len})
    return pd.DataFrame(rows)


def beyond_training(run: AlgoRun, column: str = "acc", row: int = -1) -> tuple[float, float, float, int]:
    """Pooled accuracy over the test lengths longer than any training length:
    (share, low, high, samples), Clopper-Pearson 95 %."""
    table = length_table(run, row)
    longer = table[table["length"] > run.config.train_max_len]
    if longer.empty:
        return float("nan"), float("nan"), float("nan"), 0
    count = run.config.eval_samples * len(longer)
    share = float(longer[column].mean())
    lo, hi = interval(share, count)
    return share, lo, hi, count


def verdict(looped: tuple[float, float, float, int], single: tuple[float, float, float, int]) -> bool:
    """The paper's Fig. 14(c) shape: Looped's pooled accuracy beyond the training lengths
    exceeds Single's by at least MIN_GAP, with disjoint 95 % intervals."""
    return bool(np.isfinite(looped[0]) and np.isfinite(single[0]) and looped[0] - single[0] >= MIN_GAP
                and looped[1] > single[2])


def shift_saving(looped: AlgoRun, shift: AlgoRun) -> dict[str, float]:
    """Training seconds of pure Looped and of SHIFT (Stage I + II), their ratio (> 1: SHIFT
    is faster, paper Fig. 11), and the final accuracies."""
    t_looped = float(looped.records["seconds"].iloc[-1])
    t_shift = float(shift.records["seconds"].iloc[-1])
    return {"looped_seconds": t_looped, "shift_seconds": t_shift,
            "speedup": t_looped / t_shift if t_shift > 0 else float("nan"),
            "stage1_seconds": float(shift.records.loc[shift.records["phase"] == "single", "seconds"].max()),
            "looped_train_acc": float(looped.records["train_acc"].iloc[-1]),
            "shift_train_acc": float(shift.records["train_acc"].iloc[-1])}


# Paper Fig. 11 (App. E.2.2): the shift step of each task's SHIFT run, of 50,001 training steps.
PAPER_STEPS = 50_001
PAPER_SHIFT_STEP = {"parity": 30_000, "addition": 16_000, "copy": 17_000, "binary_sum": 31_000, "unique_set": 38_000}


def train_samples(config) -> int:
    """Samples behind one training (or validation) accuracy: eval_samples // lengths per training length."""
    lengths = config.train_max_len - config.train_min_len + 1
    return max(1, config.eval_samples // lengths) * lengths


def final_train_accuracy(run: AlgoRun) -> tuple[float, float, float, int]:
    """The last record's training accuracy (trained lengths, T as trained): (share, low, high, samples)."""
    count = train_samples(run.config)
    share = float(run.records["train_acc"].iloc[-1])
    return (share, *interval(share, count), count)


def switch_sentence(shift: AlgoRun) -> str:
    """What SHIFT's meta.json says about its switch, in words, with the paper's Fig. 11 step beside it.

    SCP (Sec. 5): E_plateau where the best validation loss so far fell by less than δ1 over
    p evaluations (or the loss itself, `scp_plateau = window`), E_shift = E_plateau + W.
    The gradient norm's relative spread over the last p evaluations at the switch is
    reported against δ2 = 0.1 as the paper's stabilisation check, not a condition."""
    from ..shift import SCP_DEFAULTS, gradient_spread

    c, meta, records = shift.config, shift.meta, shift.records
    step, rule, plateau = meta.get("shift_step"), meta.get("shift_rule"), meta.get("plateau_step")
    if step is None:
        return "SHIFT never switched: the run is shorter than SCP's window and the half-way fallback."
    test = "best validation loss so far" if c.scp_plateau == "best" else "validation loss"
    every = c.eval_every
    if rule == "scp":
        stage1 = records[records["phase"] == "single"]
        spread = gradient_spread(stage1["grad_norm"].to_numpy(), len(stage1) - 1, c.scp_window)
        text = (f"SCP (Sec. 5): the {test} fell by less than δ1 = {c.scp_delta1:g} over p = {c.scp_window} "
                f"evaluations ({c.scp_window * every} steps) at step {plateau} (E_plateau); after the patience "
                f"W = {c.scp_patience} evaluations SHIFT switched at step {step} = {step / c.steps:.0%} of "
                f"{c.steps} steps. The gradient norm's relative spread over the last p evaluations then was "
                f"{spread:.2f} ({'below' if spread < SCP_DEFAULTS['delta2'] else 'not below'} the toy's "
                f"δ2 = {SCP_DEFAULTS['delta2']:g}; the paper's rule waits W, it does not test δ2)")
    elif rule == "fixed":
        text = f"switch fixed at step {step} by the config ({step / c.steps:.0%} of {c.steps} steps), not by SCP"
    else:
        found = (f"its plateau at step {plateau} plus W = {c.scp_patience} evaluations lies past the run's end"
                 if plateau is not None else f"the {test} never stopped falling by δ1 = {c.scp_delta1:g} "
                                             f"over p = {c.scp_window} evaluations")
        text = (f"**not the paper's rule**: SCP never fired on the Single run ({found}), so as a last resort "
                f"SHIFT switched half-way, at step {step}")
    paper = PAPER_SHIFT_STEP.get(c.task)
    if paper is not None:
        text += (f". Paper, Fig. 11: shift step {paper // 1000}k of {PAPER_STEPS:,} steps "
                 f"({paper / PAPER_STEPS:.0%}) on this task")
    return text + "."


def stage_one_sentence(shift: AlgoRun) -> str:
    """Where SHIFT's Stage I came from (meta.json's stage_one, stage_one_note), in words; empty
    for runs made before it was recorded (the bundled ones: their Stage I was the Single run in memory)."""
    source, note = shift.meta.get("stage_one"), shift.meta.get("stage_one_note")
    if source is None:
        return ""
    if source == "trained":
        return "Stage I was trained again for this run" + (f" ({note})" if note else "") + "."
    if source.endswith("handoff.npz"):
        return f"Stage I is the stored Single run's steps, read from {source}, not trained again."
    return "Stage I is the Single run's own steps, handed over in memory, not trained again."


def curvature_sentence(curves: dict[str, tuple[np.ndarray, np.ndarray]], labels: dict[str, str]) -> str:
    """The largest Hessian eigenvalue of each run at its last checkpoint, and at how many
    checkpoints after step 0 (shared by both runs) Looped-Attn's exceeds Single-Attn's: the
    River-V-Valley conjecture (Sec. 4.2) predicts a steeper valley for Looped-Attn."""
    last = {m: (int(steps[-1]), float(np.max(top[-1]))) for m, (steps, top) in curves.items() if len(steps)}
    if not last:
        return ""
    text = "Largest eigenvalue at the last checkpoint: " + ", ".join(
        f"{labels[m]} {value:.3g} (step {step})" for m, (step, value) in last.items()) + "."
    if "single" in curves and "looped" in curves:
        (s_steps, s_top), (l_steps, l_top) = curves["single"], curves["looped"]
        shared = sorted(set(s_steps.tolist()) & set(l_steps.tolist()) - {0})
        if shared:
            s_max = {int(k): float(np.max(v)) for k, v in zip(s_steps, s_top)}
            l_max = {int(k): float(np.max(v)) for k, v in zip(l_steps, l_top)}
            above, n = sum(l_max[k] > s_max[k] for k in shared), len(shared)
            text += f" Looped-Attn's exceeds Single-Attn's at {above} of the {n} checkpoints after step 0"
            if above < n:
                text += " (not the uniformly steeper valley the conjecture predicts)."
            else:
                # On exchangeable (noise) curves all n would be above with probability 2^-n.
                p = binomtest(above, n, 0.5, alternative="greater").pvalue
                text += (f" (the steeper valley the conjecture predicts; one-sided sign test p = {p:.2g}"
                         + (f", so with {n} checkpoints of one seed this could be chance)." if p >= 0.05 else
                            "; checkpoints of one run are not independent, so read it as a hint)."))
    return text


SIBLING_IGNORES = ("positions", "checkpoints", "hessian_top", "hessian_samples", "device", "model")


def same_but_positions(a, b) -> bool:
    """Whether two configs differ at most in positions and in what is only recorded
    (checkpoints, curvature, device), with `b` the NoPE one: the comparison the
    learned-positions warning makes."""
    strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in SIBLING_IGNORES}  # noqa: E731
    return b.positions == "none" and a.positions != "none" and strip(a) == strip(b)
