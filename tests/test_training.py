import threading

import numpy as np
import pytest
import torch

from loopviz.toy import markov
from loopviz.config import RunConfig
from loopviz.runs.execute import RunLog, execute, spectrum_epochs
from loopviz.toy.training import Trainer, prepare, train
from tests import reference

TINY = RunConfig(model="looped", d=3, epochs=12, hessian_every=4)


def test_same_config_and_seed_give_the_same_numbers():
    a = [(r.metrics, r.theta) for r in train(TINY)]
    b = [(r.metrics, r.theta) for r in train(TINY)]
    assert len(a) == TINY.epochs + 1
    for (ma, ta), (mb, tb) in zip(a, b):
        assert ma == mb
        np.testing.assert_array_equal(ta, tb)


def test_records_are_exact_full_data_values_at_the_epochs_weights():
    config = TINY.replace(batch_size=64)
    problem = prepare(config)
    task = problem.task
    last = list(train(config, problem))[-1]
    loss = reference.mean_cross_entropy(last.theta, 3, problem.token, problem.position,
                                        task.train[:, :3], task.train[:, 3], 3)
    val_loss = reference.mean_cross_entropy(last.theta, 3, problem.token, problem.position,
                                            task.val[:, :3], task.val[:, 3], 3)
    assert last.metrics["loss"] == pytest.approx(loss, rel=1e-12)
    assert last.metrics["val_loss"] == pytest.approx(val_loss, rel=1e-12)
    W = reference.unflatten(last.theta, 3)
    pred = np.array([np.argmax(reference.looped_logits(*W, (problem.token[x] + problem.position).T, 3))
                     for x in task.train[:, :3]])
    expected = markov.bucket_accuracy(pred == task.train[:, 3], task.train_bucket)
    assert last.metrics["acc_high"] == pytest.approx(expected["high"])
    assert last.metrics["acc_low"] == pytest.approx(expected["low"])
    assert last.metrics["acc_all"] == pytest.approx(expected["all"])


def test_epoch_zero_is_the_initialisation_and_both_models_share_it():
    single = next(iter(train(TINY.replace(model="single"))))
    looped = next(iter(train(TINY)))
    assert single.epoch == looped.epoch == 0
    np.testing.assert_array_equal(single.theta, looped.theta)


@pytest.mark.parametrize("batch_size", [0, 100])
def test_resuming_from_a_state_is_bit_for_bit_the_uninterrupted_run(batch_size):
    config = TINY.replace(batch_size=batch_size)
    full = list(train(config))
    trainer = Trainer(config)
    list(trainer.run(until=5))
    resumed = list(Trainer(config, resume=trainer.state()).run(include_current=False))
    assert [r.epoch for r in resumed] == list(range(6, 13))
    for a, b in zip(full[6:], resumed):
        np.testing.assert_array_equal(a.theta, b.theta)
        assert a.metrics == b.metrics


def test_a_diverging_run_stops_and_keeps_its_records():
    config = RunConfig(model="looped", d=8, loops=8, init_scale=10.0, epochs=20, hessian_every=1)
    log = execute(config, workers=0)
    assert log.status == "diverged"
    assert log.diverged_epoch == log.records[-1].epoch
    assert "diverged at epoch" in log.message


def test_pipeline_computes_the_requested_spectra_and_they_match_direct_computation():
    log = execute(TINY, workers=0)
    assert log.status == "complete"
    assert sorted(log.spectra) == spectrum_epochs(TINY, TINY.epochs) == [0, 4, 8, 12]
    problem = prepare(TINY)
    direct = problem.hessian_spectrum(log.records[8].theta, 3)
    np.testing.assert_allclose(log.spectra[8], direct, rtol=1e-12, atol=1e-14)


def test_spectra_from_worker_processes_equal_inline_ones():
    inline = execute(TINY, workers=0)
    pooled = execute(TINY, workers=1, chunk=2)
    assert pooled.status == "complete"
    for epoch, eig in inline.spectra.items():
        np.testing.assert_allclose(pooled.spectra[epoch], eig, rtol=1e-12, atol=1e-14)


