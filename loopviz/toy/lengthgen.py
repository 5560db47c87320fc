"""Length generalisation (paper Sec. 4.4, App. E.1.3, Table 1, Figures 7 and 9).

Trained models predict the last token of longer sequences drawn from the same
T1, T2, T3 applied cyclically, ∝ P(X)^α, N_test per length. Which transition the
last step uses is the construction's crux: every training sequence (L = 4) ends with T3,
and "applied cyclically" from x0 makes L = 8, 11, 14, 17 end with T1 — a rule the models
never had to predict with. `last_step="T3"` phases the cycle so that the last transition
is T3 (like with like; the default), `"cyclic"` keeps the literal reading. A test sequence is
"simple" when its IC is at most the largest IC of the training set (the paper's
threshold was 14.57 nats). Per model and length we report the share of simple
sequences, total accuracy, accuracy on simple sequences, and the Bayes rule's
accuracy (argmax of the last transition's row given the second-to-last token) as
the honest ceiling, and chance (1/V) as the floor; every accuracy is a share of n, with
its Clopper–Pearson interval (`accuracy_table`). `evaluate_run_dirs` does the work of the
`length-gen` CLI command (registered in loopviz/__main__.py), which writes the same table.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import stats
from . import gradient, markov
from .embedding import make_embedding
from ..config import MODELS, overwrite_refused
from ..runs.format import RunData, RunFormatError, read_run

PAPER_LENGTHS = (8, 11, 14, 17)
PAPER_N_TEST = 5000
PAPER_THRESHOLD = 14.57
MAX_LENGTH = 200
MAX_N = 50_000      # test sequences per length (the page's limit too)
# The test sets' own seed stream: markov uses [data_seed, 0..2], models [.., 10..20].
_TEST_STREAM = 30
LAST_STEPS = ("T3", "cyclic")
COLUMNS = ("data", "length", "last_step", "model", "n", "n_simple", "share_simple", "acc_total", "acc_total_low",
           "acc_total_high", "acc_simple", "acc_simple_low", "acc_simple_high", "chance", "bayes_total",
           "bayes_simple", "threshold")

# Table 1 as printed: accuracy on simple sequences; NaN where the paper has N/A. Its last
# row says L = 18, the text says 17 (App. E.1.3); we key it by 17.
PAPER_TABLE1 = pd.DataFrame({
    "length": [4, 8, 11, 14, 17],
    "share_simple": [1.0, 0.995, 0.645, 0.0, 0.0],
    "single": [0.6925, 0.5283, 0.5557, np.nan, np.nan],
    "looped": [0.7229, 0.6278, 0.7028, np.nan, np.nan],
})


class LengthGenError(ValueError):
    """A length cannot be evaluated (e.g. the embedding has no vector for a position)."""


@dataclass(frozen=True)
class TestSet:
    """One length's test sequences [n, length] and their IC [n] (nats)."""

    length: int
    sequences: np.ndarray
    ic: np.ndarray


def simple_threshold(task: dict[str, np.ndarray]) -> float:
    """The fixed complexity threshold of App. E.1.3: the maximum IC of the training sequences."""
    return float(np.max(task["train_ic"]))


def is_simple(ic: np.ndarray, threshold: float) -> np.ndarray:
    """'Relatively simple' = IC ≤ threshold (the paper's IC ≤ 14.57, inclusive)."""
    return np.asarray(ic) <= threshold


def phased_transitions(transitions: np.ndarray, length: int, last_step: str = "T3") -> np.ndarray:
    """The transitions in the order a sequence of `length` uses them (step j uses entry (j − 1) mod K).

    cyclic: T1, T2, T3, T1, … from x0, as App. E.1.3 words it. T3: the cycle rolled so that
    the last step, like every training sequence's, uses T3: (L − 2 + o) ≡ (SEQ_LEN − 2) mod K.
    """
    if last_step not in LAST_STEPS:
        raise LengthGenError(f"last step must be one of {', '.join(LAST_STEPS)}, got {last_step!r}")
    if last_step == "cyclic":
        return transitions
    offset = (markov.SEQ_LEN - length) % len(transitions)
    return np.roll(transitions, -offset, axis=0)


