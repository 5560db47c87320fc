"""Length generalisation (paper Sec. 4.4, App. E.1.3, Table 1, Figures 7 and 9).

Trained models predict the last token of longer sequences drawn from the same
T1, T2, T3 applied cyclically, ∝ P(X)^α, N_test per length. A test sequence is
"simple" when its IC is at most the largest IC of the training set (the paper's
threshold was 14.57 nats). Per model and length we report the share of simple
sequences, total accuracy, accuracy on simple sequences, and the Bayes rule's
accuracy (argmax of the last transition's row given the second-to-last token) as
the honest ceiling. Also the handler of the `length-gen` CLI command (registered in
loopviz/__main__.py), which writes the same table.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from . import markov, models
from ..config import MODELS
from ..runs.format import RunData, RunFormatError, read_run

PAPER_LENGTHS = (8, 11, 14, 17)
PAPER_N_TEST = 5000
PAPER_THRESHOLD = 14.57
MAX_LENGTH = 200
MAX_N = 50_000      # test sequences per length (the page's limit too)
# The test sets' own seed stream: markov uses [data_seed, 0..2], models [.., 10..20].
_TEST_STREAM = 30
COLUMNS = ("data", "length", "model", "n", "share_simple", "acc_total", "acc_simple",
           "bayes_total", "bayes_simple", "threshold")

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


def draw_test_set(transitions: np.ndarray, alpha: float, data_seed: int, length: int, n: int,
                  seed: int) -> TestSet:
    """N_test sequences of `length` ∝ P(X)^α from a generator seeded by (data_seed, length, seed).

    Seeding by the data seed means Single and Looped of one config meet the same test set;
    the length in the seed keeps each length's draw independent of which others are asked.
    """
    rng = np.random.default_rng([data_seed, _TEST_STREAM, length, seed])
    sequences, ic = markov.sample_sequences(transitions, length, n, alpha, rng)
    return TestSet(length, sequences, ic)


def test_sets(run: RunData, lengths: Iterable[int], n: int, seed: int) -> dict[int, TestSet]:
    """The test sets of a run's task, one per length."""
    c = run.config
    return {L: draw_test_set(run.task["transitions"], c.alpha, c.data_seed, L, n, seed) for L in lengths}


def embedding_for(run: RunData, n_positions: int) -> tuple[np.ndarray, np.ndarray]:
    """Token and position vectors for contexts of `n_positions`, rebuilt from the run's seed.

    The training positions must keep their vectors (prefix-stable embedding), else a longer
    context would not be the model's input extended but a different input altogether.
    """
    c = run.config
    try:
        token, position = models.make_embedding(c.embedding, c.d, n_positions, c.data_seed)
    except ValueError as exc:
        raise LengthGenError(f"length {n_positions + 1}: {exc}") from None
    stored = run.task["position_embedding"]
    k = min(len(stored), n_positions)  # a short context (L = 2) uses only the first positions
    if not (np.allclose(token, run.task["token_embedding"])
            and np.allclose(position[:k], stored[:k])):
        raise LengthGenError("the rebuilt embedding does not match the run's stored one")
    return token, position


def final_predictions(run: RunData, contexts: np.ndarray) -> np.ndarray:
    """argmax of the final model's logits for contexts [n, L-1]: the predicted last token."""
    c = run.config
    token, position = embedding_for(run, contexts.shape[1])
    E0 = models.embed(torch.from_numpy(contexts), torch.from_numpy(token), torch.from_numpy(position))
    theta = torch.from_numpy(np.ascontiguousarray(run.thetas[-1], dtype=np.float64))
    with torch.no_grad():
        out = models.logits(theta, E0, c.loops_at(c.epochs))
    return out.argmax(dim=-1).numpy()


def _row(run: RunData, data: str, sequences: np.ndarray, ic: np.ndarray, threshold: float) -> dict:
    contexts, targets = sequences[:, :-1], sequences[:, -1]
    correct = final_predictions(run, contexts) == targets
    bayes = markov.bayes_predictions(run.task["transitions"], contexts) == targets
    simple = is_simple(ic, threshold)

    def share(hits: np.ndarray) -> float:
        # NaN, not 0, when nothing is simple: the paper's "N/A".
        return float(hits[simple].mean()) if simple.any() else float("nan")

    return {"data": data, "length": sequences.shape[1], "model": run.config.model, "n": len(sequences),
            "share_simple": float(simple.mean()), "acc_total": float(correct.mean()), "acc_simple": share(correct),
            "bayes_total": float(bayes.mean()), "bayes_simple": share(bayes), "threshold": threshold}


def evaluate(runs: Sequence[RunData], lengths: Iterable[int] = PAPER_LENGTHS, n: int = PAPER_N_TEST,
             seed: int = 0, include_training: bool = True) -> pd.DataFrame:
    """Table 1's columns per model and length (COLUMNS), from each run's final weights.

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
            rows.append(_row(run, "train", train, t["train_ic"], threshold))
        for test in test_sets(run, lengths, n, seed).values():
            rows.append(_row(run, "test", test.sequences, test.ic, threshold))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 side by side: per length, our share and simple-accuracy per model beside the paper's."""
    ours = table.pivot_table(index=["data", "length"], columns="model", values="acc_simple", dropna=False)
    ours.columns = [f"{m}_acc_simple" for m in ours.columns]
    first = table.groupby(["data", "length"])[["share_simple", "bayes_simple", "threshold"]].first()
    merged = first.join(ours).reset_index()
    paper = PAPER_TABLE1.rename(columns={"share_simple": "paper_share_simple", "single": "paper_single_acc_simple",
                                         "looped": "paper_looped_acc_simple"})
    merged = merged.merge(paper, on="length", how="left")
    ordered = ["data", "length", "share_simple", "paper_share_simple"]
    for m in MODELS:
        if f"{m}_acc_simple" in merged.columns:
            ordered.append(f"{m}_acc_simple")
            if f"paper_{m}_acc_simple" in merged.columns:
                ordered.append(f"paper_{m}_acc_simple")
    return merged[ordered + ["bayes_simple", "threshold"]].sort_values("length", ignore_index=True)


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


def command_length_gen(args: argparse.Namespace) -> int:
    """Evaluate DIR/<model>/ runs on longer sequences; write the table (CSV), print Table 1 beside the paper's."""
    try:
        lengths = parse_lengths(args.lengths)
        # Memory grows as n × length × 8 bytes per array: MAX_N keeps the largest case near 100 MB.
        n = _int_option("n", args.n, 1, MAX_N)
        seed = _int_option("seed", args.seed, 0)
        root = Path(args.runs)
        found = [root / m for m in MODELS if (root / m).is_dir()]
        if not found:
            raise LengthGenError(f"no run directories {', '.join(MODELS)} under {root}")
        out = Path(args.out) if args.out else None
        if out is not None and out.exists() and not args.force:
            raise LengthGenError(f"{out} already exists; use another --out or --force to overwrite")
        runs = [read_run(path) for path in found]
        for run in runs:
            if run.status == "diverged" and np.isfinite(run.thetas[-1]).all():
                print(f"note: {run.config.model} diverged at epoch {run.meta.get('diverged_epoch')}; its final "
                      "weights are not a trained model", file=sys.stderr)
        table = evaluate(runs, lengths, n, seed)
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
