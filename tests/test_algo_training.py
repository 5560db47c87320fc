"""Training: the loss falls, runs reproduce, SHIFT's Stage I is Single's, SCP picks the switch."""
import threading

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator

from loopviz.algo import curvature, job, models, training
from loopviz.algo.config import AlgoConfig
from loopviz.algo.job import AlgoLog


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**changes) -> AlgoConfig:
    base = dict(width=16, heads=2, steps=60, eval_every=20, eval_samples=16, train_max_len=3, test_lengths=(2, 5),
                checkpoints=1, batch_size=16, lr=3e-3, device="cpu")
    return AlgoConfig(**{**base, **changes}).validate()


def metric(records, name):
    return np.array([r.metrics[name] for r in records])


@pytest.mark.parametrize("model", ["single", "looped"])
def test_the_training_loss_falls(model):
    records = list(training.train(tiny(model=model)))
    loss = metric(records, "loss")
    assert [r.step for r in records] == [0, 20, 40, 60]
    assert loss[-1] < 0.5 * loss[0]
    assert all(r.phase == model for r in records)
    assert records[-1].weights is not None and records[0].weights is not None


def test_same_config_same_numbers_and_another_seed_differs():
    a = list(training.train(tiny(model="looped", steps=20)))
    b = list(training.train(tiny(model="looped", steps=20)))
    c = list(training.train(tiny(model="looped", steps=20, seed=1)))
    assert np.array_equal(metric(a, "loss"), metric(b, "loss"))
    assert a[-1].acc_by_len == b[-1].acc_by_len and a[-1].loops_by_len == b[-1].loops_by_len
    assert not np.array_equal(metric(a, "loss"), metric(c, "loss"))


def test_single_trains_with_one_pass_and_looped_with_n_loops():
    config = tiny(model="looped")
    single = training.Trainer(config, looped=False)
    looped = training.Trainer(config, looped=True)
    assert [single.loops(n) for n in (1, 3, 7)] == [1, 1, 1]
    assert [looped.loops(n) for n in (1, 3, 7)] == [1, 3, 7]


def test_shift_stage_one_is_the_single_run_recomputed_or_reused():
    config = tiny(model="shift", shift_step=20)
    single_trainer = training.Trainer(config.replace(model="single"), looped=False)
    single = list(single_trainer.run())
    assert single_trainer.handoff is not None and single_trainer.handoff.step == 20
    info_a, info_b = {}, {}
    recomputed = list(training.train_shift(config, info=info_a))
    reused = list(training.train_shift(config, single, single_trainer.handoff, info=info_b))
    assert info_a == info_b == {"shift_step": 20, "shift_rule": "fixed", "plateau_step": None}
    for run in (recomputed, reused):
        assert [r.step for r in run] == [0, 20, 40, 60]
        assert [r.phase for r in run] == ["single", "single", "looped", "looped"]
        for s, r in zip(single[:2], run[:2]):
            assert s.metrics == r.metrics and s.acc_by_len == r.acc_by_len
    assert reused[1] is single[1]  # reused, not recomputed
    assert np.array_equal(metric(recomputed, "loss")[2:], metric(reused, "loss")[2:])
    assert not np.array_equal(metric(reused, "loss")[2:], metric(single, "loss")[2:])
    # Stage II's clock continues from Stage I's.
    assert reused[2].seconds > single[1].seconds


def test_scp_switches_after_a_planted_plateau(monkeypatch):
    """Feed the trainer's SCP a validation loss that stops falling after evaluation 3."""
    config = tiny(model="shift", steps=200, eval_every=10, scp_window=2, scp_patience=2, scp_delta1=0.05)
    trainer = training.Trainer(config.replace(model="single"), looped=False)
    planted = iter([2.0, 1.5, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5] + [0.5] * 20)
    real = training.Trainer.evaluate

    def evaluate(self):
        record = real(self)
        record.metrics["val_loss"], record.metrics["grad_norm"] = next(planted), 1.0
        return record

    monkeypatch.setattr(training.Trainer, "evaluate", evaluate)
    records = list(trainer.run(stop_at_handoff=True))
    # val[3] = 0.5, and val[5] - val[3] = 0 < δ1: plateau at evaluation 5 (step 50); + W = 2 → step 70.
    assert trainer.handoff.rule == "scp" and trainer.handoff.plateau_step == 50 and trainer.handoff.step == 70
    assert records[-1].step == 70 and records[-1].weights is not None


def test_without_a_plateau_shift_falls_back_to_half_way(monkeypatch):
    config = tiny(model="shift", steps=80, eval_every=10, scp_window=2, scp_patience=1)
    falling = iter(np.linspace(10, 0, 20))
    real = training.Trainer.evaluate

    def evaluate(self):
        record = real(self)
        record.metrics["val_loss"] = float(next(falling))
        return record

    monkeypatch.setattr(training.Trainer, "evaluate", evaluate)
    info = {}
    records = list(training.train_shift(config, info=info))
    assert info["shift_rule"] == "fallback" and info["shift_step"] == 40
    assert [r.phase for r in records] == ["single"] * 5 + ["looped"] * 4