def draw_test_set(transitions: np.ndarray, alpha: float, data_seed: int, length: int, n: int,
                  seed: int, last_step: str = "T3") -> TestSet:
    """N_test sequences of `length` ∝ P(X)^α from a generator seeded by (data_seed, length, seed).

    Seeding by the data seed means Single and Looped of one config meet the same test set;
    the length in the seed keeps each length's draw independent of which others are asked.
    """
    rng = np.random.default_rng([data_seed, _TEST_STREAM, length, seed])
    phased = phased_transitions(transitions, length, last_step)
    sequences, ic = markov.sample_sequences(phased, length, n, alpha, rng)
    return TestSet(length, sequences, ic)


def test_sets(run: RunData, lengths: Iterable[int], n: int, seed: int, last_step: str = "T3") -> dict[int, TestSet]:
    """The test sets of a run's task, one per length."""
    c = run.config
    return {L: draw_test_set(run.task["transitions"], c.alpha, c.data_seed, L, n, seed, last_step) for L in lengths}


def embedding_for(run: RunData, n_positions: int) -> tuple[np.ndarray, np.ndarray]:
    """Token and position vectors for contexts of `n_positions`, rebuilt from the run's seed.

    The training positions must keep their vectors (prefix-stable embedding), else a longer
    context would not be the model's input extended but a different input altogether.
    """
    c = run.config
    try:
        token, position = make_embedding(c.embedding, c.d, n_positions, c.data_seed)
    except ValueError as exc:
        raise LengthGenError(f"length {n_positions + 1}: {exc}") from None
    stored = run.task["position_embedding"]
    k = min(len(stored), n_positions)  # a short context (L = 2) uses only the first positions
    if not (np.allclose(token, run.task["token_embedding"])
            and np.allclose(position[:k], stored[:k])):
        raise LengthGenError("the rebuilt embedding does not match the run's stored one")
    return token, position


# Contexts per forward pass: gradient.py's forward keeps every loop's [n, d] activations and
# [n, n] scores per context (~10 kB at L = 17, d = 4, T = 3; several times that at d = 16), so
# 5000 test sequences go in slices of this many.
PREDICT_CHUNK = 500


def final_predictions(run: RunData, contexts: np.ndarray) -> np.ndarray:
    """argmax of the final model's logits for contexts [N, L-1]: the predicted last token
    (toy/gradient.py's forward pass, numpy; ties go to the lowest token, as torch's argmax)."""
    c = run.config
    token, position = embedding_for(run, contexts.shape[1])
    theta = np.asarray(run.thetas[-1], dtype=np.float64)[None]
    n = contexts.shape[1]
    out = np.empty(len(contexts), dtype=np.int64)
    for begin in range(0, len(contexts), PREDICT_CHUNK):
        part = contexts[begin:begin + PREDICT_CHUNK]
        E0 = np.swapaxes(token[part] + position[:n], 1, 2)[None]          # [1, N, d, n]
        out[begin:begin + len(part)] = gradient.logits(theta, E0, c.loops_at(c.epochs))[0].argmax(-1)
    return out


def _row(run: RunData, data: str, sequences: np.ndarray, ic: np.ndarray, threshold: float,
         last_step: str) -> dict:
    contexts, targets = sequences[:, :-1], sequences[:, -1]
    correct = final_predictions(run, contexts) == targets
    phased = phased_transitions(run.task["transitions"], sequences.shape[1], last_step)
    bayes = markov.bayes_predictions(phased, contexts) == targets
    simple = is_simple(ic, threshold)
    total, on_simple = stats.share(correct), stats.share(correct[simple])  # NaN when nothing is simple: "N/A"
    return {"data": data, "length": sequences.shape[1], "last_step": last_step, "model": run.config.model,
            "n": len(sequences), "n_simple": int(simple.sum()), "share_simple": float(simple.mean()),
            "acc_total": total.value, "acc_total_low": total.low, "acc_total_high": total.high,
            "acc_simple": on_simple.value, "acc_simple_low": on_simple.low, "acc_simple_high": on_simple.high,
            "chance": 1.0 / markov.VOCAB, "bayes_total": float(bayes.mean()),
            "bayes_simple": float(bayes[simple].mean()) if simple.any() else float("nan"), "threshold": threshold}


