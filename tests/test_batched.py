"""toy/batched.py: many runs trained together give the rows of the runs trained alone."""
import numpy as np
import pytest

from loopviz.config import RunConfig
from loopviz.sweeps import final_metrics
from loopviz.toy.batched import _train_group, final_metrics_many, train_many
from loopviz.toy.training import Trainer, prepare, train

BASE = RunConfig(d=4, epochs=40, hessian_every=0)


def assert_same_rows(rows, configs):
    for row, config in zip(rows, configs, strict=True):
        alone = final_metrics(config)
        assert row.keys() == alone.keys()
        for key, value in alone.items():
            if key != "seconds":   # a share of the batch's time, by contract
                same = row[key] == value or (np.isnan(row[key]) and np.isnan(value))
                assert same, (config.seed, key, row[key], value)


def test_rows_are_bit_for_bit_those_of_runs_trained_alone():
    configs = [BASE.replace(model=m, seed=s, data_seed=s) for s in (0, 1, 2) for m in ("single", "looped")]
    assert_same_rows(final_metrics_many(configs), configs)


@pytest.mark.parametrize("changes", [dict(batch_size=100), dict(model="shift", shift_epoch=15),
                                     dict(model="shift", shift_epoch=15, reset_optimizer=True)])
def test_minibatches_and_shift_schedules_too(changes):
    configs = [BASE.replace(seed=s, data_seed=10 + s, **changes) for s in (0, 1)]
    assert_same_rows(final_metrics_many(configs), configs)


@pytest.mark.parametrize("d", [3, 5])
def test_unaligned_widths_batch_bit_for_bit_too(d):
    """numpy's products act on each run's slice alone, at any width (torch's CPU kernels did not at d = 3)."""
    configs = [BASE.replace(d=d, seed=s, data_seed=s, epochs=25) for s in (0, 1, 2)]
    assert_same_rows(final_metrics_many(configs), configs)


def test_mixed_shapes_are_grouped_and_rows_keep_their_order():
    configs = [BASE.replace(d=3, seed=1), BASE.replace(model="single", seed=2), BASE.replace(seed=3, loops=2)]
    assert_same_rows(final_metrics_many(configs), configs)


def test_a_diverging_run_stops_where_it_stops_alone_and_spares_the_others():
    wild = RunConfig(model="looped", d=8, loops=8, init_scale=10.0, epochs=20, hessian_every=0)
    configs = [wild, wild.replace(init_scale=0.02), wild.replace(seed=7)]
    rows = final_metrics_many(configs)
    assert rows[0]["diverged"] and not rows[1]["diverged"]
    assert_same_rows(rows, configs)


@pytest.mark.parametrize("changes", [dict(model="shift", shift_epoch=2), dict(batch_size=250)])
def test_a_batch_through_torch_autograd_gives_each_runs_numpy_training(changes):
    """Backend "torch" (a GPU's), here on the CPU: the batch's steps take torch autograd's
    gradient at θ [R, P] (and on stacked minibatch counts); each row is that run trained alone
    by numpy's gradient (toy/gradient.py), to round-off."""
    configs = [BASE.replace(seed=s, data_seed=s, epochs=4, **changes) for s in (0, 1)]
    rows, _ = _train_group(configs, [prepare(config, backend="torch") for config in configs], None)
    for row, config in zip(rows, configs, strict=True):
        alone = list(Trainer(config, prepare(config)).run())[-1]
        assert not row["diverged"] and row["epoch"] == alone.epoch == config.epochs
        for key, value in alone.metrics.items():
            assert row[key] == pytest.approx(value, rel=1e-10, abs=1e-13), (config.seed, key)


def test_curves_are_the_per_epoch_records():
    config = BASE.replace(seed=4)
    _, curves = train_many([config, config.replace(seed=5)], curve="acc_high")
    alone = np.array([r.metrics["acc_high"] for r in train(config)])
    np.testing.assert_array_equal(curves[0], alone)


@pytest.mark.slow
def test_the_bundled_seed_sweep_is_reproduced_bit_for_bit():
    from pathlib import Path

    import pandas as pd

    from loopviz.sweeps import seed_configs

    assets = Path(__file__).resolve().parent.parent / "assets"
    table = pd.read_csv(assets / "sweep_seeds.csv")
    base = RunConfig.from_json("\n".join((assets / "sweep_seeds.csv.summary.txt").read_text().splitlines()[1:]))
    configs = [c.replace(model=m) for c in seed_configs(base, 2, "both", first=int(table["seed"].iloc[0]))
               for m in ("single", "looped")]
    rows = final_metrics_many(configs)
    for config, row in zip(configs, rows):
        stored = table[table["seed"] == config.seed].iloc[0]
        for key in ("loss", "val_loss", "grad_norm", "acc_high", "acc_all", "val_acc_all"):
            assert row[key] == stored[f"{config.model}_{key}"], (config.seed, config.model, key)