def test_checkpoints_are_evenly_spaced_evaluations():
    config = tiny(steps=100, eval_every=10, checkpoints=4)
    assert training.checkpoint_steps(config) == {0, 20, 50, 80, 100}
    assert training.eval_steps(tiny(steps=25, eval_every=10)) == [0, 10, 20, 25]


def test_trainers_built_at_once_in_threads_start_from_their_own_seeds_weights():
    """The app trains Single and Looped side by side: their initial weights must not depend on
    how the two threads' draws from torch's global RNG interleave."""
    import threading

    configs = [tiny(seed=s, width=32) for s in range(6)]
    problem = training.prepare(configs[0])
    alone = [training.Trainer(c, False, problem).weights() for c in configs]
    for _ in range(3):
        built: dict[int, dict] = {}
        start = threading.Barrier(len(configs))

        def build(i):
            start.wait()
            built[i] = training.Trainer(configs[i], False, problem).weights()

        threads = [threading.Thread(target=build, args=(i,)) for i in range(len(configs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, weights in enumerate(alone):
            for name, value in weights.items():
                np.testing.assert_array_equal(built[i][name], value)


def _cancel_during_lanczos(monkeypatch, at_step: int, after: int) -> tuple[threading.Event, list[int]]:
    """A cancel event that is set, as by a click on Cancel, when the Lanczos run of the checkpoint
    at `at_step` asks for its (after + 1)-th Hessian-vector product; and the steps of every product
    computed."""
    cancel, products = threading.Event(), []
    real = curvature.hvp_operator

    def counting(f, theta, *args, **kwargs):
        op, count = real(f, theta, *args, **kwargs)
        step = trainer_step[0]

        def matvec(v):
            if step == at_step and sum(s == at_step for s in products) == after:
                cancel.set()
            result = op.matvec(v)
            products.append(step)
            return result

        return LinearOperator(op.shape, matvec=matvec, dtype=op.dtype), count

    trainer_step = [0]
    real_hessian = training.Trainer.hessian_top

    def hessian_top(self):
        trainer_step[0] = self.step
        return real_hessian(self)

    monkeypatch.setattr(curvature, "hvp_operator", counting)
    monkeypatch.setattr(training.Trainer, "hessian_top", hessian_top)
    return cancel, products


@pytest.mark.parametrize("model", ["single", "looped"])
def test_a_cancel_during_a_checkpoints_lanczos_stops_within_one_hessian_vector_product(monkeypatch, model):
    """The browser flake: the cpu preset's Looped-Attn spends ~14 s (one idle core, 51 products)
    in its step-0 Lanczos, over a minute under load, and a Cancel only took effect between
    training steps. Now the next product refuses, the incomplete checkpoint is not kept, and a
    SHIFT switch decided at it (the Single run's fixed step 20 here) is not handed over."""
    config = tiny(model=model, steps=40, shift_step=20 if model == "single" else 0, hessian_top=2, checkpoints=1)
    cancel, products = _cancel_during_lanczos(monkeypatch, at_step=20 if model == "single" else 40, after=2)
    log = job.train(config, AlgoLog(config), cancel)
    assert cancel.is_set()
    stopped = 20 if model == "single" else 40
    assert products.count(stopped) == 2          # the product asked for after the click was refused
    kept = [0, 20] if model == "looped" else [0]
    assert [r.step for r in log.records] == kept and log.records[0].hessian_top is not None
    assert log.status == "cancelled" and log.message == f"cancelled after step {kept[-1]}; {len(kept)} records kept"
    assert log.handoff is None


def test_a_cancel_during_an_evaluation_stops_before_its_next_test_length(monkeypatch):
    """Looped-Attn's test lengths are most of an evaluation (~0.5 s of ~0.6 s for the cpu preset,
    ~20 training steps): a cancel is answered between them, and the evaluation is not kept."""
    config = tiny(model="looped", steps=40, test_lengths=(2, 3, 5), hessian_top=0)
    cancel, calls = threading.Event(), []
    real = models.choose_loops

    def choose_loops(*args):
        calls.append(len(calls))
        if len(calls) == 4:        # the first test length of the step-20 evaluation
            cancel.set()
        return real(*args)

    monkeypatch.setattr(models, "choose_loops", choose_loops)
    log = job.train(config, AlgoLog(config), cancel)
    assert len(calls) == 4 and [r.step for r in log.records] == [0]
    assert log.message == "cancelled after step 0; 1 records kept"


def test_a_trainer_cancelled_before_its_first_evaluation_evaluates_nothing(monkeypatch):
    cancel = threading.Event()
    cancel.set()
    monkeypatch.setattr(training.Trainer, "train_loss", lambda *a: pytest.fail("evaluated after the cancel"))
    assert list(training.Trainer(tiny(model="looped"), looped=True, cancel=cancel).run()) == []
