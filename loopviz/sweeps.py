"""Many small runs in parallel worker processes: the seed sweep (reproduction honesty).

Each task is one (config) → final metrics, spectra off; results stream back in
completion order so a cancelled sweep keeps the points already finished.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterable, Iterator

import pandas as pd

from . import stats
from .toy import markov
from .config import RunConfig


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def final_metrics(config: RunConfig) -> dict[str, float]:
    """Train `config` (no spectra) and return its last record's metrics and status."""
    import torch

    from .toy.training import train  # in the worker: summaries of finished sweeps need no torch

    torch.set_num_threads(1)
    last = None
    for last in train(config):
        pass
    assert last is not None
    return {**last.metrics, "epoch": last.epoch, "diverged": bool(last.diverged), "seconds": last.seconds}


def _seed_point(config_json: str) -> dict[str, float]:
    """Both models of one seed, plus the task's Bayes and memorisation ceilings."""
    base = RunConfig.from_json(config_json)
    row: dict[str, float] = {"seed": base.seed, "data_seed": base.data_seed}
    for model in ("single", "looped"):
        for name, value in final_metrics(base.replace(model=model)).items():
            row[f"{model}_{name}"] = value
    task = markov.task_for(base)
    for name, value in markov.bayes_accuracy(task).items():
        row[f"bayes_{name}"] = value
    for name, value in markov.memorisation_ceiling(task).items():
        row[f"memorise_{name}"] = value
    row["gap_acc_high"] = row["looped_acc_high"] - row["single_acc_high"]
    row["gap_val_acc_all"] = row["looped_val_acc_all"] - row["single_val_acc_all"]
    row["gap_val_acc_high"] = row["looped_val_acc_high"] - row["single_val_acc_high"]
    return row


def run_parallel(function: Callable[[str], dict], configs: Iterable[RunConfig], workers: int) -> Iterator[dict]:
    """Map `function` over configs (as JSON) in spawned worker processes, as they finish."""
    payloads = [c.to_json() for c in configs]
    if workers <= 1:
        for payload in payloads:
            yield function(payload)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(function, p) for p in payloads]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def seed_configs(base: RunConfig, seeds: int, vary: str, first: int = 0) -> list[RunConfig]:
    """One config per seed; vary = 'data_seed', 'seed' or 'both' (both set to s)."""
    fields = {"data_seed": ("data_seed",), "seed": ("seed",), "both": ("data_seed", "seed")}[vary]
    return [base.replace(hessian_every=0, **{f: s for f in fields}) for s in range(first, first + seeds)]


def summarise_seed_sweep(table: pd.DataFrame) -> dict:
    """How often, and how, Looped beats Single on high-IC accuracy, with intervals (stats.py)."""
    return stats.seed_sweep_summary(table)


def summary_line(summary: dict) -> str:
    return stats.seed_sweep_sentence(summary)


def _shift_point(config_json: str) -> dict[str, float]:
    """One point of the SHIFT efficiency sweep: train (no spectra), time it, final metrics."""
    config = RunConfig.from_json(config_json)
    final_metrics(config.replace(model="looped", epochs=2))  # warm-up: a fresh worker's first steps are slow
    row = {"model": config.model, "shift_epoch": config.shift_epoch if config.model == "shift" else -1}
    row.update(final_metrics(config))
    return row


def shift_configs(base: RunConfig, shift_epochs: list[int], repeats: int) -> list[RunConfig]:
    """SHIFT at each shift epoch and pure Looped-Attn (the baseline), each `repeats` times
    so that timing noise can be taken out by the median."""
    base = base.replace(hessian_every=0)
    points = [base.replace(model="looped")] + [base.replace(model="shift", shift_epoch=s) for s in shift_epochs]
    return [config for _ in range(repeats) for config in points]


def summarise_shift_sweep(rows: pd.DataFrame) -> pd.DataFrame:
    """Per shift epoch: median training seconds over repeats, speed-up over the median
    pure-Looped time, final accuracy and its gap to pure Looped-Attn (repeats train the
    same numbers; only the time varies)."""
    looped = rows[rows["model"] == "looped"]
    shift_rows = rows[rows["model"] == "shift"]
    shift = shift_rows.groupby("shift_epoch", as_index=False).first()
    shift["seconds"] = shift_rows.groupby("shift_epoch")["seconds"].median().to_numpy()
    shift["repeats"] = shift_rows.groupby("shift_epoch").size().to_numpy()
    base_seconds = float(looped["seconds"].median())
    shift["speedup"] = base_seconds / shift["seconds"]
    for name in ("acc_all", "acc_high", "val_acc_all", "val_acc_high"):
        shift[f"gap_{name}"] = shift[name] - float(looped[name].iloc[0])
    shift["looped_seconds"] = base_seconds
    return shift.reset_index(drop=True)
