"""Where a sweep runs (issue #12): given no --workers, --serial or --scheduler, a sweep runs
on a LocalCluster (one worker per core, at most one per task) only when spreading its
estimated training time over those workers saves more than sweeps.CLUSTER_START_SECONDS,
and in this process otherwise; an explicit choice is always obeyed. One stderr line says
where and why; a sweep run in this process never loads dask; rows are the same bit for bit
either way."""
import os
import subprocess
import sys

import pytest

from loopviz import sweeps
from loopviz.__main__ import main
from loopviz.config import RunConfig
from loopviz.sweeps import (CLUSTER_START_SECONDS, atlas_configs, estimated_seconds, placement, plan, read_rows,
                            rows_equal, seed_configs, shift_configs)
from tests.apptest_helpers import REPO

DEFAULT_20 = plan("seed", seed_configs(RunConfig(), 20, "both"))          # issue #12's command
BIG = plan("seed", seed_configs(RunConfig(), 400, "both"))


def test_the_issue_sweep_runs_here_and_a_big_one_on_a_cluster_of_one_worker_per_core():
    workers, line = placement(DEFAULT_20, None, None, cores=2)
    assert workers == 0 and line.startswith("in this process: ~") and "2 workers would save" in line
    workers, line = placement(BIG, None, None, cores=2)
    assert workers == 2 and line.startswith("on a LocalCluster of 2 workers: ~")
    assert placement(BIG, None, None, cores=8)[0] == 8


def test_the_rule_is_the_saving_against_the_start_up_cost(monkeypatch):
    """Cluster iff estimate × (1 − 1/workers) > CLUSTER_START_SECONDS, on both sides of the line."""
    saved = estimated_seconds(DEFAULT_20) * (1 - 1 / 2)
    monkeypatch.setattr(sweeps, "CLUSTER_START_SECONDS", saved * 0.99)
    assert placement(DEFAULT_20, None, None, cores=2)[0] == 2
    monkeypatch.setattr(sweeps, "CLUSTER_START_SECONDS", saved * 1.01)
    assert placement(DEFAULT_20, None, None, cores=2)[0] == 0
    three = estimated_seconds(DEFAULT_20) * (1 - 1 / 3)              # more cores save more
    monkeypatch.setattr(sweeps, "CLUSTER_START_SECONDS", (saved + three) / 2)
    assert placement(DEFAULT_20, None, None, cores=3)[0] == 3


def test_one_core_or_one_task_never_starts_a_cluster():
    workers, line = placement(BIG, None, None, cores=1)
    assert workers == 0 and "one core: more workers would save nothing" in line
    one_long_point = plan("atlas", atlas_configs(RunConfig(epochs=100_000), {}, 1))
    assert estimated_seconds(one_long_point) > 10 * CLUSTER_START_SECONDS
    workers, line = placement(one_long_point, None, None, cores=4)
    assert workers == 0 and "one task" in line
    two_long_points = plan("atlas", atlas_configs(RunConfig(epochs=100_000), {}, 2))
    assert placement(two_long_points, None, None, cores=4)[0] == 2   # a worker per task, not per core


def test_an_explicit_choice_is_always_obeyed():
    assert placement(BIG, 0, None, cores=2) == (0, "in this process (--serial / --workers 0)")
    assert placement(DEFAULT_20, 3, None, cores=2) == (3, "on a LocalCluster of 3 workers (--workers 3)")
    assert placement(DEFAULT_20, 1, None, cores=2)[1] == "on a LocalCluster of 1 worker (--workers 1)"
    workers, line = placement(DEFAULT_20, None, "tcp://127.0.0.1:8620", cores=2)
    assert line.startswith("on the dask scheduler at tcp://127.0.0.1:8620")


