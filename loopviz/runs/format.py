"""The run-directory format: a run on disk, readable without loopviz and without pickle.

    config.json   the full RunConfig (enough to rerun it)
    meta.json     status, message, diverged epoch, timings, versions
    records.csv   one row per epoch: metrics + curvature summary (NaN without a spectrum)
    spectra.npz   epochs [S], eigenvalues [S, P] float64 ascending
    weights.npz   epochs [W], W_K, W_Q, W_V [W, d, d], W_h [W, V, d]
    optimizer.npz (optional) epochs [W], exp_avg, exp_avg_sq [W, P], steps [W]: Adam's state after
                  each epoch, so that SHIFT's Stage II starts from a stored Single run without replay
    task.npz      transitions, token/position embeddings, train/val inputs, targets, IC, bucket

Writes go to a temporary sibling that is renamed into place, so a reader never sees a
half-written run; `read_run` checks every file and raises RunFormatError otherwise.
"""
from __future__ import annotations

import io
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..toy import markov
from ..toy.embedding import make_embedding, param_count
from ..config import ConfigError, RunConfig
from ..curvature import log_bin_edges, summarise_spectra
from .log import METRICS, RunLog, metrics_table

FORMAT_VERSION = 1
CSV_COLUMNS = ("epoch", *METRICS, "entropy", "mutual_info", "kappa_valley", "n_valley",
               "n_low_curvature", "phase", "valley_shape", "lambda_min", "lambda_max", "loops", "seconds")
FILES = ("config.json", "meta.json", "records.csv", "spectra.npz", "weights.npz", "task.npz")


class RunFormatError(ValueError):
    """A run directory is missing a file, or a file is malformed; the message says which."""


@dataclass
class RunData:
    """A run as the pages and the CLI use it: tables and arrays, no live objects."""

    config: RunConfig
    meta: dict
    records: pd.DataFrame           # CSV_COLUMNS
    spectrum_epochs: np.ndarray     # [S]
    eigenvalues: np.ndarray         # [S, P]
    weight_epochs: np.ndarray       # [W]
    thetas: np.ndarray              # [W, P]
    task: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray] | None = None   # optimizer.npz's arrays, when stored

    @property
    def status(self) -> str:
        return self.meta.get("status", "unknown")

    def spectrum_at(self, epoch: int) -> np.ndarray:
        """Eigenvalues of the spectrum nearest to `epoch` (at or before it when possible)."""
        idx = int(np.searchsorted(self.spectrum_epochs, epoch, side="right")) - 1
        return self.eigenvalues[max(idx, 0)]


def task_arrays(config: RunConfig) -> dict[str, np.ndarray]:
    """task.npz's contents for a config, rebuilt from its seeds."""
    task = markov.task_for(config)
    token, position = make_embedding(config.embedding, config.d, markov.SEQ_LEN - 1, config.data_seed)
    arrays = {"transitions": task.transitions, "token_embedding": token, "position_embedding": position,
              "bucket_thresholds": np.array(task.thresholds)}
    for split, seqs, ic, bucket in (("train", task.train, task.train_ic, task.train_bucket),
                                    ("val", task.val, task.val_ic, task.val_bucket)):
        arrays[f"{split}_inputs"] = seqs[:, :-1]
        arrays[f"{split}_targets"] = seqs[:, -1]
        arrays[f"{split}_ic"] = ic
        arrays[f"{split}_bucket"] = bucket
    return arrays


def run_data_from_log(log: RunLog, task: dict[str, np.ndarray] | None = None) -> RunData:
    """Tables of a (possibly live) run log; derived columns recomputed from its spectra."""
    config = log.config
    table = metrics_table(log)
    records = pd.DataFrame({"epoch": table["epoch"], **{m: table[m] for m in METRICS}})
    epochs = np.array(sorted(log.spectra), dtype=np.int64)
    P = param_count(config.d)
    eigenvalues = np.stack([log.spectra[e] for e in epochs]) if len(epochs) else np.zeros((0, P))
    summary = summarise_spectra(eigenvalues, config.river_eps, config.valley_delta, config.low_curvature_tau,
                                log_bin_edges(config.entropy_bins, config.entropy_min, config.entropy_max))
    curv = pd.DataFrame({"epoch": epochs, **summary})
    records = records.merge(curv, on="epoch", how="left")
    records["loops"] = table["loops"]
    records["seconds"] = table["seconds"]
    records = records[list(CSV_COLUMNS)]
    meta = {"format": FORMAT_VERSION, "status": log.status, "message": log.message,
            "diverged_epoch": log.diverged_epoch, "started": log.started, "finished": log.finished,
            "train_seconds": float(table["seconds"][-1]) if len(table["seconds"]) else 0.0,
            "key": config.key()}
    thetas = np.stack([r.theta for r in log.records]) if log.records else np.zeros((0, P))
    optimizer = None
    if log.records and all(r.adam is not None for r in log.records[1:]):
        zero = np.zeros((2, P))  # epoch 0: no step taken; zero moments are Adam's own start
        moments = np.stack([zero if r.adam is None else r.adam for r in log.records])
        optimizer = {"epochs": table["epoch"], "exp_avg": moments[:, 0], "exp_avg_sq": moments[:, 1],
                     "steps": np.array([r.adam_steps for r in log.records], dtype=np.int64)}
    return RunData(config, meta, records, epochs, eigenvalues, table["epoch"], thetas,
                   task if task is not None else task_arrays(config), optimizer)


