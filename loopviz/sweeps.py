"""Sweeps as tasks on dask.distributed: the seed sweep, the SHIFT sweep and the atlas.

A sweep is a plan of points: one config each, named by a key (the config's hash, which
includes its seeds, plus a repeat index where one config is timed several times). Each
point is a task on a `distributed.Client` or runs in this process: by default (see
`placement`) in this process when a LocalCluster of single-threaded worker processes, one
per core, would save less time than it takes to start, else on one; `--workers N` always
starts N workers, `--workers 0` / `--serial` runs in this process, and `--scheduler
tcp://HOST:PORT` (or LOOPVIZ_SCHEDULER) uses an existing cluster. Rows stream
back as tasks finish and each task's rows are appended to the output at once, fsynced, so
a killed sweep keeps every finished point and a rerun with the same --out skips them.
A point's row depends only on its config (float64, one thread), so it is the same bit
for bit wherever it ran; only the columns ending in "seconds" measure time.

Seed sweeps: the points left to do are grouped into tasks of many seeds of one
configuration (chunks), trained together by toy/batched.py (one batched forward/backward
per model, rows bit for bit those of one-seed training), so 20 seeds cost about two
single runs. Rows stay keyed per seed: a chunk appends one row per seed, and a rerun
rechunks only the seeds not yet written.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from .config import ConfigError, RunConfig, coerce
from .toy import markov

if TYPE_CHECKING:
    import pandas as pd
# pandas, scipy.stats (atlas, stats) and dask load where they are used: a worker process
# imports this module to run points, and a sweep run in this process needs no dask.

SCHEDULER_ENV = "LOOPVIZ_SCHEDULER"
# Every process doing linear algebra pins its BLAS/OpenMP threads before numpy or torch load
# (DESIGN.md: two workers with several threads each on two cores ran 4x slower).
PINNED_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
EXIT_BAD_INPUT, EXIT_FAILED, EXIT_CANCELLED = 2, 1, 130


class SweepError(Exception):
    """Bad input or an output file that cannot be resumed; the message says which."""


# ------------------------------------------------------------------ training (the one seam)
def train_curves(configs: list[RunConfig]) -> list[dict[str, np.ndarray]]:
    """Per-epoch metrics (epochs 0..E) and training seconds of each config, spectra off.

    The atlas trains here, one run at a time: it needs every metric's per-epoch curve
    (and the final θ for spectra), which toy/batched.py does not record. Seed sweeps
    need final metrics only and train in batches (seed_rows).
    """
    from .toy.training import train  # imported in the worker: summaries of finished sweeps need no training code

    out = []
    for config in configs:
        records = list(train(config.replace(hessian_every=0)))
        curves = {name: np.array([r.metrics[name] for r in records]) for name in records[0].metrics}
        curves["epoch"] = np.array([r.epoch for r in records])
        curves["seconds"] = np.array([r.seconds for r in records])
        curves["diverged"] = np.array([bool(r.diverged) for r in records])
        curves["theta"] = records[-1].theta
        out.append(curves)
    return out


def final_metrics(config: RunConfig) -> dict[str, float]:
    """Train `config` (no spectra) and return its last record's metrics and status."""
    curves = train_curves([config])[0]
    return {**{name: float(values[-1]) for name, values in curves.items()
               if name not in ("epoch", "seconds", "diverged", "theta")},
            "epoch": int(curves["epoch"][-1]), "diverged": bool(curves["diverged"][-1]),
            "seconds": float(curves["seconds"][-1])}


def _ceilings(config: RunConfig) -> dict[str, float]:
    """The task's Bayes ceilings (train and held-out) and the draw's majority (memorisation) ceiling."""
    task = markov.task_for(config)
    row = {}
    for split, prefix in (("train", "bayes_acc"), ("val", "bayes_val_acc")):
        for name, value in markov.bayes_accuracy(task, split).items():
            row[f"{prefix}_{name}"] = value
    for name, value in markov.memorisation_ceiling(task).items():
        row[f"memorise_{name}"] = value
    return row


# ------------------------------------------------------------------ points
def seed_point(base: RunConfig) -> dict[str, float]:
    """Both models of one seed, plus the task's Bayes and memorisation ceilings."""
    return seed_rows([base])[0]


