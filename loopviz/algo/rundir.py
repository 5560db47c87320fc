"""An algorithmic-task run on disk, readable without torch and without pickle.

    config.json     the AlgoConfig (enough to rerun it)
    meta.json       status, message, diverged step, SHIFT's switch, timings, parameter count
    records.csv     one row per evaluation: step, phase, SCALARS, acc_<n> and loops_<n> per
                    test length n (the
                    inference rule), oracle_acc_<n> (T = n), seconds (training time so far)
    weights.npz     steps [C] and one array [C, ...] per parameter, key "w/<name>", float32
    curvature.npz   steps [H], top [H, k]: the largest Hessian eigenvalues (may be empty)
    handoff.npz     (optional, Single runs) where SHIFT switches: step, rule, plateau_step, seconds,
                    model/<name> (the weights there), adam/<name>/{exp_avg,exp_avg_sq,step} and
                    hyper (AdamW's lr, betas, eps, weight decay); numbers only (training.handoff_arrays).
                    A SHIFT run of the same config starts Stage II from it; runs without it load as before

Written into a temporary sibling and renamed into place: a reader never sees half a run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# One error class, one safe .npz reader and one atomic writer for every kind of run.
from ..runs.format import RunFormatError, read_npz, versions_meta, write_directory
from .config import SHIFT_RULES, AlgoConfig, ConfigError

FORMAT = "loopviz-algo/1"
FILES = ("config.json", "meta.json", "records.csv", "weights.npz", "curvature.npz")
SCALARS = ("loss", "val_loss", "grad_norm", "train_acc", "val_acc")


@dataclass
class AlgoRun:
    config: AlgoConfig
    meta: dict
    records: pd.DataFrame
    weight_steps: np.ndarray
    weights: dict[str, np.ndarray]
    curvature_steps: np.ndarray
    curvature_top: np.ndarray
    handoff: dict[str, np.ndarray] | None = None   # handoff.npz's arrays to write (read_handoff reads them)

    @property
    def status(self) -> str:
        return self.meta.get("status", "unknown")

    def acc_by_length(self, row: int = -1) -> pd.Series:
        """Accuracy per test length at one record (default: the last)."""
        rec = self.records.iloc[row]
        return pd.Series({n: rec[f"acc_{n}"] for n in self.config.test_lengths})

    def loops_by_length(self, row: int = -1) -> pd.Series:
        rec = self.records.iloc[row]
        return pd.Series({n: rec[f"loops_{n}"] for n in self.config.test_lengths})


def columns(config: AlgoConfig) -> list[str]:
    return (["step", "phase", *SCALARS] + [f"acc_{n}" for n in config.test_lengths]
            + [f"loops_{n}" for n in config.test_lengths] + [f"oracle_acc_{n}" for n in config.test_lengths]
            + ["seconds"])


def records_table(config: AlgoConfig, records: list) -> pd.DataFrame:
    """EvalRecords (training.py) as records.csv's table."""
    rows = []
    for r in records:
        row = {"step": r.step, "phase": r.phase, **r.metrics, "seconds": r.seconds}
        for n in config.test_lengths:
            row[f"acc_{n}"] = r.acc_by_len.get(n, np.nan)
            row[f"loops_{n}"] = r.loops_by_len.get(n, np.nan)
            row[f"oracle_acc_{n}"] = r.oracle_by_len.get(n, np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns(config))


def run_from_records(config: AlgoConfig, records: list, meta: dict) -> AlgoRun:
    marked = [r for r in records if r.weights is not None]
    names = list(marked[0].weights) if marked else []
    weights = {n: np.stack([r.weights[n] for r in marked]) for n in names}
    curved = [r for r in records if r.hessian_top is not None]
    top = np.stack([r.hessian_top for r in curved]) if curved else np.zeros((0, config.hessian_top))
    return AlgoRun(config, meta, records_table(config, records), np.array([r.step for r in marked], dtype=np.int64),
                   weights, np.array([r.step for r in curved], dtype=np.int64), top)