def write_run(run: RunData, directory: Path, overwrite: bool = False) -> Path:
    """Write atomically: into a temporary sibling, then rename over `directory`."""
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} exists; choose another directory or allow overwriting")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        d = run.config.d
        (tmp / "config.json").write_text(run.config.to_json())
        meta = dict(run.meta, versions={"python": platform.python_version(), "numpy": np.__version__})
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        run.records.to_csv(tmp / "records.csv", index=False)
        np.savez(tmp / "spectra.npz", epochs=run.spectrum_epochs, eigenvalues=run.eigenvalues)
        W = len(run.thetas)
        dd = d * d
        np.savez(tmp / "weights.npz", epochs=run.weight_epochs,
                 W_K=run.thetas[:, :dd].reshape(W, d, d), W_Q=run.thetas[:, dd:2 * dd].reshape(W, d, d),
                 W_V=run.thetas[:, 2 * dd:3 * dd].reshape(W, d, d),
                 W_h=run.thetas[:, 3 * dd:].reshape(W, markov.VOCAB, d))
        np.savez(tmp / "task.npz", **run.task)
        if run.optimizer is not None:
            np.savez(tmp / "optimizer.npz", **run.optimizer)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def run_npz_bytes(run: RunData) -> bytes:
    """Spectra, weights and task of a run in one .npz (for a download button)."""
    buffer = io.BytesIO()
    task = {f"task_{k}": v for k, v in run.task.items()}
    np.savez(buffer, spectrum_epochs=run.spectrum_epochs, eigenvalues=run.eigenvalues,
             weight_epochs=run.weight_epochs, theta=run.thetas, **task)
    return buffer.getvalue()


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise RunFormatError(f"{path.name} lacks {', '.join(missing)}")
            return {k: data[k] for k in data.files}
    except RunFormatError:
        raise
    except Exception as exc:  # zip errors, truncated files, object arrays refused
        raise RunFormatError(f"{path.name} is unreadable: {type(exc).__name__}: {exc}") from None


def read_run(directory: Path) -> RunData:
    """Load and check a run directory; RunFormatError names the first problem found."""
    directory = Path(directory)
    missing = [f for f in FILES if not (directory / f).is_file()]
    if missing:
        raise RunFormatError(f"{directory} is not a complete run: missing {', '.join(missing)}")
    try:
        config = RunConfig.from_json((directory / "config.json").read_text())
    except ConfigError as exc:
        raise RunFormatError(f"config.json: {exc}") from None
    try:
        meta = json.loads((directory / "meta.json").read_text())
        assert isinstance(meta, dict)
    except Exception:
        raise RunFormatError("meta.json is not a JSON object") from None
    try:
        records = pd.read_csv(directory / "records.csv", dtype={"valley_shape": "string"})
    except Exception as exc:
        raise RunFormatError(f"records.csv is unreadable: {exc}") from None
    absent = [c for c in CSV_COLUMNS if c not in records.columns]
    if absent:
        raise RunFormatError(f"records.csv lacks column(s) {', '.join(absent)}")
    records["valley_shape"] = records["valley_shape"].fillna("").astype(object)
    spectra = _load_npz(directory / "spectra.npz", ("epochs", "eigenvalues"))
    weights = _load_npz(directory / "weights.npz", ("epochs", "W_K", "W_Q", "W_V", "W_h"))
    task = _load_npz(directory / "task.npz", ("transitions", "token_embedding", "position_embedding",
                                              "train_inputs", "train_targets", "train_ic", "train_bucket",
                                              "val_inputs", "val_targets", "val_ic", "val_bucket"))
    P, d = param_count(config.d), config.d
    eig = spectra["eigenvalues"]
    if eig.ndim != 2 or (eig.size and eig.shape[1] != P) or len(spectra["epochs"]) != len(eig):
        raise RunFormatError(f"spectra.npz: eigenvalues shape {eig.shape} does not fit d = {d} (P = {P})")
    W = len(weights["epochs"])
    shapes = {"W_K": (W, d, d), "W_Q": (W, d, d), "W_V": (W, d, d), "W_h": (W, markov.VOCAB, d)}
    for name, shape in shapes.items():
        if weights[name].shape != shape:
            raise RunFormatError(f"weights.npz: {name} has shape {weights[name].shape}, expected {shape}")
    if len(records) == 0:
        raise RunFormatError("records.csv has no rows")
    thetas = np.concatenate([weights[n].reshape(W, -1) for n in ("W_K", "W_Q", "W_V", "W_h")], axis=1)
    optimizer = None
    if (directory / "optimizer.npz").is_file():
        optimizer = _load_npz(directory / "optimizer.npz", ("epochs", "exp_avg", "exp_avg_sq", "steps"))
        if (optimizer["exp_avg"].shape != (W, P) or optimizer["exp_avg_sq"].shape != (W, P)
                or optimizer["steps"].shape != (W,) or not np.array_equal(optimizer["epochs"], weights["epochs"])):
            raise RunFormatError(f"optimizer.npz does not fit weights.npz ({W} epochs, P = {P})")
    return RunData(config, meta, records, spectra["epochs"], eig, weights["epochs"], thetas, task, optimizer)
