"""Benchmark: one cpu-preset training step and one evaluation per model on Parity (App. E.2).

    python bench/bench_algo.py [--repeat 3] [--steps 12]

CPU time of this thread, one torch thread, min of repeats, each as a ratio to a floor
measured in this process: one forward + backward of the same model at batch size 1, one
pass (T = 1), on an input of the longest training length. A training "step" is the mean
over `--steps` consecutive steps (each draws its own length n, so Looped runs n loops).
Then the time to reach >= 95 % training accuracy on Parity, read off the bundled runs
(assets/algo/parity: training CPU seconds at the first evaluation at or above 95 %) plus
the evaluations up to it at the measured cost (the issue's goal: <= 5 min on 2 cores).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from loopviz.algo import rundir, training  # noqa: E402
from loopviz.algo.config import preset  # noqa: E402
from timing import best_cpu  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "algo" / "parity"
GOAL = 0.95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = preset("cpu", task="parity")
    problem = training.prepare(config)
    eval_cost = {}
    for model in ("single", "looped"):
        trainer = training.Trainer(config.replace(model=model), model == "looped", problem)
        batch = training.make_batch(problem.task, training.tasks.batch_rng(0, 99, 0), config.train_max_len, 1,
                                    problem.device)

        def floor():
            trainer.model.zero_grad(set_to_none=True)
            training.batch_loss(trainer.model, batch, 1).backward()

        def steps():
            trainer.step = 0          # the same lengths every repeat
            for _ in range(args.steps):
                trainer.train_step()

        floor()                       # warm-up: first-call allocations are not the floor
        t_floor = best_cpu(floor, args.repeat * 10)
        t_step = best_cpu(steps, args.repeat) / args.steps
        t_eval = best_cpu(trainer.evaluate, args.repeat)
        eval_cost[model] = t_eval
        print(f"{model:6s}: floor (fwd+bwd, batch 1, T = 1, n = {config.train_max_len}) {t_floor * 1e3:.2f} ms | "
              f"training step {t_step * 1e3:.1f} ms = ×{t_step / t_floor:.0f} floor | "
              f"evaluation {t_eval:.2f} s = ×{t_eval / t_floor:.0f} floor")
    for model in ("single", "looped", "shift"):
        try:
            run = rundir.read_run(ASSETS / model)
        except rundir.RunFormatError as exc:
            print(f"{model}: no bundled run ({exc})")
            continue
        rec = run.records
        hit = rec[rec["train_acc"] >= GOAL]
        if hit.empty:
            print(f"{model:6s}: never reaches {GOAL:.0%} training accuracy on Parity in {config.steps} steps "
                  f"(final {rec['train_acc'].iloc[-1]:.1%}); training CPU {rec['seconds'].iloc[-1]:.0f} s")
            continue
        first = hit.iloc[0]
        evals = int(hit.index[0]) + 1
        cost = eval_cost["single" if first["phase"] == "single" else "looped"]
        total = first["seconds"] + evals * cost
        print(f"{model:6s}: {GOAL:.0%} training accuracy at step {int(first['step'])}: training CPU "
              f"{first['seconds']:.0f} s + {evals} evaluations ≈ {evals * cost:.0f} s → ≈ {total / 60:.1f} min "
              f"on one core (goal ≤ 5 min on 2 cores)")


if __name__ == "__main__":
    main()
