"""--optimizer {adam, sgd, gd} and --momentum: validation, stored keys, and the updates
checked against hand-written gradient descent (autograd gradients, no torch.optim)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from loopviz.__main__ import main
from loopviz.config import LATER_FIELDS, ConfigError, RunConfig
from loopviz.runs.execute import execute
from loopviz.runs.format import run_data_from_log
from loopviz.toy import batched, markov
from loopviz.toy.training import Trainer, prepare

REPO = Path(__file__).resolve().parents[1]
TINY = RunConfig(d=3, epochs=3, hessian_every=0)


@pytest.mark.parametrize("changes, field", [
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(optimizer="sgd", batch_size=50, momentum=1.0), "momentum"),
    (dict(optimizer="gd", momentum=-0.1), "momentum"),
    (dict(momentum=0.9), "momentum"),                      # adam takes no momentum
    (dict(optimizer="sgd"), "batch_size"),                  # sgd is minibatch
    (dict(optimizer="gd", batch_size=50), "batch_size"),    # gd is full batch
])
def test_bad_optimizer_settings_are_named(changes, field):
    with pytest.raises(ConfigError, match=field):
        RunConfig().replace(**changes)


def test_good_optimizer_settings_validate_and_round_trip():
    for config in (RunConfig(optimizer="gd", momentum=0.9), RunConfig(optimizer="sgd", batch_size=64, momentum=0.5)):
        assert RunConfig.from_json(config.to_json()) == config.validate()
    assert RunConfig.from_dict({"optimizer": "gd", "momentum": "0.25"}).momentum == 0.25


def _toy_configs():
    """Every bundled toy run's config.json with the key its meta.json recorded."""
    found = []
    for path in sorted(REPO.glob("assets/**/config.json")):
        meta = json.loads((path.parent / "meta.json").read_text())
        if str(meta.get("format", "")).startswith("loopviz-algo"):
            continue  # the algorithmic tasks have their own config (loopviz/algo/config.py)
        found.append((path, meta["key"]))
    return found


def test_bundled_runs_keep_their_keys_and_new_settings_change_the_key():
    runs = _toy_configs()
    assert len(runs) >= 3
    for path, key in runs:
        config = RunConfig.from_json(path.read_text())
        assert config.optimizer == "adam" and config.momentum == 0.0
        assert config.key() == key, path
        if config.batch_size == 0:
            assert config.replace(optimizer="gd").key() != key
            assert config.replace(optimizer="gd", momentum=0.5).key() != config.replace(optimizer="gd").key()
    assert {"optimizer", "momentum"} <= set(LATER_FIELDS)
    assert LATER_FIELDS["optimizer"] == RunConfig().optimizer and LATER_FIELDS["momentum"] == RunConfig().momentum


def _by_hand(config: RunConfig, epochs: int) -> list[np.ndarray]:
    """θ after each epoch of heavy ball u ← μu + g, θ ← θ − lr u (torch's SGD convention),
    g the autograd gradient of the exact loss on the full batch (gd) or on each minibatch of
    the Trainer's seeded order (sgd)."""
    problem = prepare(config)
    theta = torch.tensor(Trainer(config, problem).theta, dtype=torch.float64)
    u = torch.zeros_like(theta)
    out = []
    for epoch in range(1, epochs + 1):
        loops = config.loops_at(epoch)
        if config.optimizer == "gd":
            batches = [problem.train_counts]
        else:
            order = np.random.default_rng([config.seed, epoch]).permutation(config.n_train)
            batches = [markov.count_table(problem.task.train[order[b:b + config.batch_size]])
                       for b in range(0, config.n_train, config.batch_size)]
        for counts in batches:
            t = theta.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(problem.loss(t, loops, counts), t)
            u = config.momentum * u + g
            theta = theta - config.lr * u
        out.append(theta.numpy().copy())
    return out


@pytest.mark.parametrize("config", [
    TINY.replace(optimizer="gd", lr=0.5),
    TINY.replace(optimizer="gd", lr=0.5, momentum=0.9, model="single"),
    TINY.replace(optimizer="sgd", lr=0.2, momentum=0.5, batch_size=128),
])
def test_sgd_and_gd_runs_are_hand_written_gradient_descent(config):
    records = list(Trainer(config).run())
    assert [r.epoch for r in records] == [0, 1, 2, 3]
    expected = _by_hand(config, config.epochs)
    for record, theta in zip(records[1:], expected):
        np.testing.assert_allclose(record.theta, theta, rtol=1e-12, atol=1e-15)
        assert record.adam is None  # only Adam's moments are stored
    assert not np.allclose(records[-1].theta, records[0].theta)  # it did train


