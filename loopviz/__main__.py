"""The command line: `python -m loopviz run|sweep-seeds ...` (headless runs and sweeps).

Every RunConfig field is an option (`--data-seed`, `--keep-all-sequences false`, ...);
`--config FILE` starts from a JSON config. Bad input: one line on stderr, exit 2,
nothing written. A diverged run keeps its records and exits 3.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

from .config import MODELS, ConfigError, RunConfig
from .toy.lengthgen import add_command as add_length_gen
from .runs.execute import RunLog, execute
from .runs.format import RunData, RunFormatError, read_run, run_data_from_log, write_run
from .sweeps import add_commands as add_sweeps, default_workers

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

    add_sweeps(sub)
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
