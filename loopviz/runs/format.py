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
half-written run. `read_run` trusts nothing it has not checked: every file decodes, the files
agree with each other (one weight row per record, spectra at recorded epochs, a complete run
has every epoch), the config rebuilds the stored task and initial weights, and only a diverged
run ends in non-finite numbers; anything else is one RunFormatError line naming the file.
"""
from __future__ import annotations

import io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from ..toy import markov
from ..toy.embedding import BLOCKS, block_shapes, block_slices, init_weights, make_embedding, param_count
from ..config import ConfigError, RunConfig
from ..curvature import log_bin_edges, summarise_spectra
from .log import METRICS, RunLog, metrics_table, spectrum_epochs
from .status import Status

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
                                log_bin_edges(config.entropy_bins, config.entropy_min, config.entropy_max),
                                config.entropy_definition)
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


def write_directory(directory: Path, fill: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Write a run directory atomically: `fill` writes into a temporary sibling, which is then
    renamed over `directory`, so a reader never sees half a run (toy and algo runs alike)."""
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} exists; choose another directory or allow overwriting")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        fill(tmp)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def versions_meta(meta: dict, **extra) -> dict:
    """meta.json's contents: the run's meta plus the versions that computed it."""
    return dict(meta, **extra, versions={"python": platform.python_version(), "numpy": np.__version__})


def write_run(run: RunData, directory: Path, overwrite: bool = False) -> Path:
    """Write atomically: into a temporary sibling, then rename over `directory`."""
    def fill(tmp: Path) -> None:
        d = run.config.d
        (tmp / "config.json").write_text(run.config.to_json())
        (tmp / "meta.json").write_text(json.dumps(versions_meta(run.meta), indent=2))
        run.records.to_csv(tmp / "records.csv", index=False)
        np.savez(tmp / "spectra.npz", epochs=run.spectrum_epochs, eigenvalues=run.eigenvalues)
        W = len(run.thetas)
        np.savez(tmp / "weights.npz", epochs=run.weight_epochs,
                 **{name: run.thetas[:, s].reshape(W, *block_shapes(d)[name]) for name, s in block_slices(d).items()})
        np.savez(tmp / "task.npz", **run.task)
        if run.optimizer is not None:
            np.savez(tmp / "optimizer.npz", **run.optimizer)

    return write_directory(directory, fill, overwrite)


def run_npz_bytes(run: RunData) -> bytes:
    """Spectra, weights and task of a run in one .npz (for a download button)."""
    buffer = io.BytesIO()
    task = {f"task_{k}": v for k, v in run.task.items()}
    np.savez(buffer, spectrum_epochs=run.spectrum_epochs, eigenvalues=run.eigenvalues,
             weight_epochs=run.weight_epochs, theta=run.thetas, **task)
    return buffer.getvalue()


