"""Sweeps on dask.distributed: the output file (append, torn line, resume, foreign rows),
and a real scheduler with worker processes on 127.0.0.1 started by the `dask` CLI: rows
equal the serial ones bit for bit (timings aside), a client killed mid-sweep keeps its
finished points and a rerun resumes, a worker killed mid-task is retried, not lost."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopviz.__main__ import main
from loopviz.config import RunConfig
from loopviz.sweeps import (RowFile, SweepError, atlas_configs, plan, read_rows, rows_equal, run_points,
                            seed_configs)
from tests.apptest_helpers import REPO

DASK = str(Path(sys.executable).parent / "dask")
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}
BASE = RunConfig(d=3, epochs=40)


def atlas_points(epochs: int = 40, seeds: int = 2) -> list:
    return plan("atlas", atlas_configs(BASE.replace(epochs=epochs), {"lr": [1e-3, 3e-3]}, seeds))


def as_table(rows: list[dict], points: list, path: Path) -> pd.DataFrame:
    """Rows through the CSV file, in plan order: what a sweep leaves on disk."""
    order = {p.key: i for i, p in enumerate(points)}
    store = RowFile(path, list(order), fresh=True)
    for row in sorted(rows, key=lambda r: order[r["key"]]):
        store.append(row)
    return read_rows(path)


# ------------------------------------------------------------------ the file, no cluster
def test_rows_round_trip_exactly_and_a_torn_last_line_is_dropped(tmp_path):
    points = plan("seed", seed_configs(BASE.replace(epochs=3), 3, "both"))
    rows = list(run_points(points[:2], workers=0))
    path = tmp_path / "s.csv"
    table = as_table(rows, points, path)
    for column in ("looped_acc_high", "single_loss", "bayes_all"):
        assert table[column].tolist() == [r[column] for r in rows]      # floats exactly as computed
    with open(path, "a") as handle:
        handle.write(rows[0]["key"][:5])                                 # a kill in the middle of a line
    store = RowFile(path, [p.key for p in points], fresh=False)
    assert store.done == {rows[0]["key"], rows[1]["key"]}
    assert path.read_text().endswith("\n") and len(read_rows(path)) == 2


def test_a_file_of_another_sweep_is_refused_not_mixed(tmp_path):
    points = plan("seed", seed_configs(BASE.replace(epochs=3), 2, "both"))
    path = tmp_path / "s.csv"
    as_table(list(run_points(points, workers=0)), points, path)
    other = plan("seed", seed_configs(BASE.replace(epochs=4), 2, "both"))
    with pytest.raises(SweepError, match="another sweep"):
        RowFile(path, [p.key for p in other], fresh=False)
    store = RowFile(path, [p.key for p in points], fresh=False)
    with pytest.raises(SweepError, match="columns differ"):
        store.append({"key": "x", "seed": 1})
    assert main(["sweep-seeds", "--seeds", "2", "--d", "3", "--epochs", "4", "--serial", "--out", str(path)]) == 2


def test_a_tasks_rows_are_appended_in_one_fsynced_write_or_not_at_all(tmp_path, monkeypatch):
    points = plan("seed", seed_configs(BASE.replace(epochs=3), 3, "both"))
    rows = list(run_points(points, workers=0))
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "s.csv"
    store = RowFile(path, [p.key for p in points], fresh=True)
    with pytest.raises(SweepError, match="columns differ"):
        store.append(rows[0], {"key": "x", "seed": 1})                   # one bad row: none written
    assert path.read_text() == "" and not synced
    store.append(*rows[:2])
    store.append(rows[2])
    assert len(synced) == 2 and store.done == {p.key for p in points}
    assert list(read_rows(path)["key"]) == [p.key for p in points]


def test_a_rerun_with_the_same_out_skips_finished_points(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    assert main(["sweep-seeds", "--seeds", "2", "--d", "3", "--epochs", "5", "--serial", "--out", str(out)]) == 0
    first = read_rows(out)
    assert main(["sweep-seeds", "--seeds", "3", "--d", "3", "--epochs", "5", "--serial", "--out", str(out)]) == 0
    assert f"resuming {out}: 2 of 3 points already done" in capsys.readouterr().err
    table = read_rows(out)
    assert list(table["seed"]) == [0, 1, 2]
    assert rows_equal(table.iloc[:2], first)
    assert table.loc[:1, "single_seconds"].tolist() == first["single_seconds"].tolist()  # not recomputed


def test_bad_sweep_options_are_one_line(capsys):
    assert main(["atlas", "--grid", "d=4,x", "--out", "a.csv"]) == 2
    assert main(["atlas", "--grid", "d=4", "embedding=onehot", "--out", "a.csv"]) == 2
    assert main(["atlas", "--scheduler", "localhost:1", "--out", "a.csv"]) == 2
    assert main(["sweep-seeds", "--seeds", "0", "--out", "a.csv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)
    assert "d=4, embedding=onehot is invalid" in err[1]
    assert not Path("a.csv").exists()


# ------------------------------------------------------------------ a real cluster on loopback
def _start_worker(scheduler_file: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([DASK, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                             "--no-nanny", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                             "--host", "127.0.0.1", "--name", name],
                            cwd=REPO, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker`s as separate processes, loopback only."""
    from distributed import Client

    scheduler_file = tmp_path_factory.mktemp("dask") / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
                              cwd=REPO, env=ENV, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs += [_start_worker(scheduler_file, f"w{i}") for i in range(2)]
        with Client(address) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, scheduler_file
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_remote_rows_equal_serial_rows_bit_for_bit(cluster, tmp_path):
    address, _ = cluster
    for points in (atlas_points(), plan("seed", seed_configs(BASE, 3, "both"))):
        serial = as_table(list(run_points(points, workers=0)), points, tmp_path / "serial.csv")
        remote = as_table(list(run_points(points, workers=2, scheduler=address)), points, tmp_path / "remote.csv")
        assert rows_equal(serial, remote)
        assert any(c.endswith("seconds") for c in serial.columns)
        assert not rows_equal(serial, remote.assign(looped_acc_high=remote["looped_acc_high"] + 1e-15))