def test_a_run_cancelled_before_it_starts_ends_at_once():
    cancel = threading.Event()
    cancel.set()
    log = execute(TINY, cancel=cancel, workers=0)
    assert log.status == "cancelled"
    assert log.records == [] and "cancelled before its first epoch" in log.message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_run_that_raises_is_reported_not_raised():
    log = execute(TINY.replace(device="cuda"), workers=0)
    assert log.status == "failed"
    assert "CUDA is not available" in log.message


def test_snapshot_is_a_consistent_copy():
    log = RunLog(TINY)
    execute(TINY, log=log, workers=0)
    snap = log.snapshot()
    assert snap.status == "complete" and len(snap.records) == len(log.records)
    snap.records.clear()
    assert len(log.records) == TINY.epochs + 1


@pytest.mark.parametrize("shift_epoch", [0, 5, 12])
def test_stage_two_from_a_stored_single_run_equals_the_replay(tmp_path, shift_epoch):
    from loopviz.runs.format import read_run, run_data_from_log, write_run

    single = TINY.replace(model="single")
    stored = read_run(write_run(run_data_from_log(execute(single, workers=0)), tmp_path / "single"))
    assert stored.optimizer is not None and stored.optimizer["steps"][-1] == TINY.epochs
    config = TINY.replace(model="shift", shift_epoch=shift_epoch)
    replayed = execute(config, workers=0)
    restored = execute(config, workers=0, prior=stored)
    assert replayed.status == restored.status == "complete"
    for a, b in zip(replayed.records, restored.records, strict=True):
        assert (a.epoch, a.loops, a.metrics) == (b.epoch, b.loops, b.metrics)
        np.testing.assert_array_equal(a.theta, b.theta)
    # Same weights, so the same spectra; Stage I's come from the Single run, where they were
    # batched with other epochs, hence equal to round-off rather than bit for bit.
    assert replayed.spectra.keys() == restored.spectra.keys()
    for epoch, eig in replayed.spectra.items():
        np.testing.assert_allclose(restored.spectra[epoch], eig, rtol=0, atol=1e-13 * np.abs(eig).max())


def test_a_stored_adam_state_is_the_trainers():
    from loopviz.toy.training import adam_state

    trainer = Trainer(TINY)
    last = list(trainer.run(until=7))[-1]
    rebuilt = adam_state(TINY.lr, last.adam, last.adam_steps)
    original = trainer.state().optimizer
    assert rebuilt["param_groups"] == original["param_groups"]
    assert rebuilt["state"][0].keys() == original["state"][0].keys()
    assert rebuilt["state"][0]["step"] == original["state"][0]["step"] == 7
    for key in ("exp_avg", "exp_avg_sq"):
        assert rebuilt["state"][0][key].dtype == np.float64
        np.testing.assert_array_equal(rebuilt["state"][0][key], original["state"][0][key])


@pytest.mark.parametrize("changes", [dict(), dict(reset_optimizer=True), dict(batch_size=100)])
def test_a_shift_run_trained_straight_through_is_the_staged_one(changes):
    """Trainer on a SHIFT config reuses each record's full-batch gradient for the next step but
    must recompute it at the switch (loops 1 → 3); execute trains Stage II from a fresh Trainer,
    which has no gradient to reuse. Both must give the same records."""
    config = TINY.replace(model="shift", shift_epoch=5, hessian_every=0, **changes)
    straight = list(train(config))
    staged = execute(config, workers=0).records
    assert [r.loops for r in straight] == [1] * 6 + [3] * 7
    for a, b in zip(straight, staged, strict=True):
        assert (a.epoch, a.loops, a.metrics) == (b.epoch, b.loops, b.metrics)
        np.testing.assert_array_equal(a.theta, b.theta)