def test_the_estimate_follows_what_runs():
    """Affine in epochs; batched seeds cost less than seeds alone; Looped more than Single's
    share (SHIFT between); a minibatch epoch has many steps; spectra add their cost."""
    def seeds(n, **kw):
        return estimated_seconds(plan("seed", seed_configs(RunConfig(**kw), n, "both")))

    per_epochs = seeds(20, epochs=3000) - seeds(20, epochs=1500)         # affine in epochs, the epochs' part
    assert seeds(20, epochs=4500) - seeds(20, epochs=3000) == pytest.approx(per_epochs)      # dominating
    assert per_epochs > 0.9 * seeds(20, epochs=1500)
    assert seeds(20) < 20 * seeds(1) / 3                                 # one batch, not 20 runs
    assert seeds(20, batch_size=50) > 5 * seeds(20)                      # 10 steps an epoch
    assert seeds(20, d=16) > seeds(20)
    looped, *shifts = plan("shift", shift_configs(RunConfig(), [0, 750, 1500], 1))
    costs = [estimated_seconds([p]) for p in (looped, *shifts)]
    assert costs[0] == pytest.approx(costs[1]) and costs[0] > costs[2] > costs[3]
    atlas = plan("atlas", atlas_configs(RunConfig(d=16), {}, 2))
    spectra = plan("atlas", atlas_configs(RunConfig(d=16), {}, 2), spectra=True)
    assert estimated_seconds(spectra) > estimated_seconds(atlas)


def test_a_small_default_sweep_says_so_in_one_line_and_never_loads_dask(tmp_path):
    out = tmp_path / "s.csv"
    code = ("import sys\nfrom loopviz.__main__ import main\n"
            f"code = main(['sweep-seeds', '--seeds', '3', '--d', '3', '--epochs', '20', '--out', {str(out)!r}])\n"
            "print(code, 'distributed' in sys.modules, 'dask' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.splitlines()[-1] == "0 False False", proc.stderr
    said = [line for line in proc.stderr.splitlines() if not line.startswith("[sweep-seeds]")]  # no progress bar
    assert len(said) == 1 and said[0].startswith("3 points in this process: ~"), proc.stderr
    assert len(read_rows(out)) == 3


def test_a_big_default_sweep_goes_to_the_cluster(tmp_path, monkeypatch, capsys):
    """The CLI passes the rule's choice to run_tasks (recorded here instead of running 400 seeds)."""
    asked = []

    def record(points, workers, scheduler=None):
        asked.append((len(points), workers, scheduler))
        return iter(())

    monkeypatch.setattr(sweeps, "run_tasks", record)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert main(["sweep-seeds", "--seeds", "400", "--out", str(tmp_path / "big.csv")]) == 1   # nothing came back
    assert main(["atlas", "--seeds", "400", "--epochs", "2", "--out", str(tmp_path / "a.csv")]) == 1
    assert main(["sweep-seeds", "--seeds", "400", "--serial", "--out", str(tmp_path / "c.csv")]) == 1
    assert asked == [(400, 2, None), (400, 0, None), (400, 0, None)]
    err = capsys.readouterr().err
    assert "400 points on a LocalCluster of 2 workers: ~" in err
    assert "400 points in this process: ~" in err and "400 points in this process (--serial" in err


@pytest.mark.slow
def test_rows_are_the_same_whichever_way_the_default_sweep_chose(tmp_path, monkeypatch, capsys):
    args = ["sweep-seeds", "--seeds", "4", "--d", "4", "--epochs", "30", "--out"]
    assert main(args + [str(tmp_path / "here.csv")]) == 0
    assert "4 points in this process: ~" in capsys.readouterr().err
    monkeypatch.setattr(sweeps, "CLUSTER_START_SECONDS", 0.0)           # any saving now beats the start-up
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert main(args + [str(tmp_path / "cluster.csv")]) == 0
    assert "4 points on a LocalCluster of 2 workers: ~" in capsys.readouterr().err
    here, cluster = read_rows(tmp_path / "here.csv"), read_rows(tmp_path / "cluster.csv")
    assert rows_equal(here, cluster)
    assert not rows_equal(here, cluster.assign(gap_acc_high=cluster["gap_acc_high"] + 1e-15))
