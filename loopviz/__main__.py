"""The command line: `python -m loopviz run|sweep-seeds ...` (headless runs and sweeps).

Every RunConfig field is an option (`--data-seed`, `--keep-all-sequences false`, ...);
`--config FILE` starts from a JSON config. Bad input: one line on stderr, exit 2,
nothing written. A diverged run keeps its records and exits 3.
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
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable

import pandas as pd

from .config import MODELS, ConfigError, RunConfig
from .toy.lengthgen import add_command as add_length_gen
from .runs.execute import RunLog, execute
from .runs.format import RunData, RunFormatError, read_run, run_data_from_log, write_run
from .sweeps import (_seed_point, _shift_point, default_workers, run_parallel, seed_configs, shift_configs,
                     summarise_seed_sweep, summarise_shift_sweep, summary_line)

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_FAILED, EXIT_CANCELLED = 2, 3, 1, 130


class UsageError(Exception):
    pass


def _add_config_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    parser.add_argument("--config", type=Path, help="start from this JSON config file")
    for f in fields(RunConfig):
        if f.name in skip:
            continue
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar=f.type.upper(),
                            help=f"default {f.default!r}")


def _config_from_args(args: argparse.Namespace, **overrides) -> RunConfig:
    base = {}
    if args.config is not None:
        try:
            base = RunConfig.from_json(args.config.read_text()).to_dict()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {args.config}: {exc.strerror}") from None
    for f in fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            base[f.name] = value
    base.update(overrides)
    return RunConfig.from_dict(base)


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
        self.last = now
        frac = min(1.0, max(0.0, done / max(self.total, 1)))
        elapsed = now - self.start
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(30 * frac)
        line = f"[{self.label}] [{bar:<30}] {frac:4.0%} {detail} {elapsed:5.1f}s eta {eta:5.1f}s"
        sys.stderr.write(("\r" + line + " ") if interactive else line + "\n")
        if final and interactive:
            sys.stderr.write("\n")
        sys.stderr.flush()


def command_run(args: argparse.Namespace) -> int:
    import torch
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and all work stays in the timed thread
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if not models or unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    configs = [_config_from_args(args, model=m) for m in models]
    out = Path(args.out)
    targets = [out / c.model for c in configs]
    if not args.force:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise UsageError(f"{', '.join(existing)} already exists; use another --out or --force to overwrite")
    worst = 0
    finished: dict[str, RunData] = {}
    for config, target in zip(configs, targets):
        log = RunLog(config)
        bar = Progress(config.model, log.work()[1])
        prior = _single_prior(config, finished, out) if config.model == "shift" else None
        cancel, done = threading.Event(), threading.Event()

        def work() -> None:
            try:
                execute(config, log, cancel, workers=args.workers, prior=prior)
            finally:
                done.set()

        threading.Thread(target=work, daemon=True).start()
        # Wait on an Event, not Thread.join: a join interrupted by Ctrl-C can return early
        # afterwards (CPython < 3.13), and the run would be written half-way.
        try:
            while not done.wait(0.1):
                epoch = log.records[-1].epoch if log.records else 0
                bar.show(log.work()[0], f"epoch {epoch}/{config.epochs} spectra {len(log.spectra)}")
        except KeyboardInterrupt:  # Ctrl-C: stop at the next epoch and keep what was computed
            cancel.set()
            done.wait()
        bar.show(bar.total, f"{log.status}", final=True)
        if log.records:
            finished[config.model] = run_data_from_log(log)
            write_run(finished[config.model], target, overwrite=args.force)
            print(f"{config.model}: {log.status}; {len(log.records)} records, {len(log.spectra)} spectra "
                  f"→ {target}", file=sys.stderr)
        if log.status == "diverged":
            print(f"error: {config.model} {log.message}; records up to it are kept in {target}", file=sys.stderr)
            worst = max(worst, EXIT_DIVERGED)
        elif log.status == "failed":
            print(f"error: {config.model} failed: {log.message}", file=sys.stderr)
            worst = max(worst, EXIT_FAILED)
        elif log.status == "cancelled":
            print(f"{config.model}: {log.message} in {target}", file=sys.stderr)
            return EXIT_CANCELLED
    return worst


def _single_prior(config: RunConfig, finished: dict[str, RunData], out: Path) -> RunData | None:
    """The Single run a SHIFT run can reuse: from this invocation, else from OUT/single/."""
    if "single" in finished:
        return finished["single"]
    try:
        return read_run(out / "single")
    except (RunFormatError, OSError):
        return None


def _collect(label: str, function: Callable[[str], dict], configs: list[RunConfig], workers: int,
             on_row: Callable[[list[dict]], None] | None = None) -> tuple[list[dict], bool]:
    """Run a sweep's points in worker processes with a progress bar; Ctrl-C keeps the
    finished ones. Returns (rows, interrupted)."""
    rows: list[dict] = []
    interrupted = False
    bar = Progress(label, len(configs))
    try:
        for row in run_parallel(function, configs, workers):
            rows.append(row)
            if on_row is not None:
                on_row(rows)
            bar.show(len(rows), f"{len(rows)}/{len(configs)} runs")
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: keeping the {len(rows)} runs finished", file=sys.stderr)
    bar.show(len(rows), "done", final=True)
    return rows, interrupted


def command_sweep_seeds(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    base = _config_from_args(args)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} already exists; use another --out or --force to overwrite")
    configs = seed_configs(base, args.seeds, args.vary, args.first_seed)
    rows, interrupted = _collect("sweep-seeds", _seed_point, configs, args.workers)
    if not rows:
        return EXIT_FAILED
    table = pd.DataFrame(rows).sort_values("seed").reset_index(drop=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    line = summary_line(summarise_seed_sweep(table))
    Path(str(out) + ".summary.txt").write_text(line + "\n" + base.to_json() + "\n")
    print(line)
    return EXIT_CANCELLED if interrupted else 0


def command_sweep_shift(args: argparse.Namespace) -> int:
    try:
        shift_epochs = [int(x) for x in args.shift_epochs.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--shift-epochs must be comma-separated integers, got {args.shift_epochs!r}") from None
    base = _config_from_args(args)
    bad = [s for s in shift_epochs if not 0 <= s <= base.epochs]
    if not shift_epochs or bad:
        raise UsageError(f"shift epochs must lie in [0, epochs = {base.epochs}]; bad: {bad or 'none given'}")
    if args.repeats < 1:
        raise UsageError("--repeats must be >= 1")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} already exists; use another --out or --force to overwrite")
    configs = shift_configs(base, shift_epochs, args.repeats)
    raw_path = Path(str(out) + ".raw.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    def keep(rows: list[dict]) -> None:
        # Every finished point survives a cancel: written aside, then renamed into place.
        pd.DataFrame(rows).to_csv(raw_path.with_suffix(".tmp"), index=False)
        os.replace(raw_path.with_suffix(".tmp"), raw_path)

    rows, interrupted = _collect("sweep-shift", _shift_point, configs, args.workers, keep)
    table = pd.DataFrame(rows)
    if table.empty or not (table["model"] == "looped").any() or not (table["model"] == "shift").any():
        print("error: too few runs finished to compare SHIFT with pure Looped-Attn", file=sys.stderr)
        return EXIT_FAILED
    summary = summarise_shift_sweep(table)
    summary.to_csv(out, index=False)
    best = summary.loc[summary["speedup"].idxmax()]
    print(f"{len(summary)} shift epochs; pure Looped {summary['looped_seconds'].iloc[0]:.2f} s; best speed-up "
          f"×{best['speedup']:.2f} at epoch {int(best['shift_epoch'])} (final accuracy gap "
          f"{best['gap_acc_all']:+.3f})")
    return EXIT_CANCELLED if interrupted else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loopviz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train models and write their run directories")
    _add_config_options(run, skip=("model",))
    run.add_argument("--model", default="single,looped", help="comma-separated: single, looped, shift")
    run.add_argument("--out", required=True, help="output directory; each model writes OUT/<model>/")
    run.add_argument("--force", action="store_true", help="overwrite existing model directories")
    run.add_argument("--workers", type=int, default=default_workers(), help="spectrum worker processes")
    run.set_defaults(handler=command_run)

    sweep = sub.add_parser("sweep-seeds", help="both models over many seeds, no spectra: the effect's distribution")
    _add_config_options(sweep, skip=("model",))
    sweep.add_argument("--seeds", type=int, default=20, help="number of seeds")
    sweep.add_argument("--first-seed", type=int, default=0)
    sweep.add_argument("--vary", choices=("both", "data_seed", "seed"), default="both",
                       help="which seed each point changes (both: data_seed = seed = s)")
    sweep.add_argument("--out", required=True, help="CSV file to write (a .summary.txt is written beside it)")
    sweep.add_argument("--force", action="store_true")
    sweep.add_argument("--workers", type=int, default=default_workers())
    sweep.set_defaults(handler=command_sweep_seeds)

    shift = sub.add_parser("sweep-shift", help="SHIFT at many shift epochs against pure Looped-Attn: speed-up")
    _add_config_options(shift, skip=("model", "shift_epoch"))
    shift.add_argument("--shift-epochs", default=",".join(str(s) for s in range(0, 600, 50)),
                       help="comma-separated shift epochs (default 0,50,...,550)")
    shift.add_argument("--repeats", type=int, default=3, help="timed runs per point (the median is kept)")
    shift.add_argument("--out", required=True, help="CSV to write (raw runs go to OUT.raw.csv as they finish)")
    shift.add_argument("--force", action="store_true")
    shift.add_argument("--workers", type=int, default=default_workers())
    shift.set_defaults(handler=command_sweep_shift)

    add_length_gen(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
