"""The command line: `python -m loopviz run|sweep-seeds|sweep-shift|length-gen ...` (headless runs and sweeps).

Every RunConfig field is an option (`--data-seed`, `--keep-all-sequences false`, ...);
`--config FILE` starts from a JSON config. Bad input: one `error:` line on stderr, exit 2,
nothing written, checked before any work (the output path included). A diverged run keeps
its records and exits 3. Ctrl-C (or SIGTERM) stops at the next epoch, writes every record
and spectrum computed so far with status `cancelled`, and exits 130 (143 for SIGTERM).

Only argparse and the config are imported at parse time: `--help` never loads torch.
"""
from __future__ import annotations

import os

# Before numpy and torch load (they read these once): one BLAS/OpenMP thread unless the user
# chose, so that this process and its spectrum workers never oversubscribe the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from .config import (
    DEVICES,
    EMBEDDINGS,
    MODELS,
    OPTIMIZERS,
    TRANSITION_KINDS,
    ConfigError,
    RunConfig,
    overwrite_refused,
)
from .foreground import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED, Interrupts, report_end, run_attached
from .runs.log import RunLog, remaining_seconds
from .runs.status import Status

MAX_SEEDS = 10_000          # sweep-seeds points: 10 000 × two 600-epoch runs is already days of CPU
MAX_REPEATS = 100
MAX_WORKERS = 256
MAX_CONFIG_BYTES = 1_000_000  # a config is ~1 kB; anything larger is not one