def accuracy_table(runs: Sequence[RunData], lengths: Iterable[int] = PAPER_LENGTHS, n: int = PAPER_N_TEST,
             seed: int = 0, include_training: bool = True, last_step: str = "T3") -> pd.DataFrame:
    """Table 1's columns per model and length (COLUMNS), from each run's final weights;
    test sequences end with T3 (last_step="T3") or follow the cycle from x0 ("cyclic").

    With include_training, each model also gets Table 1's first row: its own training set
    (L = 4), where every sequence is simple by the threshold's definition.
    """
    lengths = tuple(lengths)
    rows = []
    for run in runs:
        if not np.isfinite(run.thetas[-1]).all():
            raise LengthGenError(f"{run.config.model} diverged (epoch {run.meta.get('diverged_epoch')}): its final "
                                 "weights are not finite, so there is no model to evaluate")
        threshold = simple_threshold(run.task)
        if include_training:
            t = run.task
            train = np.concatenate([t["train_inputs"], t["train_targets"][:, None]], axis=1)
            rows.append(_row(run, "train", train, t["train_ic"], threshold, "T3"))
        for test in test_sets(run, lengths, n, seed, last_step).values():
            rows.append(_row(run, "test", test.sequences, test.ic, threshold, last_step))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 side by side: per length, our share and simple-accuracy per model beside the paper's."""
    ours = table.pivot_table(index=["data", "length"], columns="model", values="acc_simple", dropna=False)
    ours.columns = [f"{m}_acc_simple" for m in ours.columns]
    first = table.groupby(["data", "length"])[["last_step", "share_simple", "chance", "bayes_simple",
                                                "threshold"]].first()
    merged = first.join(ours).reset_index()
    paper = PAPER_TABLE1.rename(columns={"share_simple": "paper_share_simple", "single": "paper_single_acc_simple",
                                         "looped": "paper_looped_acc_simple"})
    merged = merged.merge(paper, on="length", how="left")
    ordered = ["data", "length", "last_step", "share_simple", "paper_share_simple"]
    for m in MODELS:
        if f"{m}_acc_simple" in merged.columns:
            ordered.append(f"{m}_acc_simple")
            if f"paper_{m}_acc_simple" in merged.columns:
                ordered.append(f"paper_{m}_acc_simple")
    return merged[ordered + ["chance", "bayes_simple", "threshold"]].sort_values("length", ignore_index=True)


def reading_sentence(t3: pd.DataFrame, cyclic: pd.DataFrame) -> str:
    """Which construction the paper's Table 1 most plausibly used, from both tables' numbers.

    The paper's test accuracies on simple sequences (52.8–70.3 %, near its training
    69–72 %) are all above chance; a construction whose models score below chance at
    every length cannot have produced them.
    """
    chance = 1.0 / markov.VOCAB

    def cells(table: pd.DataFrame) -> pd.Series:
        test = table[(table["data"] == "test") & table["model"].isin(["single", "looped"])]
        return test["acc_simple"].dropna()

    def describe(values: pd.Series) -> str:
        if not len(values):
            return "no simple sequences"
        return (f"{100 * values.min():.1f}–{100 * values.max():.1f} %, above chance in {int((values > chance).sum())} "
                f"of {len(values)} model × length cells")

    a, b = cells(t3), cells(cyclic)
    paper = PAPER_TABLE1[PAPER_TABLE1["length"] > markov.SEQ_LEN][["single", "looped"]].stack()
    text = (f"On simple test sequences our models score {describe(a)} when the last step is T3, and {describe(b)} "
            f"with the literal cycle (chance {100 * chance:.1f} %); the paper reports {100 * paper.min():.1f}–"
            f"{100 * paper.max():.1f} %, all above chance. ")
    if len(b) and (b <= chance).all() and (a > chance).any():
        return text + ("The literal cycle cannot give such numbers here (every cell is at or below chance), so the "
                       "paper's table most plausibly tested like with like, the last step T3 as in training. "
                       + ("Even so, ours do not match the paper's at every length."
                          if (a <= chance).any() else ""))
    return text + "Both readings give above-chance cells here, so the numbers do not decide between them."