def seed_rows(bases: list[RunConfig]) -> list[dict[str, float]]:
    """seed_point of many seeds of one configuration, trained together by toy/batched.py
    (one batched forward/backward per model; rows equal those of one-seed training bit for
    bit, "seconds" aside, which is each run's share of its batch's training time)."""
    from .toy.batched import final_metrics_many  # imported in the worker: summaries need no training code

    models = ("single", "looped")
    finals = final_metrics_many([base.replace(model=m) for base in bases for m in models])
    rows = []
    for i, base in enumerate(bases):
        row: dict[str, float] = {"seed": base.seed, "data_seed": base.data_seed}
        for j, model in enumerate(models):
            metrics = finals[len(models) * i + j]
            for name, value in metrics.items():   # the types final_metrics gives
                if name not in ("epoch", "diverged", "seconds"):
                    row[f"{model}_{name}"] = float(value)
            row[f"{model}_epoch"] = int(metrics["epoch"])
            row[f"{model}_diverged"] = bool(metrics["diverged"])
            row[f"{model}_seconds"] = float(metrics["seconds"])
        task = markov.task_for(base)
        for name, value in markov.bayes_accuracy(task).items():
            row[f"bayes_{name}"] = value
        for name, value in markov.memorisation_ceiling(task).items():
            row[f"memorise_{name}"] = value
        row["gap_acc_high"] = row["looped_acc_high"] - row["single_acc_high"]
        row["gap_val_acc_all"] = row["looped_val_acc_all"] - row["single_val_acc_all"]
        row["gap_val_acc_high"] = row["looped_val_acc_high"] - row["single_val_acc_high"]
        rows.append(row)
    return rows


def shift_point(config: RunConfig) -> dict[str, float]:
    """One point of the SHIFT efficiency sweep: train (no spectra), time it, final metrics."""
    final_metrics(config.replace(model="looped", epochs=2))  # warm-up: a fresh worker's first steps are slow
    row = {"model": config.model, "shift_epoch": config.shift_epoch if config.model == "shift" else -1}
    row.update(final_metrics(config))
    return row


RUN_FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}
ATLAS_CONFIG_COLUMNS = tuple(f.name for f in fields(RunConfig) if f.name not in ("model", "device"))


def atlas_point(base: RunConfig, spectra: bool = False) -> dict[str, float]:
    """One (configuration, seed) of the atlas: the config's fields, both models' final and
    best accuracies, ceilings, loss gaps and times to reach (loopviz.atlas.pair_row); with
    `spectra`, the final epoch's exact Hessian summary of each model (Def. 1, Assumption 1)."""
    from . import atlas

    pair = dict(zip(atlas.MODELS, train_curves([base.replace(model=m) for m in atlas.MODELS])))
    row: dict[str, float] = {name: getattr(base, name) for name in ATLAS_CONFIG_COLUMNS}
    row.update(atlas.pair_row(pair))
    row.update(_ceilings(base))
    for model in atlas.MODELS:
        row[f"{model}_seconds"] = float(pair[model]["seconds"][-1])
    if spectra:
        row.update(_final_spectra(base, pair))
    return row