# One line of meaning per RunConfig field (the paper's section where it has one).
OPTION_HELP = {
    "model": "which model trains: Single-Attn (T = 1), Looped-Attn (T loops), or SHIFT (Single, then Looped)",
    "loops": "T, the loops of Looped-Attn (the paper uses 3)",
    "d": "embedding width; the model has P = 3 d² + 3 d parameters and the Hessian is P × P",
    "embedding": "random: seeded Gaussian token and position vectors; onehot: token ⊕ position one-hots (d ≥ 6)",
    "init_scale": "standard deviation of the Gaussian initial weights",
    "epochs": "training epochs (the paper: 600)",
    "lr": "learning rate of the optimizer (the paper: Adam at 1e-3)",
    "batch_size": "minibatch size; 0 = full batch, one optimizer step per epoch",
    "optimizer": "adam (the paper, App. E.1.1); sgd: SGD on minibatches of batch_size (> 0); gd: full-batch "
                 "gradient descent (batch_size 0)",
    "momentum": "sgd/gd only: torch SGD momentum μ in [0, 1) (heavy ball: u ← μu + g, θ ← θ − lr·u)",
    "seed": "seed of the initial weights and the minibatch order",
    "device": "where training runs: auto = CUDA when available, else CPU",
    "data_seed": "seed of the transitions, embeddings and the training/validation draws",
    "transitions": "rows of T1, T2, T3: Dirichlet(concentration) draws, or normalised uniform draws",
    "concentration": "Dirichlet concentration of the transition rows (1 = uniform on the simplex)",
    "alpha": "oversampling exponent: sequences are drawn ∝ P(X)^alpha (the paper: 2), so likely ones repeat",
    "n_train": "training sequences (the paper: N = 500)",
    "n_val": "held-out validation sequences, drawn the same way",
    "keep_all_sequences": "true: each of the 81 sequences appears once, then oversample up to n_train",
    "hessian_every": "a Hessian spectrum every k epochs and at the last; 0 = no spectra",
    "river_eps": "Def. 1: eigenvalues ≤ eps are the river, the rest the valley",
    "valley_delta": "Def. 1: the valley is U-shaped when its condition number κ ≤ 1 + delta",
    "low_curvature_tau": "Assumption 1: valley eigenvalues ≤ tau count as low curvature",
    "entropy_bins": "log-spaced bins of |λ| for the spectral entropy and mutual information",
    "entropy_min": "|λ| below this falls in the first entropy bin",
    "entropy_max": "|λ| above this falls in the last entropy bin",
    "shift_epoch": "SHIFT only: train Single-Attn up to this epoch, then Looped-Attn",
    "scp_wait": "SCP's rule: patience = E_plateau + W (the paper, Sec. 5); gradient = also wait for a settled "
                "gradient norm (ours)",
    "entropy_definition": "Hessian entropy / MI: histogram of |λ| on fixed log bins, or spectral p_i = |λ_i| / Σ|λ| "
                          "(the paper's formula, App. E.1.2)",
    "reset_optimizer": "SHIFT only: fresh optimizer state at the switch (Adam moments or SGD momentum; default: keep)",
}
CHOICES = {"model": MODELS, "optimizer": OPTIMIZERS,
           "embedding": EMBEDDINGS, "transitions": TRANSITION_KINDS, "device": DEVICES,
           "keep_all_sequences": ("true", "false"), "reset_optimizer": ("true", "false")}


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: ...` and a pointer to --help, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see `{self.prog} --help`)\n")


def default_workers() -> int:
    """Spectrum/sweep worker processes by default: one per CPU core."""
    return max(1, os.cpu_count() or 1)


def _option_help(name: str, default) -> str:
    meaning = OPTION_HELP.get(name, name.replace("_", " "))
    choices = CHOICES.get(name)
    shown = str(default).lower() if isinstance(default, bool) else default
    return meaning + (f" (choices: {', '.join(choices)}; " if choices else " (") + f"default: {shown})"


def _add_config_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    group = parser.add_argument_group("run configuration (each overrides --config)")
    group.add_argument("--config", type=Path, metavar="FILE",
                       help="start from this JSON config, e.g. a run's config.json (default: none)")
    for f in fields(RunConfig):
        if f.name in skip:
            continue
        metavar = "{" + ",".join(CHOICES[f.name]) + "}" if f.name in CHOICES else f.type.upper()
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar=metavar,
                           help=_option_help(f.name, f.default))


def _read_config_file(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is over {MAX_CONFIG_BYTES} bytes; it is not a run config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return RunConfig.from_json(text).to_dict()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _config_from_args(args: argparse.Namespace, **overrides) -> RunConfig:
    base = _read_config_file(args.config) if args.config is not None else {}
    for f in fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            base[f.name] = value
    base.update(overrides)
    return RunConfig.from_dict(base)


# ------------------------------------------------------------------ output paths, checked up front
def _out_path(text: str) -> Path:
    if not text.strip():
        raise UsageError("--out is empty; name a path to write to")
    return Path(text)


def _check_writable_dir(directory: Path) -> None:
    """Create `directory` if needed and prove a file can be made in it, before any work."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".loopviz-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write into {directory}: {exc.strerror or exc}") from None


def _check_out_file(out: Path, force: bool, side_suffixes: tuple[str, ...] = ()) -> None:
    """OUT and the files written beside it (OUT + suffix) obey --force; OUT's folder must be writable."""
    for path in (out, *(Path(str(out) + s) for s in side_suffixes)):
        if path.is_dir():
            raise UsageError(f"{path} is a directory; --out names a file")
        if refusal := overwrite_refused([path], force):
            raise UsageError(refusal)
    _check_writable_dir(out.parent)


def _check_sweep_out(out: Path) -> Path:
    """A sweep's OUT is appended to and resumed, so an existing file is no error; a folder, or an
    unwritable place, is - and is found before any point runs."""
    if out.is_dir():
        raise UsageError(f"{out} is a directory; --out names a file")
    _check_writable_dir(out.parent)
    return out


def _check_workers(workers: int) -> int:
    if not 0 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 0 and {MAX_WORKERS}, got {workers}")
    return workers


class Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.start, self.last = label, total, time.time(), 0.0

    def show(self, done: int, detail: str = "", final: bool = False) -> None:
        now = time.time()
        # A terminal gets a live bar; a log file gets a line every 5 seconds.
        interactive = sys.stderr.isatty()
        if not final and now - self.last < (0.1 if interactive else 5.0):
            return
        if final and not interactive:
            return  # a log gets the summary line instead
        self.last = now
        frac = min(1.0, max(0.0, done / max(self.total, 1)))
        elapsed = now - self.start
        eta = f"eta {remaining_seconds(frac, elapsed):5.1f}s" if 0 < frac < 1 and not final else ""
        bar = "#" * int(30 * frac)
        line = f"[{self.label}] [{bar:<30}] {frac:4.0%} {detail} {elapsed:5.1f}s {eta}"
        sys.stderr.write(("\r" + line + " ") if interactive else line + "\n")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


# ------------------------------------------------------------------ run
def _models(text: str) -> list[str]:
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if not models or unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise UsageError(f"--model names {', '.join(twice)} twice; each model writes one OUT/<model>/")
    return models


def _check_device(configs: list) -> None:
    if any(c.device == "cuda" for c in configs):
        from .toy.training import device_name  # asks torch only where an NVIDIA driver is present
        try:
            device_name("cuda")
        except RuntimeError:
            raise UsageError("--device cuda: no CUDA device is available to this torch build; use --device cpu "
                             "or auto") from None


def accuracy_summary(run) -> str:
    """Final training/validation accuracy by IC bucket, and the Bayes rule's on the same draws
    (the ceiling in expectation), as a small table."""
    import numpy as np

    from .toy.markov import bayes_bucket_accuracy

    last = run.records.iloc[-1]
    t = run.task
    rows = [("train", [last[f"acc_{b}"] for b in ("low", "high", "all")]),
            ("validation", [last[f"val_acc_{b}"] for b in ("low", "high", "all")])]
    for split in ("train", "val"):
        bayes = bayes_bucket_accuracy(t["transitions"], t[f"{split}_inputs"], t[f"{split}_targets"],
                                      t[f"{split}_bucket"])
        rows.append((f"Bayes ({split})", [bayes[b] for b in ("low", "high", "all")]))
    lines = [f"  {'accuracy at epoch ' + str(int(last['epoch'])):<24}{'low IC':>8}{'high IC':>9}{'all':>8}"]
    for name, values in rows:
        lines.append(f"  {name:<24}" + "".join(f"{v:>{w}.3f}" if np.isfinite(v) else f"{'–':>{w}}"
                                             for v, w in zip(values, (8, 9, 8))))
    return "\n".join(lines)


def command_run(args: argparse.Namespace) -> int:
    models = _models(args.model)
    configs = [_config_from_args(args, model=m) for m in models]
    workers = _check_workers(args.workers)
    out = _out_path(args.out)
    targets = [out / c.model for c in configs]
    for target in targets:
        if target.exists() and not target.is_dir():
            raise UsageError(f"{target} is a file; a run is written as a directory there")
        if refusal := overwrite_refused([target], args.force):
            raise UsageError(refusal)
    _check_device(configs)
    _check_writable_dir(out)

    worst = 0
    finished: dict = {}   # model → RunData of this invocation (SHIFT's Stage I comes from "single")
    with Interrupts() as interrupts:
        for config, target in zip(configs, targets):
            if interrupts.signum is not None:
                break  # stopped during the previous model's write: no further models
            log = RunLog(config)
            bar = Progress(config.model, log.work()[1])

            def show(log=log, bar=bar, epochs=config.epochs) -> None:
                epoch = log.records[-1].epoch if log.records else 0
                bar.show(log.work()[0], f"epoch {epoch}/{epochs} spectra {len(log.spectra)}")

            outcome = run_attached(config, log, interrupts, show, workers=workers, target=target,
                                   overwrite=args.force, prior=lambda c=config: _single_prior(c, finished, out))
            bar.show(log.work()[0], "stopped" if log.status == Status.CANCELLED else log.status, final=True)
            if outcome.run is not None:
                finished[config.model] = run = outcome.run
                if outcome.error:
                    print(f"error: {config.model}: could not write {target}: {outcome.error}", file=sys.stderr)
                    return EXIT_FAILED
                if log.status in (Status.COMPLETE, Status.DIVERGED):
                    print(f"{config.model}: {log.status} in {log.finished - log.started:.1f} s "
                          f"({run.meta['train_seconds']:.1f} s of it training); {len(log.records)} records, "
                          f"{len(log.spectra)} spectra → {target}", file=sys.stderr)
                    print(f"{config.model}\n{accuracy_summary(run)}")
            worst = max(worst, report_end(config.model, log, kept_in=f" in {target}"))
    if interrupts.signum is not None:
        return interrupts.exit_code
    return worst


def _single_prior(config: RunConfig, finished: dict, out: Path):
    """The Single run a SHIFT run can reuse: from this invocation, else from OUT/single/."""
    from .runs.format import RunFormatError, read_run
    if "single" in finished:
        return finished["single"]
    if not (out / "single").exists():
        return None
    try:
        return read_run(out / "single")
    except (RunFormatError, OSError) as exc:
        print(f"note: {out / 'single'} is not reused for SHIFT's Stage I: {exc}", file=sys.stderr)
        return None


# Paper constants of length-gen, repeated here so that parsing needs no torch (test_cli checks they agree).
LENGTHGEN_DEFAULTS = {"lengths": "8,11,14,17", "n": "5000", "max_length": 200, "max_n": 50_000}


def command_length_gen(args: argparse.Namespace) -> int:
    if args.out is not None:
        _check_out_file(_out_path(args.out), args.force)
    from .toy.lengthgen import evaluate_run_dirs
    return evaluate_run_dirs(args)




# ------------------------------------------------------------------ sweeps (points run on dask.distributed)
def _int(name: str, text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} must be an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise UsageError(f"--{name} must be {bound}, got {value}")
    return value


def _where(args: argparse.Namespace) -> tuple[int | None, str | None]:
    """(workers, scheduler) from --workers / --serial / --scheduler / LOOPVIZ_SCHEDULER; workers
    None when none of them is given: sweeps.placement then picks this process or a LocalCluster."""
    from .sweeps import SCHEDULER_ENV

    scheduler = args.scheduler or os.environ.get(SCHEDULER_ENV) or None
    if args.serial:
        if args.scheduler:
            raise UsageError("--serial and --scheduler exclude each other")
        return 0, None
    workers = _int("workers", args.workers, 0, MAX_WORKERS) if args.workers is not None else None
    if scheduler and not scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise UsageError(f"--scheduler must look like tcp://HOST:PORT, got {scheduler!r}")
    return workers, scheduler


def _add_where_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", default=None,
                        help="LocalCluster worker processes; 0 = run in this process (default: this process when "
                             "spreading the estimated work over one worker per core would save less than a "
                             "cluster takes to start, else one worker per core)")
    parser.add_argument("--serial", action="store_true", help="run every point in this process (= --workers 0)")
    parser.add_argument("--scheduler", default=None,
                        help="an existing dask scheduler, tcp://HOST:PORT (default: $LOOPVIZ_SCHEDULER, else a "
                             "LocalCluster)")
    parser.add_argument("--force", action="store_true", help="start over instead of resuming an existing --out")


def _one_line_errors(handler):
    """A sweep's bad input or unresumable output: one 'error: ...' line, exit 2, nothing run."""
    def run(args: argparse.Namespace) -> int:
        from .sweeps import SweepError

        try:
            return handler(args)
        except (SweepError, ConfigError, UsageError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return run


def _seeded_sweep(args: argparse.Namespace) -> tuple[int, int, int | None, str | None, RunConfig]:
    """(seeds, first seed, workers, scheduler, base config) of sweep-seeds and atlas, checked in that order."""
    seeds = _int("seeds", args.seeds, 1, MAX_SEEDS)
    first = _int("first-seed", args.first_seed, 0)
    workers, scheduler = _where(args)
    return seeds, first, workers, scheduler, _config_from_args(args)


def command_sweep_seeds(args: argparse.Namespace) -> int:
    from . import sweeps

    seeds, first, workers, scheduler, base = _seeded_sweep(args)
    out = _check_sweep_out(_out_path(args.out))
    summary = Path(str(out) + ".summary.txt")
    if summary.exists() and not out.exists() and not args.force:  # beside a resumed OUT it is OUT's own summary
        raise UsageError(f"{summary} already exists; use another --out or --force to overwrite")
    points = sweeps.plan("seed", sweeps.seed_configs(base, seeds, args.vary, first))
    table, interrupted, _ = sweeps.sweep(points, out, args.force, workers, scheduler,
                                         Progress("sweep-seeds", len(points)))
    if table.empty:
        return EXIT_CANCELLED if interrupted else EXIT_FAILED
    sweeps.write_table(table, out)
    line = sweeps.summary_line(sweeps.summarise_seed_sweep(table))
    summary.write_text(line + "\n" + base.to_json() + "\n")
    print(line)
    return EXIT_CANCELLED if interrupted else 0


def command_sweep_shift(args: argparse.Namespace) -> int:
    from . import sweeps

    try:
        shift_epochs = [int(x) for x in args.shift_epochs.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--shift-epochs must be comma-separated integers, got {args.shift_epochs!r}") from None
    repeats = _int("repeats", args.repeats, 1, MAX_REPEATS)
    workers, scheduler = _where(args)
    base = _config_from_args(args)
    bad = [s for s in shift_epochs if not 0 <= s <= base.epochs]
    if not shift_epochs or bad:
        raise UsageError(f"shift epochs must lie in [0, epochs = {base.epochs}]; bad: {bad or 'none given'}")
    out = _check_sweep_out(_out_path(args.out))
    raw_path = sweeps.raw_path(out)
    points = sweeps.plan("shift", sweeps.shift_configs(base, shift_epochs, repeats))
    rows, interrupted, _ = sweeps.sweep(points, raw_path, args.force, workers, scheduler,
                                 Progress("sweep-shift", len(points)))
    if rows.empty or not (rows["model"] == "looped").any() or not (rows["model"] == "shift").any():
        if interrupted:  # Ctrl-C's exit status, whatever finished; the rows kept let a rerun resume
            print("no summary yet: a pure Looped-Attn and a SHIFT run must both finish first; the same command "
                  "resumes the sweep", file=sys.stderr)
            return EXIT_CANCELLED
        print("error: too few runs finished to compare SHIFT with pure Looped-Attn", file=sys.stderr)
        return EXIT_FAILED
    summary = sweeps.summarise_shift_sweep(rows)
    sweeps.write_table(summary, out)
    best = summary.loc[summary["speedup"].idxmax()]
    print(f"{len(summary)} shift epochs; pure Looped {summary['looped_seconds'].iloc[0]:.2f} s; best speed-up "
          f"×{best['speedup']:.2f} at epoch {int(best['shift_epoch'])} (final accuracy gap "
          f"{best['gap_acc_all']:+.3f})")
    return EXIT_CANCELLED if interrupted else 0


def command_atlas(args: argparse.Namespace) -> int:
    from . import sweeps

    seeds, first, workers, scheduler, base = _seeded_sweep(args)
    grid = sweeps.parse_grid(args.grid or [], base)
    out = _check_sweep_out(_out_path(args.out))
    points = sweeps.plan("atlas", sweeps.atlas_configs(base, grid, seeds, first), spectra=bool(args.spectra))
    print(f"atlas: {len(points) // seeds} configurations × {seeds} seeds = {len(points)} points, "
          f"{base.epochs} epochs each", file=sys.stderr)
    table, interrupted, _ = sweeps.sweep(points, out, args.force, workers, scheduler,
                                         Progress("atlas", len(points)))
    if table.empty:
        return EXIT_CANCELLED if interrupted else EXIT_FAILED
    sweeps.write_table(table, out)
    from . import atlas

    overall = atlas.share_summary(atlas.outcomes(table, "faster5_acc"))
    print(f"{len(table)} points written to {out}; Looped faster to +5 points of high-IC training accuracy in "
          f"{overall['wins']}/{overall['n']} (95 % CI {overall['win_low']:.0%}–{overall['win_high']:.0%}), "
          f"Single in {overall['losses']}/{overall['n']}")
    return EXIT_CANCELLED if interrupted else 0


def add_sweep_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register sweep-seeds, sweep-shift and atlas. Options are taken as text and checked
    by the handlers, so bad input gives one 'error: ...' line and exit code 2."""
    seeds = subparsers.add_parser("sweep-seeds", help="both models over many seeds, no spectra: the effect's "
                                                      "distribution")
    _add_config_options(seeds, skip=("model",))
    seeds.add_argument("--seeds", default="20", help="number of seeds")
    seeds.add_argument("--first-seed", default="0")
    seeds.add_argument("--vary", choices=("both", "data_seed", "seed"), default="both",
                       help="which seed each point changes (both: data_seed = seed = s)")
    seeds.add_argument("--out", required=True, help="CSV file (rows appended as points finish; a rerun resumes; "
                                                    "a .summary.txt is written beside it)")
    _add_where_options(seeds)
    seeds.set_defaults(handler=_one_line_errors(command_sweep_seeds))

    shift = subparsers.add_parser("sweep-shift", help="SHIFT at many shift epochs against pure Looped-Attn: "
                                                      "speed-up")
    _add_config_options(shift, skip=("model", "shift_epoch"))
    shift.add_argument("--shift-epochs", default=",".join(str(s) for s in range(0, 600, 50)),
                       help="comma-separated shift epochs (default 0,50,...,550)")
    shift.add_argument("--repeats", default="3", help="timed runs per point (the median is kept)")
    shift.add_argument("--out", required=True, help="CSV to write (raw runs are appended to OUT.raw.csv as they "
                                                    "finish; a rerun resumes)")
    _add_where_options(shift)
    shift.set_defaults(handler=_one_line_errors(command_sweep_shift))

    grid = subparsers.add_parser("atlas", help="a grid of configurations × seeds: where Looped beats Single")
    _add_config_options(grid, skip=("model",))
    grid.add_argument("--grid", nargs="*", metavar="NAME=V1,V2", help="config fields to sweep, e.g. d=4,8 lr=1e-3,3e-3")
    grid.add_argument("--seeds", default="10", help="seeds per configuration (data_seed = seed = s)")
    grid.add_argument("--first-seed", default="0")
    grid.add_argument("--spectra", action="store_true",
                      help="also the final epoch's exact Hessian: λ_max and Assumption 1's low-curvature counts")
    grid.add_argument("--out", required=True, help="CSV file (rows appended as points finish; a rerun resumes)")
    _add_where_options(grid)
    grid.set_defaults(handler=_one_line_errors(command_atlas))



def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m loopviz", description=__doc__.splitlines()[0],
                    epilog="Each command has its own --help. Exit codes: 0 done, 1 failed, 2 bad input, "
                           "3 diverged, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train models and write their run directories",
                         description="Train each model of --model and write OUT/<model>/ (config, records, "
                                     "spectra, weights, task). Prints the final accuracies by IC bucket beside "
                                     "the Bayes ceiling.")
    run.add_argument("--model", default="single,looped",
                     help="comma-separated models to train, in order (choices: single, looped, shift; "
                          "default: %(default)s)")
    run.add_argument("--out", required=True, help="output directory; each model writes OUT/<model>/ (required)")
    run.add_argument("--force", action="store_true", help="overwrite existing OUT/<model>/ (default: refuse)")
    run.add_argument("--workers", type=int, default=default_workers(),
                     help="spectrum worker processes beside training; 0 = compute spectra in the training "
                          f"thread (default: one per CPU core, {default_workers()} here)")
    _add_config_options(run, skip=("model",))
    run.set_defaults(handler=command_run)

    add_sweep_commands(sub)

    d = LENGTHGEN_DEFAULTS
    lg = sub.add_parser("length-gen", help="accuracy of trained runs on longer sequences (Table 1)",
                        description="Evaluates DIR/<model>/ runs' final weights on longer sequences of the same "
                                    "chain; writes the table (CSV) and prints Table 1 beside the paper's.")
    lg.add_argument("--runs", default="assets/default", metavar="DIR",
                    help="directory holding <model>/ run directories (default: %(default)s, the bundled runs)")
    lg.add_argument("--lengths", default=d["lengths"],
                    help=f"comma-separated sequence lengths, each 2 to {d['max_length']} (default: the paper's "
                         "%(default)s)")
    lg.add_argument("--n", default=d["n"], help=f"test sequences per length, 1 to {d['max_n']} "
                                                "(default: %(default)s, the paper's N_test)")
    lg.add_argument("--seed", default="0", help="test-set seed; the draw also depends on data_seed and length "
                                                "(default: %(default)s)")
    lg.add_argument("--last-step", default="T3", metavar="{T3,cyclic}",
                    help="T3: phase the cycle so the last transition is T3, as in every training target (like with "
                         "like); cyclic: T1, T2, T3, ... from x0, the paper's literal words (default: %(default)s)")
    lg.add_argument("--out", default=None, help="CSV file to write (default: the CSV goes to stdout)")
    lg.add_argument("--force", action="store_true", help="overwrite --out (default: refuse)")
    lg.set_defaults(handler=command_length_gen)

    from .export import add_export_command  # light: its heavy imports wait for the command
    add_export_command(sub)
    from .algo.cli import add_algo_command  # App. E.2's tasks; no torch at parse time
    add_algo_command(sub)
    from .app_server import add_app_command  # the app server, warmed; Streamlit loads when it starts
    add_app_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # before the run's own handler is in place (e.g. while torch loads)
        print("interrupted before any work started; nothing written", file=sys.stderr)
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())