def threshold_sentence(threshold: float, table: pd.DataFrame) -> str:
    """Why our 'simple' threshold and shares differ from the paper's (Table 1, App. E.1.3)."""
    test = table[table["data"] == "test"].drop_duplicates("length").sort_values("length")
    ours = ", ".join(f"L = {int(r.length)}: {100 * r.share_simple:.1f} % ({int(r.n_simple)} of {int(r.n)})"
                     for r in test.itertuples())
    paper = ", ".join(f"L = {int(r.length)}: {100 * r.share_simple:.1f} %"
                      for r in PAPER_TABLE1[PAPER_TABLE1["length"] > markov.SEQ_LEN].itertuples())
    return (f"'Simple' means IC ≤ the largest training IC: ours is {threshold:.2f} nats, the paper's "
            f"{PAPER_THRESHOLD}. The rule is the same, the transition matrices are not: the paper does not publish "
            f"its T1–T3, and the largest IC of a training set is set by its rarest transitions (ours are "
            f"Dirichlet(1) rows, every one of the 81 sequences kept once). The shares of simple test sequences "
            f"follow from the same transitions, so they differ too — ours: {ours}; the paper's: {paper}.")


def parse_lengths(text: str) -> tuple[int, ...]:
    """'8,11,14,17' → (8, 11, 14, 17); each length in [2, MAX_LENGTH] (one context token at least)."""
    try:
        lengths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise LengthGenError(f"--lengths must be comma-separated integers, got {text!r}") from None
    if not lengths:
        raise LengthGenError("--lengths is empty")
    bad = [L for L in lengths if not 2 <= L <= MAX_LENGTH]
    if bad:
        raise LengthGenError(f"lengths must be between 2 and {MAX_LENGTH}, got {', '.join(map(str, bad))}")
    return tuple(sorted(set(lengths)))


def _int_option(name: str, text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise LengthGenError(f"--{name} must be an integer, got {text!r}") from None
    if value < low:
        raise LengthGenError(f"--{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise LengthGenError(f"--{name} must be at most {high}, got {value}")
    return value


def evaluate_run_dirs(args: argparse.Namespace) -> int:
    """Evaluate DIR/<model>/ runs on longer sequences; write the table (CSV), print Table 1 beside the paper's."""
    try:
        lengths = parse_lengths(args.lengths)
        # Memory grows as n × length × 8 bytes per array: MAX_N keeps the largest case near 100 MB.
        n = _int_option("n", args.n, 1, MAX_N)
        seed = _int_option("seed", args.seed, 0)
        if args.last_step not in LAST_STEPS:
            raise LengthGenError(f"--last-step must be one of {', '.join(LAST_STEPS)}, got {args.last_step!r}")
        root = Path(args.runs)
        found = [root / m for m in MODELS if (root / m).is_dir()]
        if not found:
            raise LengthGenError(f"no run directories {', '.join(MODELS)} under {root}")
        out = Path(args.out) if args.out else None
        if out is not None and (refusal := overwrite_refused([out], args.force)):
            raise LengthGenError(refusal)
        runs = [read_run(path) for path in found]
        for run in runs:
            if run.status == "diverged" and np.isfinite(run.thetas[-1]).all():
                print(f"note: {run.config.model} diverged at epoch {run.meta.get('diverged_epoch')}; its final "
                      "weights are not a trained model", file=sys.stderr)
        table = accuracy_table(runs, lengths, n, seed, last_step=args.last_step)
    except (LengthGenError, RunFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if out is None:
        table.to_csv(sys.stdout, index=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
        print(comparison_table(table).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"wrote {out}", file=sys.stderr)
    return 0
