"""Benchmark: atlas points on dask.distributed, 1 worker against 2 (and in-process).

    python bench/bench_atlas.py [points] [epochs]

The same plan (d = 4, lr 1e-3 / 3e-3, seeds 0..) runs in this process, then on a
LocalCluster of 1 and of 2 single-threaded workers (cluster start-up included, as a
user pays it). Prints wall times and the ratios; rows are checked equal across all three.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from loopviz.config import RunConfig  # noqa: E402
from loopviz.sweeps import atlas_configs, plan, rows_equal, run_points  # noqa: E402


def main() -> None:
    points_wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    points = plan("atlas", atlas_configs(RunConfig(d=4, epochs=epochs), {"lr": [1e-3, 3e-3]}, points_wanted // 2))
    order = {p.key: i for i, p in enumerate(points)}
    walls, tables = {}, {}
    for workers in (0, 1, 2):
        start = time.perf_counter()
        rows = sorted(run_points(points, workers), key=lambda r: order[r["key"]])
        walls[workers] = time.perf_counter() - start
        tables[workers] = pd.DataFrame(rows)
        where = "in-process" if workers == 0 else f"LocalCluster of {workers}"
        print(f"{len(points)} atlas points × {epochs} epochs, {where}: {walls[workers]:.1f} s wall; training "
              f"{tables[workers][['single_seconds', 'looped_seconds']].to_numpy().sum():.1f} s CPU")
    print(f"2 workers against 1: ×{walls[1] / walls[2]:.2f}; 1 worker against in-process: ×{walls[0] / walls[1]:.2f}")
    print("rows equal across the three:", rows_equal(tables[0], tables[1]) and rows_equal(tables[0], tables[2]))


if __name__ == "__main__":
    main()