@pytest.mark.slow
def test_a_killed_client_keeps_finished_points_and_a_rerun_resumes(cluster, tmp_path, capsys):
    address, _ = cluster
    out = tmp_path / "atlas.csv"
    args = ["atlas", "--grid", "lr=1e-3,3e-3", "--d", "3", "--seeds", "4", "--epochs", "400", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "loopviz", *args, "--scheduler", address], cwd=REPO, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:           # header + one finished point
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = read_rows(out)
    assert 1 <= len(kept) < 8 and kept["key"].is_unique
    assert main(args + ["--scheduler", address]) == 0
    assert f"resuming {out}: {len(kept)} of 8 points already done" in capsys.readouterr().err
    final = read_rows(out)
    points = plan("atlas", atlas_configs(BASE.replace(epochs=400), {"lr": [1e-3, 3e-3]}, 4))
    assert list(final["key"]) == [p.key for p in points]
    kept_again = final.set_index("key").loc[kept["key"]].reset_index()
    assert rows_equal(kept_again[kept.columns], kept)                      # finished points were not redone
    serial = as_table(list(run_points(points[:2], workers=0)), points[:2], tmp_path / "serial.csv")
    assert rows_equal(final.iloc[:2].reset_index(drop=True), serial)


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_retried_not_lost(cluster, tmp_path):
    from distributed import Client

    address, scheduler_file = cluster
    victim = _start_worker(scheduler_file, "victim")
    points = atlas_points(epochs=200, seeds=2)
    with Client(address) as client:
        client.wait_for_workers(3, timeout=60)
        victim_address = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
                              if w["name"] == "victim")
        rows: list[dict] = []
        runner = threading.Thread(target=lambda: rows.extend(run_points(points, workers=2, scheduler=address)))
        runner.start()
        deadline = time.time() + 120
        while time.time() < deadline and not client.processing(workers=[victim_address])[victim_address]:
            time.sleep(0.02)
        held = client.processing(workers=[victim_address])[victim_address]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        runner.join(timeout=180)
    assert held, "the victim never received a task"
    assert sorted(r["key"] for r in rows) == sorted(p.key for p in points)
    serial = as_table(list(run_points(points, workers=0)), points, tmp_path / "serial.csv")
    assert rows_equal(as_table(rows, points, tmp_path / "remote.csv"), serial)
    assert np.isfinite(serial["looped_acc_high"]).all()


def test_atlas_spectra_match_a_finite_difference_hessian():
    import torch

    from loopviz.sweeps import atlas_point, train_curves
    from loopviz.toy.training import prepare

    config = RunConfig(d=2, epochs=5)
    row = atlas_point(config, spectra=True)
    problem = prepare(config)
    for model in ("single", "looped"):
        theta = torch.tensor(train_curves([config.replace(model=model)])[0]["theta"], dtype=torch.float64)
        loops = config.replace(model=model).loops_at(config.epochs)

        def grad(t: torch.Tensor) -> torch.Tensor:
            t = t.clone().requires_grad_(True)
            return torch.autograd.grad(problem.loss(t, loops), t)[0]

        h, eps = [], 1e-5
        for i in range(theta.numel()):
            step = torch.zeros_like(theta).view(-1)
            step[i] = eps
            h.append(((grad(theta + step.view_as(theta)) - grad(theta - step.view_as(theta))) / (2 * eps)).view(-1))
        fd = torch.stack(h)
        assert row[f"{model}_lambda_max"] == pytest.approx(torch.linalg.eigvalsh((fd + fd.T) / 2)[-1].item(),
                                                           rel=1e-6, abs=1e-8)
    assert isinstance(row["assumption1_holds"], bool)


def test_shift_timing_noise_reads_the_raw_runs_beside_a_shift_sweep(tmp_path):
    """The one reader of OUT.raw.csv (home and SHIFT pages): pure Looped-Attn's (max − min) / median."""
    from loopviz.sweeps import raw_path, shift_timing_noise

    out = tmp_path / "sweep_shift.csv"
    assert raw_path(out) == tmp_path / "sweep_shift.csv.raw.csv"
    assert shift_timing_noise(out) == 0.0                       # no raw runs kept: no noise claimed
    pd.DataFrame({"model": ["looped", "shift", "looped", "looped"],
                  "seconds": [10.0, 1.0, 12.0, 11.0]}).to_csv(raw_path(out), index=False)
    assert shift_timing_noise(out) == pytest.approx((12 - 10) / 11)   # the shift run's 1 s is not Looped's
    bundled = REPO / "assets" / "sweep_shift.csv"
    looped = pd.read_csv(REPO / "assets" / "sweep_shift.csv.raw.csv").query("model == 'looped'")["seconds"]
    assert shift_timing_noise(bundled) == pytest.approx(np.ptp(looped) / np.median(looped)) and len(looped) > 1
