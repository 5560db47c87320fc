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