def write_run(run: AlgoRun, directory: Path, overwrite: bool = False) -> Path:
    """Write atomically (runs.format.write_directory), with no pickle anywhere."""
    def fill(tmp: Path) -> None:
        (tmp / "config.json").write_text(run.config.to_json())
        (tmp / "meta.json").write_text(json.dumps(versions_meta(run.meta, format=FORMAT), indent=2))
        run.records.to_csv(tmp / "records.csv", index=False)
        np.savez_compressed(tmp / "weights.npz", steps=run.weight_steps,
                            **{f"w/{n}": a.astype(np.float32) for n, a in run.weights.items()})
        np.savez(tmp / "curvature.npz", steps=run.curvature_steps, top=run.curvature_top)
        if run.handoff is not None:
            np.savez_compressed(tmp / "handoff.npz", **run.handoff)

    return write_directory(directory, fill, overwrite)


def read_run(directory: Path) -> AlgoRun:
    """Load and check a run directory; RunFormatError names the first problem."""
    directory = Path(directory)
    missing = [f for f in FILES if not (directory / f).is_file()]
    if missing:
        raise RunFormatError(f"{directory} is not a complete algorithmic-task run: missing {', '.join(missing)}")
    try:
        config = AlgoConfig.from_json((directory / "config.json").read_text())
    except ConfigError as exc:
        raise RunFormatError(f"config.json: {exc}") from None
    try:
        meta = json.loads((directory / "meta.json").read_text())
        assert isinstance(meta, dict)
    except Exception:
        raise RunFormatError("meta.json is not a JSON object") from None
    try:
        records = pd.read_csv(directory / "records.csv")
    except Exception as exc:
        raise RunFormatError(f"records.csv is unreadable: {exc}") from None
    absent = [c for c in columns(config) if c not in records.columns]
    if absent:
        raise RunFormatError(f"records.csv lacks column(s) {', '.join(absent)}")
    if records.empty:
        raise RunFormatError("records.csv has no rows")
    w = read_npz(directory / "weights.npz", ("steps",))
    steps = w.pop("steps")
    weights = {k[2:]: v for k, v in w.items() if k.startswith("w/")}
    if any(len(v) != len(steps) for v in weights.values()):
        raise RunFormatError("weights.npz: a parameter's snapshot count differs from len(steps)")
    c = read_npz(directory / "curvature.npz", ("steps", "top"))
    if c["top"].ndim != 2 or len(c["top"]) != len(c["steps"]):
        raise RunFormatError(f"curvature.npz: top has shape {c['top'].shape} for {len(c['steps'])} steps")
    return AlgoRun(config, meta, records, steps, weights, c["steps"], c["top"])


HANDOFF_KEYS = ("step", "rule", "plateau_step", "seconds", "hyper")