def test_momentum_changes_the_path_and_zero_momentum_is_plain_gd():
    plain = _by_hand(TINY.replace(optimizer="gd", lr=0.5), 2)
    theta0 = Trainer(TINY).theta.copy()
    problem = prepare(TINY)
    t = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(problem.loss(t, 3), t)
    np.testing.assert_allclose(plain[0], theta0 - 0.5 * g.numpy(), rtol=1e-13)  # θ1 = θ0 − lr ∇L(θ0)
    heavy = list(Trainer(TINY.replace(optimizer="gd", lr=0.5, momentum=0.9)).run(until=2))
    np.testing.assert_allclose(heavy[1].theta, plain[0], rtol=1e-13)        # u0 = 0: the first step is GD's
    # θ2 = θ1 − lr ∇L(θ1) + μ (θ1 − θ0): heavy ball
    t1 = torch.tensor(heavy[1].theta, dtype=torch.float64, requires_grad=True)
    (g1,) = torch.autograd.grad(problem.loss(t1, 3), t1)
    np.testing.assert_allclose(heavy[2].theta, heavy[1].theta - 0.5 * g1.numpy() + 0.9 * (heavy[1].theta - theta0),
                               rtol=1e-12, atol=1e-15)


def test_resuming_an_sgd_run_keeps_its_momentum():
    config = TINY.replace(optimizer="gd", lr=0.5, momentum=0.9, epochs=4)
    whole = list(Trainer(config).run())
    first = Trainer(config)
    list(first.run(until=2))
    rest = list(Trainer(config, resume=first.state()).run(include_current=False))
    for a, b in zip(whole[3:], rest):
        np.testing.assert_array_equal(a.theta, b.theta)


def test_shift_with_sgd_never_reads_a_stored_optimizer_state():
    """Stage I from a stored Single run is for Adam only (optimizer.npz holds Adam's moments);
    with gd + momentum Stage I is replayed, and Stage II continues the momentum buffer."""
    base = TINY.replace(optimizer="gd", lr=0.5, momentum=0.9, epochs=5)
    single = run_data_from_log(execute(base.replace(model="single"), workers=0))
    assert single.optimizer is None
    # Plant an Adam-shaped state: if the stored-state path were taken, it would be loaded into SGD.
    W, P = single.thetas.shape
    single.optimizer = {"epochs": np.arange(W), "exp_avg": np.ones((W, P)), "exp_avg_sq": np.ones((W, P)),
                        "steps": np.arange(W)}
    shift = base.replace(model="shift", shift_epoch=2)
    with_prior = execute(shift, workers=0, prior=single)
    alone = execute(shift, workers=0)
    assert with_prior.status == alone.status == "complete"
    for a, b in zip(with_prior.records, alone.records):
        np.testing.assert_array_equal(a.theta, b.theta)
    for record, theta in zip(with_prior.records[:3], single.thetas[:3]):
        np.testing.assert_array_equal(record.theta, theta)
    # Stage II by hand: the momentum buffer after epoch 2 carries over the switch.
    expected = _by_hand(shift, 5)
    np.testing.assert_allclose(with_prior.records[-1].theta, expected[-1], rtol=1e-12, atol=1e-15)


def test_batched_sgd_and_gd_runs_are_the_runs_trained_alone():
    configs = [RunConfig(d=4, epochs=3, hessian_every=0, optimizer="gd", lr=0.5, momentum=0.5, seed=s)
               for s in (1, 2)] + [RunConfig(d=3, epochs=3, hessian_every=0, optimizer="sgd", batch_size=128,
                                             lr=0.2, momentum=0.9, seed=s) for s in (1, 2)]
    rows = batched.final_metrics_many(configs)
    for row, config in zip(rows, configs):
        last = list(Trainer(config).run())[-1]
        assert {k: row[k] for k in last.metrics} == last.metrics


def test_cli_rejects_an_unknown_optimizer(capsys):
    assert main(["run", "--optimizer", "lbfgs", "--out", "/nonexistent/never"]) == 2
    assert "optimizer must be one of adam, sgd, gd" in capsys.readouterr().err


def test_sidebar_reads_optimizer_and_momentum_from_the_url():
    from loopviz.ui.config_sidebar import parse_query
    config, notes = parse_query({"batch_size": "64", "optimizer": "sgd", "momentum": "0.9"}, RunConfig())
    assert (config.optimizer, config.batch_size, config.momentum, notes) == ("sgd", 64, 0.9, {})
    config, notes = parse_query({"optimizer": "newton", "momentum": "2"}, RunConfig())
    assert config.optimizer == "adam" and config.momentum == 0.0
    assert "optimizer must be one of" in notes["optimizer"] and "momentum" in notes["momentum"]
