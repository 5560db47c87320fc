"""`python -m loopviz algo run`: Single / Looped / SHIFT on an algorithmic task (App. E.2).

Bad input: one `error:` line, exit 2, nothing written. Ctrl-C (or SIGTERM) stops within one
training step: what was computed is written with status cancelled, exit 130 (143). A
non-finite loss: status diverged, records kept, exit 3. Each model runs through the one
runner (runs/runner.py) as `python -m loopviz run` does. torch is imported by the command,
never at parse time.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from ..config import overwrite_refused
from ..foreground import EXIT_BAD_INPUT, EXIT_FAILED, Interrupts, report_end, run_attached
from .config import MODELS, PRESETS, AlgoConfig, ConfigError, preset

SKIP = ("model", "task")


def add_algo_command(subparsers) -> None:
    """Register `algo run` on the main parser's subparsers."""
    algo = subparsers.add_parser("algo", help="App. E.2: GPT-2 blocks, Single vs Looped vs SHIFT on algorithmic tasks")
    sub = algo.add_subparsers(dest="algo_command", required=True)
    run = sub.add_parser("run", help="train the models on one task and write OUT/<model>/ run directories")
    run.add_argument("--task", default="parity", help="parity, addition, copy, binary_sum or unique_set")
    run.add_argument("--model", default="single,looped,shift", help="comma-separated: single, looped, shift")
    run.add_argument("--preset", default="cpu", help=f"one of {', '.join(PRESETS)} (other options override it)")
    run.add_argument("--config", type=Path, help="start from this JSON config instead of a preset")
    run.add_argument("--out", required=True, help="output directory; each model writes OUT/<model>/")
    run.add_argument("--force", action="store_true", help="overwrite existing model directories")
    for f in fields(AlgoConfig):
        if f.name not in SKIP:
            run.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                             metavar=f.type.split("[")[0].upper(), help="default: the preset's")
    run.set_defaults(handler=command_algo_run)


def configs_from_args(args: argparse.Namespace) -> list[AlgoConfig]:
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if not models or unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    if args.config is not None:
        try:
            base = AlgoConfig.from_json(args.config.read_text()).to_dict()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {args.config}: {exc.strerror}") from None
    else:
        base = preset(args.preset).to_dict()
    base["task"] = args.task
    for f in fields(AlgoConfig):
        value = getattr(args, f.name, None)
        if value is not None and f.name not in SKIP:
            base[f.name] = value
    # Single first: SHIFT reuses its steps as Stage I.
    return [AlgoConfig.from_dict({**base, "model": m}) for m in sorted(set(models), key=MODELS.index)]


def command_algo_run(args: argparse.Namespace) -> int:
    try:
        configs = configs_from_args(args)
        out = Path(args.out)
        targets = {c.model: out / c.model for c in configs}
        if refusal := overwrite_refused(targets.values(), args.force):
            raise ConfigError(refusal)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from .job import AlgoLog

    if any(c.device == "cuda" for c in configs):  # one error, before any work
        import torch
        if not torch.cuda.is_available():
            print("error: --device cuda was asked for but CUDA is not available here; use --device cpu or auto",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
    worst = 0
    # SHIFT's Stage I is this invocation's Single run (its handoff), else OUT/single's handoff.npz.
    finished: dict[str, AlgoLog] = {}
    with Interrupts() as interrupts:
        for config in configs:
            if interrupts.signum is not None:
                break
            log, shown = AlgoLog(config), [0]

            def show(log=log, shown=shown) -> None:
                for record in log.records[shown[0]:]:
                    _progress(log.config, record)
                shown[0] = len(log.records)

            outcome = run_attached(config, log, interrupts, show, target=targets[config.model],
                                   prior=lambda: finished.get("single"))
            if note := log.info.get("stage_one_note"):   # a stored Single run that could not be read
                print(f"{config.model}: {note}", file=sys.stderr)
            elif str(log.info.get("stage_one", "")).endswith("handoff.npz"):
                print(f"{config.model}: Stage I read from {log.info['stage_one']}, not trained again", file=sys.stderr)
            finished[config.model] = log
            if outcome.error:
                print(f"error: {config.model}: could not write {targets[config.model]}: {outcome.error}",
                      file=sys.stderr)
                return EXIT_FAILED
            if outcome.path is not None:
                print(f"{config.model}: {log.status}; {len(log.records)} records → {outcome.path}", file=sys.stderr)
            worst = max(worst, report_end(config.model, log))
    if interrupts.signum is not None:
        return interrupts.exit_code
    return worst


def _progress(config: AlgoConfig, record) -> None:
    m = record.metrics
    longest = max(config.test_lengths)
    print(f"[{config.model}] step {record.step}/{config.steps} ({record.phase}) loss {m['loss']:.4f} "
          f"train {m['train_acc']:.3f} val {m['val_acc']:.3f} "
          f"acc@{longest} {record.acc_by_len.get(longest, float('nan')):.3f} "
          f"{record.seconds:.1f}s", file=sys.stderr, flush=True)
