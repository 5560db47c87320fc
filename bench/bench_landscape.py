"""Times the Landscape page's computations on the bundled default run (d = 4, P = 60).

Run: python bench/bench_landscape.py. Prints, all measured in this process:
- the 41×41 loss grid of both models, batched (torch.vmap) against 1681 separate calls;
- the first view's work (both grids, Adam states and Hessians every 20 epochs for Single,
  Looped and SHIFT, block spectra at the cursor) and an epoch-cursor move (3 Hessians);
- 31 Hessians with one torch thread against two (why the page pins one thread).
Asserts nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loopviz import landscape as L  # noqa: E402
from loopviz.runs.format import read_run  # noqa: E402
from loopviz.toy.training import prepare  # noqa: E402

from timing import best_of  # noqa: E402  (bench/ is on sys.path when run as a script)


def main() -> None:
    torch.set_num_threads(1)
    runs = {label: read_run(ROOT / "assets" / "default" / m)
            for label, m in (("Single-Attn", "single"), ("Looped-Attn", "looped"), ("SHIFT", "shift"))}
    config = runs["Looped-Attn"].config
    problem = prepare(config)
    trajectories = {label: r.thetas for label, r in runs.items()}
    L.surface_view(problem, trajectories, "endpoints", 5, (1, 3), ("Single-Attn", "Looped-Attn"))  # warm torch.func

    view = L.surface_view(problem, trajectories, "endpoints", 41, (1, 3), ("Single-Attn", "Looped-Attn"))
    points = view.plane.points(view.alpha, view.beta).reshape(-1, 60)
    batched = best_of(lambda: L.surface_view(problem, trajectories, "endpoints", 41, (1, 3),
                                             ("Single-Attn", "Looped-Attn")), 3)

    def one_by_one() -> None:
        with torch.no_grad():
            for loops in (1, 3):
                for theta in points:
                    problem.loss(torch.as_tensor(theta), loops)
    naive = best_of(one_by_one, 1)
    print(f"41x41 grid, both models: batched {batched:.3f} s, one call per point {naive:.2f} s "
          f"(x{naive / batched:.0f})")

    def first_view() -> None:
        L.surface_view(problem, trajectories, "endpoints", 41, (1, 3), ("Single-Attn", "Looped-Attn"))
        for run in runs.values():
            L.run_curvature_series(prepare(run.config), run.config, run.thetas, run.weight_epochs, 20)
        cursor_move()

    def cursor_move() -> None:
        for run in runs.values():
            H = L.run_hessians(problem, run.config, run.thetas[[300]], np.array([300]))[0]
            L.block_spectra(H, run.config.d)
    first = best_of(first_view, 1)
    move = best_of(cursor_move, 3)
    print(f"first view (compute only) {first:.2f} s; cursor move {move:.3f} s ({first / move:.0f}x less)")

    epochs = np.arange(0, 601, 20)
    looped = runs["Looped-Attn"]
    timings = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        timings[threads] = best_of(lambda: L.run_hessians(problem, config, looped.thetas[epochs], epochs), 1)
    print(f"31 Hessians: 1 thread {timings[1]:.2f} s, 2 threads {timings[2]:.2f} s "
          f"(x{timings[2] / timings[1]:.1f})")


if __name__ == "__main__":
    main()
