"""`python -m loopviz algo run`: Single / Looped / SHIFT on an algorithmic task (App. E.2).

Bad input: one `error:` line, exit 2, nothing written. Ctrl-C: what was computed is
written with status cancelled, exit 130. A non-finite loss: status diverged, records
kept, exit 3. torch is imported by the command, never at parse time.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

from ..config import overwrite_refused
from .config import MODELS, PRESETS, AlgoConfig, ConfigError, preset

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_CANCELLED = 1, 2, 3, 130
SKIP = ("model", "task")


def add_commands(subparsers) -> None:
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
    run.set_defaults(handler=command_run)


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


def command_run(args: argparse.Namespace) -> int:
    try:
        configs = configs_from_args(args)
        out = Path(args.out)
        targets = {c.model: out / c.model for c in configs}
        if refusal := overwrite_refused(targets.values(), args.force):
            raise ConfigError(refusal)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    import torch

    from . import rundir, training

    if any(c.device == "cuda" for c in configs) and not torch.cuda.is_available():  # one error, before any work
        print("error: --device cuda was asked for but CUDA is not available here; use --device cpu or auto",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    torch.set_num_threads(1)
    worst = 0
    single = None   # (records, handoff) of this invocation's Single run, for SHIFT's Stage I
    for config in configs:
        records: list = []
        info: dict = {}
        status, message = "complete", ""
        started = time.time()
        try:
            problem = training.prepare(config)
            if config.model == "shift":
                stream = training.train_shift(config, *(single or (None, None)), problem=problem, info=info)
            else:
                trainer = training.Trainer(config, config.model == "looped", problem)
                stream = trainer.run()
            for record in stream:
                records.append(record)
                _progress(config, record)
                if record.diverged:
                    status, message = "diverged", f"diverged at step {record.step}: the loss is not finite"
            if config.model == "single":
                single = (records, trainer.handoff or trainer.fallback)
        except KeyboardInterrupt:
            status = "cancelled"
            message = f"cancelled after step {records[-1].step if records else 0}; {len(records)} records kept"
        except Exception as exc:  # a failed run still reports and keeps what it computed
            status, message = "failed", f"{type(exc).__name__}: {exc}"
        if records:
            from .models import build, param_count
            from .tasks import VOCAB

            meta = {"status": status, "message": message, "key": config.key(), "started": started,
                    "finished": time.time(), "train_seconds": records[-1].seconds,
                    "diverged_step": records[-1].step if status == "diverged" else None,
                    "params": param_count(build(config, VOCAB, problem.max_len)), "device": str(problem.device),
                    **info}
            rundir.write_run(rundir.run_from_records(config, records, meta), targets[config.model], overwrite=True)
            print(f"{config.model}: {status}; {len(records)} records → {targets[config.model]}", file=sys.stderr)
        if status == "cancelled":
            print(f"{config.model}: {message}", file=sys.stderr)
            return EXIT_CANCELLED
        if status == "diverged":
            print(f"error: {config.model} {message}; records up to it are kept", file=sys.stderr)
            worst = max(worst, EXIT_DIVERGED)
        elif status == "failed":
            print(f"error: {config.model} failed: {message}", file=sys.stderr)
            worst = max(worst, EXIT_FAILED)
    return worst


def _progress(config: AlgoConfig, record) -> None:
    m = record.metrics
    longest = max(config.test_lengths)
    print(f"[{config.model}] step {record.step}/{config.steps} ({record.phase}) loss {m['loss']:.4f} "
          f"train {m['train_acc']:.3f} val {m['val_acc']:.3f} "
          f"acc@{longest} {record.acc_by_len.get(longest, float('nan')):.3f} "
          f"{record.seconds:.1f}s", file=sys.stderr, flush=True)