def _final_spectra(base: RunConfig, pair: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Exact Hessian spectra at each model's final weights (SPEC §3), and Assumption 1."""
    from . import atlas, curvature
    from .toy.training import prepare

    problem = prepare(base)
    out, eigs = {}, {}
    for model in atlas.MODELS:
        config = base.replace(model=model)
        eigs[model] = problem.hessian_spectrum(pair[model]["theta"], config.loops_at(config.epochs))
        out[f"{model}_lambda_max"] = float(eigs[model][-1])
    check = curvature.assumption1(eigs["single"], eigs["looped"], base.river_eps, base.low_curvature_tau)
    out.update({"single_low_curvature": check.m1, "looped_low_curvature": check.m2,
                "assumption1_holds": bool(check.holds)})
    return out


POINT_KINDS: dict[str, Callable[..., dict]] = {"seed": seed_point, "shift": shift_point, "atlas": atlas_point}


@dataclass(frozen=True)
class Point:
    """One task of a sweep: what to run and the key that names its row."""

    key: str
    kind: str
    config_json: str
    options: tuple[tuple[str, object], ...] = ()


def run_point(point: Point) -> dict:
    """The task: run one point and return its row (key first). Runs on a worker."""
    function = POINT_KINDS[point.kind]
    return {"key": point.key, **function(RunConfig.from_json(point.config_json), **dict(point.options))}


def run_chunk(points: tuple[Point, ...]) -> list[dict]:
    """The task: the rows of a chunk of points (see chunks). Seed points are trained
    together (seed_rows); any other kind, one point at a time."""
    if points[0].kind == "seed":
        rows = seed_rows([RunConfig.from_json(p.config_json) for p in points])
        return [{"key": p.key, **row} for p, row in zip(points, rows)]
    return [run_point(p) for p in points]


# Seeds of one configuration trained in one task: enough to make a batch's per-call
# overhead small, few enough that rows still stream back and a killed task loses little.
SEED_CHUNK = 32


def chunks(points: list[Point], slots: int) -> list[tuple[Point, ...]]:
    """The tasks for `points`: seed points of one configuration (all fields but seed and
    data_seed the same) in chunks spread over `slots` workers, at most SEED_CHUNK each;
    every other point alone. Chunking follows the points left to do, so rows stay keyed
    per seed and a resumed sweep rechunks only the seeds not yet written."""
    groups: dict[str, list[Point]] = {}
    out: list[tuple[Point, ...]] = []
    for point in points:
        if point.kind != "seed":
            out.append((point,))
            continue
        shape = RunConfig.from_json(point.config_json).replace(seed=0, data_seed=0).key()
        groups.setdefault(shape, []).append(point)
    for members in groups.values():
        size = min(SEED_CHUNK, -(-len(members) // max(1, slots)))
        out.extend(tuple(members[i:i + size]) for i in range(0, len(members), size))
    return out


def plan(kind: str, configs: Iterable[RunConfig], **options) -> list[Point]:
    """Points for configs; a config that appears k times (timed repeats) gets keys
    KEY-r0 ... KEY-r(k-1), so each repeat is its own row."""
    seen: dict[str, int] = {}
    points = []
    for config in configs:
        key = config.key()
        repeat = seen.get(key, 0)
        seen[key] = repeat + 1
        points.append(Point(f"{key}-r{repeat}", kind, config.to_json(), tuple(sorted(options.items()))))
    return points


# ------------------------------------------------------------------ where points run
# A sweep given no --workers, --serial or --scheduler runs on a LocalCluster (one worker per
# core, at most one per task) only when spreading its estimated training time over those
# workers would save more than the cluster costs to start; otherwise in this process
# (issue #12: 20 seeds of the default config train in ~1.4 s; 2 workers would save ~0.7 s).
# The estimate is a cost model of the numpy training, in CPU seconds of the 2-core
# development machine (bench/bench_run.py --costs: ×0.88–1.22 the measured CPU time of seed,
# atlas and SHIFT plans; it and the start-up below both scale with the CPU's speed):
# a full-batch step of R stacked runs of L loops with P = 3d² + 3d weights costs
# STEP + L·(LOOP + R·(RUN_LOOP + P·RUN_LOOP_PER_WEIGHT)); a minibatch step adds
# MINIBATCH per run (its count table); one run trained alone with every epoch's record
# (the atlas, the SHIFT sweep) costs RECORDED times its step; each run adds RUN_SETUP
# (its task, ceilings, final metrics), an atlas --spectra run SPECTRUM·(P / 816)³.
STEP, LOOP, RUN_LOOP, RUN_LOOP_PER_WEIGHT = 50e-6, 25e-6, 7e-6, 0.017e-6
MINIBATCH, RECORDED, RUN_SETUP, SPECTRUM = 20e-6, 1.45, 2e-3, 0.05
# Wall seconds a LocalCluster of 2 workers adds to a sweep (start, the workers' imports, close;
# bench/bench_run.py --cluster, `sweep-seeds --seeds 2 --epochs 1`, --workers 2 less --serial):
# 0.9–1.3 s at load 1.3, 1.5–2.4 s at load 2.5, and ~1.9 s more CPU either way; ~2.5–5 s
# before the workers stopped importing pandas and scipy with this module. On a shared machine
# a busy core also saves less than its share, so the rule takes the middle of that range.
CLUSTER_START_SECONDS = 1.5


def _step_seconds(config: RunConfig, runs: int, loops: float) -> float:
    """One epoch of `runs` stacked runs of `config` at `loops` loops (the model above)."""
    weights = 3 * config.d ** 2 + 3 * config.d
    step = STEP + loops * (LOOP + runs * (RUN_LOOP + weights * RUN_LOOP_PER_WEIGHT))
    if config.batch_size in (0, config.n_train):
        return step
    return -(-config.n_train // config.batch_size) * (step + runs * MINIBATCH)


def _mean_loops(config: RunConfig) -> float:
    """Loops per update averaged over the epochs (SHIFT runs one loop up to its shift epoch)."""
    if config.model != "shift":
        return float(config.loops_at(config.epochs))
    single = min(config.shift_epoch, config.epochs)
    return (single + (config.epochs - single) * config.loops) / config.epochs


def estimated_seconds(points: list[Point]) -> float:
    """CPU seconds to run `points` in this process (the cost model above), as run_points
    groups them there: seed points of one configuration in batches of SEED_CHUNK."""
    total = 0.0
    for chunk in chunks(points, 1):
        base = RunConfig.from_json(chunk[0].config_json)
        if chunk[0].kind == "seed":
            runs = [(base.replace(model=m), len(chunk), 1.0) for m in ("single", "looped")]
        elif chunk[0].kind == "shift":   # the point's run and its 2-epoch warm-up, recorded
            warm = base.replace(model="looped", epochs=2)
            runs = [(base, 1, RECORDED), (warm, 1, RECORDED)]
        else:
            runs = [(base.replace(model=m), 1, RECORDED) for m in ("single", "looped")]
        for config, size, factor in runs:
            total += factor * config.epochs * _step_seconds(config, size, _mean_loops(config)) + size * RUN_SETUP
            if dict(chunk[0].options).get("spectra"):
                total += SPECTRUM * ((3 * config.d ** 2 + 3 * config.d) / 816) ** 3
    return total


def placement(points: list[Point], workers: int | None, scheduler: str | None,
              cores: int | None = None) -> tuple[int, str]:
    """Where run_points runs `points`: (workers, the one line that says where and why).
    An explicit scheduler or worker count is obeyed; workers None applies the rule above,
    with one worker per core (`cores`, default os.cpu_count()) that would have a task."""
    if scheduler:
        return workers or 0, f"on the dask scheduler at {scheduler} (--scheduler / ${SCHEDULER_ENV})"
    if workers is not None:
        return workers, ("in this process (--serial / --workers 0)" if workers == 0
                         else f"on a LocalCluster of {workers} worker{'s' * (workers > 1)} (--workers {workers})")
    cores = cores or os.cpu_count() or 1
    seconds = estimated_seconds(points)
    spread = min(cores, len(chunks(points, cores)))   # workers that would have a task
    saved = seconds * (1 - 1 / spread)
    if saved > CLUSTER_START_SECONDS:
        return spread, (f"on a LocalCluster of {spread} workers: ~{seconds:.1f} s of training (estimated) over "
                        f"{spread} workers saves ~{saved:.1f} s, more than the ~{CLUSTER_START_SECONDS} s a cluster "
                        "takes to start (--serial to run here)")
    if spread == 1:
        why = f"{'one core' if cores == 1 else 'one task'}: more workers would save nothing"
    else:
        why = (f"{spread} workers would save ~{saved:.1f} s, not more than the ~{CLUSTER_START_SECONDS} s a "
               "LocalCluster takes to start")
    return 0, f"in this process: ~{seconds:.1f} s of training (estimated); {why} (--workers N to use one)"


def _client(workers: int, scheduler: str | None):
    """A distributed.Client on the given scheduler, or on a new LocalCluster of `workers`
    single-threaded processes (threads pinned, dashboard off, loopback only)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    with dask.config.set({"distributed.nanny.pre-spawn-environ": PINNED_THREADS}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, scheduler_port=0, env=PINNED_THREADS,
                               # no dashboard; its health endpoint on loopback, a free port
                               scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                               silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_points(points: list[Point], workers: int, scheduler: str | None = None) -> Iterator[dict]:
    """Rows of `points` as they finish: in this process when workers == 0 and no scheduler,
    else as tasks on dask.distributed. A worker lost mid-task is retried by the scheduler
    (distributed.scheduler.allowed-failures). Closing the iterator cancels what is left."""
    for rows in run_tasks(points, workers, scheduler):
        yield from rows


def run_tasks(points: list[Point], workers: int, scheduler: str | None = None) -> Iterator[list[dict]]:
    """run_points, a task's rows at a time (a chunk of seeds finishes together)."""
    if not points:
        return
    if workers == 0 and not scheduler:
        for chunk in chunks(points, 1):
            yield run_chunk(chunk)
        return
    from distributed import as_completed

    client, cluster = _client(workers, scheduler)
    futures = []
    try:
        tasks = chunks(points, sum(client.nthreads().values()) or workers)
        # Explicit keys: a resubmitted chunk (a resumed sweep on a live cluster) is the same task.
        futures = [client.submit(run_chunk, chunk, key=_task_key(chunk), pure=False) for chunk in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()


def _task_key(chunk: tuple[Point, ...]) -> str:
    if len(chunk) == 1:
        return f"loopviz-{chunk[0].kind}-{chunk[0].key}"
    digest = hashlib.sha256("\n".join(p.key for p in chunk).encode()).hexdigest()[:16]
    return f"loopviz-{chunk[0].kind}-{chunk[0].key}-x{len(chunk)}-{digest}"


# ------------------------------------------------------------------ the output file
def _cell(value) -> str:
    """Text of one value; floats by repr, which round-trips exactly."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


class RowFile:
    """A CSV that grows by the fsynced lines of each finished task and can be resumed.

    Opening an existing file drops a torn last line (a kill mid-write), reads the keys
    already there, and checks they all belong to this sweep's plan.
    """

    def __init__(self, path: Path, keys: list[str], fresh: bool):
        self.path = Path(path)
        self.header: list[str] | None = None
        self.done: set[str] = set()
        if fresh or not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
            return
        text = self.path.read_text()
        # A file whose first line is not a sweep header is someone else's: refuse before touching it.
        if text and "key" not in next(csv.reader([text.split("\n", 1)[0]]), []):
            raise SweepError(f"{self.path} is not a loopviz sweep file (no 'key' column); use another --out or --force")
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
            self.path.write_text(text)
        lines = list(csv.reader(io.StringIO(text)))
        if not lines:
            return
        self.header = lines[0]
        column = self.header.index("key")
        self.done = {line[column] for line in lines[1:] if len(line) == len(self.header)}
        foreign = self.done - set(keys)
        if foreign:
            raise SweepError(f"{self.path} holds {len(foreign)} point(s) of another sweep (different config); "
                             "use another --out, or --force to start over")

    def append(self, *rows: dict) -> None:
        """Rows that finished together (a task's), in one write and one fsync."""
        if not rows:
            return
        header = self.header or list(rows[0])
        for row in rows:
            if set(row) != set(header):
                raise SweepError(f"a row's columns differ from {self.path}'s header: "
                                 f"{sorted(set(row) ^ set(header))}")
        buffer = io.StringIO()
        if self.header is None:
            buffer.write(",".join(header) + "\n")
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow([_cell(row[name]) for name in header])
        self._write(buffer.getvalue())
        self.header = header
        self.done.update(row["key"] for row in rows)

    def _write(self, text: str) -> None:
        with open(self.path, "a") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def read_rows(path: Path) -> pd.DataFrame:
    """A sweep file as written (floats exactly as computed)."""
    import pandas as pd

    return pd.read_csv(path)  # pandas 3 parses repr floats exactly (tests/test_sweeps.py checks it)


def raw_path(out: Path) -> Path:
    """Where `sweep-shift --out OUT` appends its raw timed runs: OUT.raw.csv (OUT holds the summary)."""
    return Path(str(out) + ".raw.csv")


def shift_timing_noise(out: Path) -> float:
    """verdicts.timing_noise of the raw runs beside a sweep-shift summary OUT: the relative
    spread of pure Looped-Attn's repeated timings (0 when no raw file is there)."""
    from . import verdicts

    raw = raw_path(out)
    return verdicts.timing_noise(read_rows(raw)) if raw.exists() else 0.0


def in_plan_order(table: pd.DataFrame, points: list[Point]) -> pd.DataFrame:
    """Rows sorted as the plan lists them: the same file whatever order tasks finished in."""
    order = {p.key: i for i, p in enumerate(points)}
    return table.assign(_order=table["key"].map(order)).sort_values("_order").drop(columns="_order") \
        .reset_index(drop=True)


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write aside, then rename into place: a kill never leaves half a table."""
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(",".join(table.columns) + "\n")
        writer = csv.writer(handle, lineterminator="\n")
        for values in table.itertuples(index=False):
            writer.writerow([_cell(v) for v in values])
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def sweep(points: list[Point], path: Path, fresh: bool, workers: int | None, scheduler: str | None,
          progress=None) -> tuple[pd.DataFrame, bool, int]:
    """Run the points not yet in `path`, appending each task's rows as it finishes; where (workers
    None: this process or a LocalCluster, by `placement`'s rule) is said in one line on stderr.

    Returns (every row of the plan now in the file, in plan order; interrupted by
    Ctrl-C; points skipped because they were already done)."""
    store = RowFile(path, [p.key for p in points], fresh)
    todo = [p for p in points if p.key not in store.done]
    skipped = len(points) - len(todo)
    if skipped:
        print(f"resuming {path}: {skipped} of {len(points)} points already done", file=sys.stderr)
    if todo:
        workers, where = placement(todo, workers, scheduler)
        print(f"{len(todo)} points {where}", file=sys.stderr)
    interrupted = False
    done = skipped
    try:
        for rows in run_tasks(todo, workers or 0, scheduler):
            store.append(*rows)
            done += len(rows)
            if progress is not None:
                progress.show(done, f"{done}/{len(points)} points")
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: keeping the {done} points finished in {path}", file=sys.stderr)
    if progress is not None:
        progress.show(done, "done", final=True)
    if not path.stat().st_size:
        import pandas as pd

        return pd.DataFrame(columns=["key"]), interrupted, skipped
    table = read_rows(path)
    return in_plan_order(table, points), interrupted, skipped


# ------------------------------------------------------------------ seed and shift sweeps
def seed_configs(base: RunConfig, seeds: int, vary: str, first: int = 0) -> list[RunConfig]:
    """One config per seed; vary = 'data_seed', 'seed' or 'both' (both set to s)."""
    fields_ = {"data_seed": ("data_seed",), "seed": ("seed",), "both": ("data_seed", "seed")}[vary]
    return [base.replace(hessian_every=0, **{f: s for f in fields_}) for s in range(first, first + seeds)]


def summarise_seed_sweep(table: pd.DataFrame) -> dict:
    """How often, and how, Looped beats Single on high-IC accuracy, with intervals (stats.py)."""
    from . import stats

    return stats.seed_sweep_summary(table)


def summary_line(summary: dict) -> str:
    from . import stats

    return stats.seed_sweep_sentence(summary)


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
    return shift.drop(columns="key", errors="ignore").reset_index(drop=True)


# ------------------------------------------------------------------ the atlas grid
def parse_grid(items: list[str], base: RunConfig) -> dict[str, list]:
    """['d=2,4', 'lr=1e-3,3e-3'] → {'d': [2, 4], 'lr': [0.001, 0.003]}, each value checked
    against RunConfig (with the base's other fields) before anything runs."""
    grid: dict[str, list] = {}
    names = set(ATLAS_CONFIG_COLUMNS) - {"seed", "data_seed"}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise SweepError(f"--grid items look like name=v1,v2; got {item!r}")
        if name not in names:
            raise SweepError(f"--grid: {name!r} is not a config field that can be swept "
                             f"(seeds are set by --seeds); choose from {', '.join(sorted(names))}")
        if name in grid:
            raise SweepError(f"--grid names {name} twice")
        parsed = []
        for text in values.split(","):
            try:  # the type here; ranges and combinations (onehot needs d >= 6) below
                parsed.append(coerce(name, RUN_FIELD_TYPES[name], text.strip()))
            except ConfigError as exc:
                raise SweepError(f"--grid {name}={text.strip()}: {exc}") from None
        if len(set(parsed)) != len(parsed):
            raise SweepError(f"--grid {name} repeats a value")
        grid[name] = parsed
    for combination in itertools.product(*grid.values()):  # combinations can be invalid (onehot with d < 6)
        try:
            base.replace(**dict(zip(grid, combination)))
        except ConfigError as exc:
            where = ", ".join(f"{k}={v}" for k, v in zip(grid, combination))
            raise SweepError(f"--grid: {where} is invalid: {exc}") from None
    return grid


def atlas_configs(base: RunConfig, grid: dict[str, list], seeds: int, first: int = 0) -> list[RunConfig]:
    """Every grid combination × seeds (data_seed = seed = s), spectra off."""
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    return [base.replace(hessian_every=0, seed=s, data_seed=s, **combo)
            for combo in combos for s in range(first, first + seeds)]


def rows_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Same rows bit for bit, apart from the timing columns."""
    from . import atlas

    keep = [c for c in a.columns if not c.endswith(atlas.TIMING_SUFFIX)]
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    left, right = a[keep].reset_index(drop=True), b[keep].reset_index(drop=True)
    for name in keep:
        x, y = left[name].to_numpy(), right[name].to_numpy()
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            x, y = x.astype(float), y.astype(float)
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            if not same.all():
                return False
        elif not (x == y).all():
            return False
    return True

