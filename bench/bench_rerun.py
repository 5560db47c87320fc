"""Benchmark: the server's CPU per rerun of each page with charts (what every slider move,
click and live tick pays before the browser draws), and a live run's tables rebuilt.

    python bench/bench_rerun.py [--repeat 5] [--pages shift,spectrum,landscape,home]

Pages: Streamlit's AppTest runs the page script in this process at the defaults (the bundled
runs, nothing training); after two warm-up runs, the process CPU time per run, min of
`--repeat` batches of 3 runs, and the share of it spent in Plotly's figure building
(add_scatter/add_trace, update_layout, add_vline/add_hline/add_vrect: what style.vline & co.
replace). Live tables: runs/format.run_data_from_log on a finished 1501-epoch SHIFT log (Stage
II from the bundled Single run, a spectrum every epoch): what a live fragment recomputes at
each tick; CPU time, min of repeats, and its spectra summaries alone (curvature.summarise_spectra).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from timing import load_note  # noqa: E402

PLOTLY_CALLS = ("add_scatter", "add_trace", "update_layout", "add_vline", "add_hline", "add_vrect")


def page_figures(pages: list[str], repeat: int) -> None:
    from tests.apptest_helpers import app_test

    spent = {name: 0.0 for name in PLOTLY_CALLS}
    for name in PLOTLY_CALLS:   # time Plotly's calls (the outermost only: add_vline calls others)
        original = getattr(go.Figure, name)

        def timed(self, *args, _original=original, _name=name, **kwargs):
            if getattr(go.Figure, "_inside", False):
                return _original(self, *args, **kwargs)
            go.Figure._inside = True
            start = time.process_time()
            try:
                return _original(self, *args, **kwargs)
            finally:
                spent[_name] += time.process_time() - start
                go.Figure._inside = False
        setattr(go.Figure, name, timed)
    for page in pages:
        at = app_test(f"app_pages/{page}.py")
        at.run()
        at.run()
        assert not at.exception, at.exception
        best, plotly = float("inf"), 0.0
        for _ in range(repeat):
            for name in spent:
                spent[name] = 0.0
            start = time.process_time()
            for _ in range(3):
                at.run()
            cpu = (time.process_time() - start) / 3
            if cpu < best:
                best, plotly = cpu, sum(spent.values()) / 3
        print(f"{page}: {best * 1e3:.0f} ms CPU per rerun, {plotly * 1e3:.0f} ms of it Plotly's figure calls "
              f"({plotly / best:.0%}); {load_note()}")


def live_tables(repeat: int) -> None:
    from loopviz.config import RunConfig
    from loopviz.curvature import log_bin_edges, summarise_spectra
    from loopviz.runs.execute import execute
    from loopviz.runs.format import read_run, run_data_from_log, task_arrays

    config = RunConfig(model="shift", shift_epoch=233)
    log = execute(config, workers=0, prior=read_run(REPO / "assets" / "default" / "single"))
    task = task_arrays(config)
    eigenvalues = np.stack([log.spectra[e] for e in sorted(log.spectra)])
    edges = log_bin_edges(config.entropy_bins, config.entropy_min, config.entropy_max)

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        return min(times)

    whole = best(lambda: run_data_from_log(log, task))
    summaries = best(lambda: summarise_spectra(eigenvalues, config.river_eps, config.valley_delta,
                                               config.low_curvature_tau, edges, config.entropy_definition))
    print(f"run_data_from_log, {len(log.records)} records and {len(log.spectra)} spectra: {whole * 1e3:.0f} ms CPU, "
          f"of it summarise_spectra {summaries * 1e3:.0f} ms; {load_note()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pages", default="shift,spectrum,landscape,home")
    args = parser.parse_args()
    live_tables(args.repeat)
    page_figures(args.pages.split(","), args.repeat)


if __name__ == "__main__":
    main()