def read_handoff(directory: Path, run: AlgoRun) -> dict[str, np.ndarray] | None:
    """handoff.npz of the Single run `run` read from `directory`: None when there is none (runs
    written before it was stored); RunFormatError, one line naming the file, when it is unreadable,
    not finite, or disagrees with the run: its step must be a Single evaluation step of
    records.csv with the same training seconds, its weights those of weights.npz at that step,
    a fixed switch the config's shift_step, a fallback only in a complete run. Shapes against
    the config's model are checked where torch is loaded (training.handoff_from_arrays)."""
    path = Path(directory) / "handoff.npz"
    if not path.is_file():
        return None
    arrays = read_npz(path, HANDOFF_KEYS)
    bad = [k for k, v in arrays.items() if v.dtype.kind not in "fiu"]
    if bad:
        raise RunFormatError(f"handoff.npz: {', '.join(bad)} hold non-numbers")
    if any(arrays[k].shape != () for k in ("step", "rule", "plateau_step", "seconds")):
        raise RunFormatError("handoff.npz: step, rule, plateau_step and seconds must be single numbers")
    if not all(np.isfinite(v).all() for v in arrays.values()):
        raise RunFormatError("handoff.npz: weights or AdamW state are NaN or infinite")
    rules = SHIFT_RULES
    step, rule, plateau = int(arrays["step"]), int(arrays["rule"]), int(arrays["plateau_step"])
    if rule not in range(len(rules)):
        raise RunFormatError(f"handoff.npz: rule {rule} is not one of 0..{len(rules) - 1} ({', '.join(rules)})")
    records = run.records
    at = records.index[records["step"] == step]
    if run.config.model != "single" or len(at) != 1 or records.loc[at[0], "phase"] != "single":
        raise RunFormatError(f"handoff.npz: step {step} is not an evaluation step of this Single run's records.csv")
    if float(records.loc[at[0], "seconds"]) != float(arrays["seconds"]):
        raise RunFormatError(f"handoff.npz: {float(arrays['seconds'])} s of training at step {step}, records.csv "
                             f"says {records.loc[at[0], 'seconds']}")
    if not -1 <= plateau <= step:
        raise RunFormatError(f"handoff.npz: plateau step {plateau} is after the switch at step {step}")
    if rules[rule] == "fixed" and step != run.config.shift_step:
        raise RunFormatError(f"handoff.npz: a fixed switch at step {step}, but config.json's shift_step is "
                             f"{run.config.shift_step}")
    if rules[rule] == "fallback" and run.status != "complete":
        raise RunFormatError("handoff.npz: a fallback switch is only final in a complete run, this one is "
                             f"{run.status}")
    stored = np.flatnonzero(run.weight_steps == step)
    if len(stored):
        for name, w in run.weights.items():
            h = arrays.get(f"model/{name}")
            if h is None or h.shape != w.shape[1:] or not np.array_equal(h, w[stored[0]]):
                raise RunFormatError(f"handoff.npz: model/{name} is not weights.npz's {name} at step {step}")
    return arrays


def find_runs(root: Path) -> dict[str, dict[str, Path]]:
    """{group: {model: run directory}} for every run under `root`; a group is the --out
    directory of one `algo run` (its models are OUT/<model>/). Hidden directories (a write
    in progress, see write_directory) are skipped."""
    found: dict[str, dict[str, Path]] = {}
    if not Path(root).is_dir():
        return found
    for config_file in sorted(Path(root).glob("**/config.json")):
        if any(part.startswith(".") for part in config_file.relative_to(root).parts):
            continue
        try:
            config = AlgoConfig.from_json(config_file.read_text())
        except Exception:  # not an algorithmic-task run (or a broken one): not offered
            continue
        found.setdefault(str(config_file.parent.parent), {})[config.model] = config_file.parent
    return found


def group_directory(root: Path, config: AlgoConfig, preset_name: str) -> Path:
    """Where the app writes one Train's three runs: ROOT/<task>-<preset>-<key>/<model>/, the key
    being the SHIFT config's (every field that changes any of the three runs)."""
    return Path(root) / f"{config.task}-{preset_name}-{config.replace(model='shift').key()}"


def stored_meta(directory: Path) -> dict | None:
    """A run directory's meta.json (None when there is no readable one), without its tables."""
    try:
        meta = json.loads((Path(directory) / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def stored_status(directory: Path) -> str | None:
    """The stored run's status: a cheap check of whether a run is stored."""
    return (stored_meta(directory) or {}).get("status")


def timings(root: Path, config: AlgoConfig) -> list[tuple[float, float]]:
    """(seconds from start to finish, seconds of training) of each complete run under `root`
    made with `config`'s settings, on any task and as any model."""
    found = []
    for models in find_runs(root).values():
        for directory in models.values():
            meta = stored_meta(directory)
            try:
                same = AlgoConfig.from_json((directory / "config.json").read_text())
                same = same.replace(task=config.task, model=config.model) == config
                wall, train = float(meta["finished"]) - float(meta["started"]), float(meta["train_seconds"])
            except (ConfigError, OSError, KeyError, TypeError, ValueError):
                continue
            if same and meta.get("status") == "complete":
                found.append((wall, train))
    return found
