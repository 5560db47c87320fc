"""Seed sweeps train the seeds of one configuration together (toy/batched.py): their rows
equal, bit for bit apart from timings, the rows of training each seed alone (the former
seed_point, rebuilt here from sweeps.final_metrics, which trains one run by
training.Trainer), at a width that batches (d = 4) and one that falls back (d = 3);
chunks never mix configurations, and a sweep killed between two rows of one chunk
resumes without duplicating or recomputing the rows it kept."""
import numpy as np
import pytest

from loopviz.config import RunConfig
from loopviz.sweeps import (RowFile, SEED_CHUNK, chunks, final_metrics, plan, read_rows, rows_equal, run_points,
                            seed_configs, sweep)
from loopviz.toy import markov

EPOCHS = 25


def one_at_a_time(point) -> dict:
    """A seed sweep's row as it was before batching: each model trained alone."""
    base = RunConfig.from_json(point.config_json)
    row = {"key": point.key, "seed": base.seed, "data_seed": base.data_seed}
    for model in ("single", "looped"):
        for name, value in final_metrics(base.replace(model=model)).items():
            row[f"{model}_{name}"] = value
    task = markov.task_for(base)
    row.update({f"bayes_{k}": v for k, v in markov.bayes_accuracy(task).items()})
    row.update({f"memorise_{k}": v for k, v in markov.memorisation_ceiling(task).items()})
    row["gap_acc_high"] = row["looped_acc_high"] - row["single_acc_high"]
    row["gap_val_acc_all"] = row["looped_val_acc_all"] - row["single_val_acc_all"]
    row["gap_val_acc_high"] = row["looped_val_acc_high"] - row["single_val_acc_high"]
    return row


def assert_rows_equal(rows: list[dict], reference: list[dict]) -> None:
    assert len(rows) == len(reference)
    for row, ref in zip(rows, reference):
        assert list(row) == list(ref)                          # same columns, same order (the CSV header)
        for name, value in ref.items():
            if not name.endswith("seconds"):
                same = row[name] == value or (isinstance(value, float) and np.isnan(value) and np.isnan(row[name]))
                assert same and type(row[name]) is type(value), (row["key"], name, row[name], value)


@pytest.mark.parametrize("d", [4, 3])
def test_batched_seed_rows_equal_rows_trained_one_at_a_time(d):
    # a grid of two configurations (two learning rates) × 3 seeds, vary data and init seeds
    configs = [c for lr in (1e-3, 1e-2) for c in seed_configs(RunConfig(d=d, epochs=EPOCHS, lr=lr), 3, "both")]
    points = plan("seed", configs)
    assert [len(c) for c in chunks(points, 1)] == [3, 3]       # one chunk per configuration
    rows = list(run_points(points, workers=0))
    assert [r["key"] for r in rows] == [p.key for p in points]
    assert_rows_equal(rows, [one_at_a_time(p) for p in points])
    # the seeds really differ (a row copied from another seed would fail the comparison above)
    assert len({r["single_loss"] for r in rows}) == len(rows)


def test_chunks_spread_one_configuration_over_the_workers_and_never_mix_configurations():
    base = RunConfig(d=4, epochs=EPOCHS)
    seeds = plan("seed", seed_configs(base, 5, "both") + seed_configs(base.replace(lr=1e-2), 2, "seed"))
    tasks = chunks(seeds, 2)
    assert [[p.key for p in t] for t in tasks] == [[p.key for p in seeds[:3]], [p.key for p in seeds[3:5]],
                                                   [seeds[5].key], [seeds[6].key]]
    many = plan("seed", seed_configs(base, SEED_CHUNK + 1, "both"))
    assert [len(t) for t in chunks(many, 1)] == [SEED_CHUNK, 1]
    shift = plan("shift", [base.replace(model="looped")] * 2)
    assert [len(t) for t in chunks(shift, 1)] == [1, 1]         # timed points are never batched


def test_a_chunk_cut_between_rows_resumes_without_duplicates_or_recomputation(tmp_path):
    points = plan("seed", seed_configs(RunConfig(d=4, epochs=EPOCHS), 4, "both"))
    full = list(run_points(points, workers=0))
    path = tmp_path / "s.csv"
    store = RowFile(path, [p.key for p in points], fresh=True)
    for row in (full[0], full[2]):                              # a chunk of 4 killed after two of its rows
        store.append({**row, "single_seconds": -1.0})           # marks rows that must not be recomputed
    table, interrupted, skipped = sweep(points, path, fresh=False, workers=0, scheduler=None)
    assert not interrupted and skipped == 2
    on_disk = read_rows(path)
    assert on_disk["key"].is_unique and sorted(on_disk["key"]) == sorted(p.key for p in points)
    assert list(table["key"]) == [p.key for p in points]
    assert table["single_seconds"].tolist()[0::2] == [-1.0, -1.0]
    fresh_path = tmp_path / "fresh.csv"
    fresh, _, _ = sweep(points, fresh_path, fresh=True, workers=0, scheduler=None)
    assert rows_equal(table, fresh)


@pytest.mark.slow
def test_local_cluster_rows_equal_serial_rows_with_batched_chunks(tmp_path):
    points = plan("seed", seed_configs(RunConfig(d=4, epochs=EPOCHS), 5, "both"))
    serial, _, _ = sweep(points, tmp_path / "serial.csv", fresh=True, workers=0, scheduler=None)
    cluster, _, _ = sweep(points, tmp_path / "cluster.csv", fresh=True, workers=2, scheduler=None)
    assert rows_equal(serial, cluster)
    assert not rows_equal(serial, cluster.assign(looped_acc_all=cluster["looped_acc_all"] + 1e-15))