KNOWN_STATUSES = (Status.COMPLETE, Status.DIVERGED, Status.CANCELLED, Status.FAILED)
TASK_KEYS = ("transitions", "token_embedding", "position_embedding", "train_inputs", "train_targets", "train_ic",
             "train_bucket", "val_inputs", "val_targets", "val_ic", "val_bucket")


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A run file's .npz arrays, never unpickled; RunFormatError if it is unreadable or lacks `keys`
    (spectrum_worker.read_arrays decodes the frames of its own child process instead)."""
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


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunFormatError(f"{path.name} is not UTF-8 text (byte {exc.start})") from None


def read_run(directory: Path) -> RunData:
    """Load a run directory and check that it is complete and self-consistent.

    Raises RunFormatError, one line naming the file and the problem, for anything else:
    a missing or undecodable file, but also files that disagree with each other (fewer
    weights than records, a config whose seeds do not rebuild the stored task, an edited
    config, non-finite numbers in a run not marked diverged). Nothing else escapes.
    """
    directory = Path(directory)
    try:
        return _read_checked(directory)
    except RunFormatError:
        raise
    except Exception as exc:  # an unforeseen malformation is still a format error, never a crash
        raise RunFormatError(f"{directory.name}: unreadable run ({type(exc).__name__}: {exc})") from None


def _read_checked(directory: Path) -> RunData:
    missing = [f for f in FILES if not (directory / f).is_file()]
    if missing:
        raise RunFormatError(f"{directory} is not a complete run: missing {', '.join(missing)}")
    try:
        config = RunConfig.from_json(_read_text(directory / "config.json"))
    except ConfigError as exc:
        raise RunFormatError(f"config.json: {exc}") from None
    try:
        meta = json.loads(_read_text(directory / "meta.json"))
    except ValueError:
        raise RunFormatError("meta.json is not valid JSON") from None
    if not isinstance(meta, dict):
        raise RunFormatError("meta.json is not a JSON object")
    if meta.get("status") not in KNOWN_STATUSES:
        raise RunFormatError(f"meta.json: unknown status {meta.get('status')!r} "
                             f"(expected one of {', '.join(KNOWN_STATUSES)})")
    if "key" in meta and meta["key"] != config.key():
        raise RunFormatError(f"config.json does not match meta.json: the config was edited after the run "
                             f"(key {config.key()}, recorded {meta['key']})")
    try:
        records = pd.read_csv(io.StringIO(_read_text(directory / "records.csv")), dtype={"valley_shape": "string"})
    except RunFormatError:
        raise
    except Exception as exc:
        raise RunFormatError(f"records.csv is unreadable: {exc}") from None
    absent = [c for c in CSV_COLUMNS if c not in records.columns]
    if absent:
        raise RunFormatError(f"records.csv lacks column(s) {', '.join(absent)}")
    if len(records) == 0:
        raise RunFormatError("records.csv has no rows")
    text = [c for c in CSV_COLUMNS if c not in ("phase", "valley_shape") and not is_numeric_dtype(records[c])]
    if text:
        raise RunFormatError(f"records.csv: column(s) {', '.join(text)} hold non-numbers")
    records["valley_shape"] = records["valley_shape"].fillna("").astype(object)
    spectra = read_npz(directory / "spectra.npz", ("epochs", "eigenvalues"))
    weights = read_npz(directory / "weights.npz", ("epochs", *BLOCKS))
    task = read_npz(directory / "task.npz", TASK_KEYS)
    P, d = param_count(config.d), config.d
    eig = spectra["eigenvalues"]
    if eig.ndim != 2 or (eig.size and eig.shape[1] != P) or spectra["epochs"].shape != (len(eig),):
        raise RunFormatError(f"spectra.npz: eigenvalues shape {eig.shape} does not fit d = {d} (P = {P})")
    W = len(weights["epochs"])
    shapes = {name: (W, *shape) for name, shape in block_shapes(d).items()}
    for name, shape in shapes.items():
        if weights[name].shape != shape:
            raise RunFormatError(f"weights.npz: {name} has shape {weights[name].shape}, expected {shape}")
    if W == 0:
        raise RunFormatError("weights.npz holds no epochs")
    thetas = np.concatenate([weights[n].reshape(W, -1) for n in BLOCKS], axis=1)
    optimizer = None
    if (directory / "optimizer.npz").is_file():
        optimizer = read_npz(directory / "optimizer.npz", ("epochs", "exp_avg", "exp_avg_sq", "steps"))
        if (optimizer["exp_avg"].shape != (W, P) or optimizer["exp_avg_sq"].shape != (W, P)
                or optimizer["steps"].shape != (W,) or not np.array_equal(optimizer["epochs"], weights["epochs"])):
            raise RunFormatError(f"optimizer.npz does not fit weights.npz ({W} epochs, P = {P})")
    run = RunData(config, meta, records, spectra["epochs"], eig, weights["epochs"], thetas, task, optimizer)
    check_consistency(run)
    return run


def check_consistency(run: RunData) -> None:
    """The files of one run agree with each other and with the config (RunFormatError if not)."""
    config, meta, records = run.config, run.meta, run.records
    epochs = records["epoch"].to_numpy()
    n = len(epochs)
    if not np.array_equal(epochs, np.arange(n)):
        raise RunFormatError("records.csv: epochs are not 0, 1, 2, ... in order")
    if n - 1 > config.epochs:
        raise RunFormatError(f"records.csv has {n} rows, more than epochs + 1 = {config.epochs + 1}")
    status = meta["status"]
    if status == "complete" and n != config.epochs + 1:
        raise RunFormatError(f"records.csv has {n} rows but a complete run of {config.epochs} epochs has "
                             f"{config.epochs + 1} (truncated?)")
    if run.thetas.shape[0] != n or not np.array_equal(run.weight_epochs, epochs):
        raise RunFormatError(f"weights.npz holds {run.thetas.shape[0]} epochs but records.csv {n}")
    if not np.array_equal(run.thetas[0], init_weights(config.d, config.init_scale, config.seed)):
        raise RunFormatError("weights.npz: the epoch-0 weights are not the config's initialisation "
                             "(seed, init_scale or d edited?)")
    expected_loops = [config.loops_at(int(e)) for e in epochs[1:]]
    if not np.array_equal(records["loops"].to_numpy()[1:], expected_loops):
        raise RunFormatError(f"records.csv: the loops column does not match model = {config.model}")
    s_epochs = run.spectrum_epochs
    if len(s_epochs) and (np.any(np.diff(s_epochs) <= 0) or not np.isin(s_epochs, epochs).all()):
        raise RunFormatError("spectra.npz: epochs are not increasing epochs of records.csv")
    if status == "complete" and list(s_epochs) != spectrum_epochs(config, config.epochs):
        raise RunFormatError(f"spectra.npz holds {len(s_epochs)} spectra; a complete run with hessian_every = "
                             f"{config.hessian_every} has {len(spectrum_epochs(config, config.epochs))}")
    if not np.isfinite(run.eigenvalues).all():
        raise RunFormatError("spectra.npz: eigenvalues are not all finite")
    # Only a diverged run may end in non-finite numbers, and only at its last (diverged) epoch.
    finite_rows = n - 1 if status == "diverged" else n
    metrics = records[list(METRICS)].to_numpy(dtype=float)
    if not np.isfinite(metrics[:finite_rows]).all():
        raise RunFormatError("records.csv: loss or accuracy values are NaN or infinite in a run not marked "
                             "diverged")
    if not np.isfinite(run.thetas[:finite_rows]).all():
        raise RunFormatError("weights.npz: weights are NaN or infinite in a run not marked diverged")
    if status == "diverged" and meta.get("diverged_epoch") != int(epochs[-1]):
        raise RunFormatError(f"meta.json: diverged_epoch {meta.get('diverged_epoch')!r} is not the last "
                             f"record's epoch {int(epochs[-1])}")
    expected = task_arrays(config)
    for key in TASK_KEYS:
        stored, rebuilt = run.task[key], expected[key]
        same = stored.shape == rebuilt.shape and (
            np.allclose(stored, rebuilt, rtol=1e-12, atol=0) if rebuilt.dtype.kind == "f"
            else np.array_equal(stored, rebuilt))
        if not same:
            raise RunFormatError(f"task.npz: {key} is not what config.json's seeds produce")
