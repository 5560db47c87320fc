"""SCP on the algorithmic tasks (paper Sec. 5): the "best so far" reading of the plateau
test, checked against a literal loop, on planted plateaus in noise, on noisy decreasing
curves, on upward spikes and on shuffled curves; and the trainer and presets that use it."""
import numpy as np
import pytest

from loopviz import shift
from loopviz.__main__ import main
from loopviz.algo import training
from loopviz.algo.config import PRESETS, AlgoConfig, ConfigError, preset

P, W, DELTA1 = 3, 2, 0.01   # the cpu preset's SCP


def literal_best_plateau(val, p, delta1):
    """The first evaluation e >= p at which none of the last p evaluations beat the best
    loss before them by delta1 (Sec. 5's "fails to decrease by δ1 over p consecutive
    evaluations", on the best loss so far), written as a plain loop."""
    for e in range(p, len(val)):
        if min(val[:e - p + 1]) - min(val[e - p + 1:e + 1]) < delta1:
            return e
    return None


def planted(seed, t0=10, n=20, sigma=0.003, spike_at=None):
    """A validation loss falling 0.05 per evaluation until t0, flat after, plus N(0, σ) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    val = 0.3 + 0.05 * np.maximum(t0 - t, 0) + rng.normal(0, sigma, n)
    if spike_at is not None:
        val[spike_at] += 0.2
    return val


def test_best_plateau_matches_a_literal_loop_on_random_and_shuffled_curves():
    rng = np.random.default_rng(1)
    for i in range(300):
        n = int(rng.integers(4, 40))
        val = rng.permutation(planted(i, n=n)) if i % 2 else np.cumsum(rng.normal(-0.01, 0.02, n)) + 1
        p = int(rng.integers(1, 6))
        expected = literal_best_plateau(list(val), p, DELTA1)
        plateau, shift_epoch = shift.scp(val, np.ones(n), delta1=DELTA1, plateau_epochs=p, patience=W,
                                         plateau="best")
        assert plateau == expected
        assert shift_epoch == (expected + W if expected is not None and expected + W < n else None)


def test_a_plateau_planted_in_noise_fires_within_the_window_in_every_seed():
    found = []
    for seed in range(200):
        plateau, shift_epoch = shift.scp(planted(seed), np.ones(20), DELTA1, P, W, plateau="best")
        # The last fall of 0.05 is into evaluation 10; the plateau is declared p evaluations
        # later, or a little later where noise alone beat the best by δ1 (3.3 σ).
        assert 10 + P <= plateau <= 10 + 2 * P and shift_epoch == plateau + W
        found.append(plateau)
    assert np.mean(np.array(found) == 10 + P) >= 0.9


def test_a_noisy_decrease_never_fires_and_a_slowing_one_fires_where_the_closed_form_says():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        falling = 2.0 - 0.02 * np.arange(60) + rng.normal(0, 0.003, 60)   # p evaluations fall 0.06 > δ1
        assert shift.scp(falling, np.ones(60), DELTA1, P, W, plateau="best") == (None, None)
    t = np.arange(80)
    slowing = np.exp(-t / 10)   # val[e - 3] - val[e] = e^{-(e-3)/10} (1 - e^{-0.3}) < 0.01 from e = 36 on
    closed = int(np.ceil(3 + 10 * np.log((1 - np.exp(-0.3)) / 0.01)))
    assert shift.scp(slowing, np.ones(80), DELTA1, P, W, plateau="best") == (closed, closed + W)
    # on a monotone curve the best so far is the curve itself: both readings agree
    assert shift.scp(slowing, np.ones(80), DELTA1, P, W, plateau="window") == (closed, closed + W)


def test_one_upward_spike_is_no_plateau_for_best_but_is_for_window():
    for seed in range(50):
        val = planted(seed, spike_at=5)   # still falling 0.05 per evaluation at 5
        assert shift.scp(val, np.ones(20), DELTA1, P, W, plateau="window")[0] == 5
        assert 10 + P <= shift.scp(val, np.ones(20), DELTA1, P, W, plateau="best")[0] <= 10 + 2 * P


def test_shuffling_the_evaluations_moves_the_plateau_away_from_the_planted_one():
    rng = np.random.default_rng(2)
    found = [shift.scp(rng.permutation(planted(seed)), np.ones(20), DELTA1, P, W, plateau="best")[0]
             for seed in range(200)]
    assert np.mean([f is not None and 10 + P <= f <= 10 + 2 * P for f in found]) < 0.2   # unshuffled: all 200


def test_flat_noise_is_a_plateau_from_the_start():
    for seed in range(50):
        flat = 0.5 + np.random.default_rng(seed).normal(0, 0.003, 20)
        plateau, shift_epoch = shift.scp(flat, np.ones(20), DELTA1, P, W, plateau="best")
        assert P <= plateau <= 2 * P and shift_epoch == plateau + W


def test_an_unknown_plateau_reading_is_refused():
    with pytest.raises(ValueError, match="plateau"):
        shift.scp(np.ones(10), np.ones(10), plateau="mean")
    with pytest.raises(ConfigError, match="scp_plateau"):
        AlgoConfig(scp_plateau="mean").validate()


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("reading, switch", [("best", 90), ("window", 50)])
def test_the_trainer_uses_the_configured_reading(monkeypatch, reading, switch):
    """A planted validation loss with an upward spike at evaluation 3 and a plateau from 5 on."""
    config = AlgoConfig(width=16, heads=2, steps=200, eval_every=10, eval_samples=16, train_max_len=3,
                        test_lengths=(2,), checkpoints=1, batch_size=16, device="cpu", model="single",
                        scp_window=2, scp_patience=2, scp_delta1=0.05, scp_plateau=reading).validate()
    planted_loss = iter([2.0, 1.5, 1.0, 1.6, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5] + [0.5] * 20)
    real = training.Trainer.evaluate

    def evaluate(self):
        record = real(self)
        record.metrics["val_loss"] = next(planted_loss)
        return record

    monkeypatch.setattr(training.Trainer, "evaluate", evaluate)
    trainer = training.Trainer(config, looped=False)
    list(trainer.run(stop_at_handoff=True))
    # window: val[1] - val[3] = -0.1 < δ1 → plateau at 3 (step 30), switch at 50.
    # best: the best so far falls 1.0 → 0.6 → 0.5 into evaluation 5; evaluations 6, 7 → plateau 7, switch 9.
    assert trainer.handoff.rule == "scp" and trainer.handoff.step == switch
    assert trainer.handoff.plateau_step == switch - 20


def test_the_paper_preset_has_the_papers_values():
    # App. E.2.1: "embedding dimension of 256", "AdamW optimizer with a learning rate of 1e-4",
    # "trained for a total of 50,001 steps".
    config = preset("paper", task="parity")
    assert (config.width, config.lr, config.steps) == (256, 1e-4, 50_001)
    cpu = preset("cpu")
    assert cpu.scp_plateau == "best" and (cpu.scp_window, cpu.scp_patience) == (P, W) == (
        PRESETS["cpu"]["scp_window"], PRESETS["cpu"]["scp_patience"])


def test_cuda_on_a_machine_without_it_is_one_clear_error_before_any_work(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "paper"
    assert main(["algo", "run", "--preset", "paper", "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "CUDA is not available" in err[0]
    assert not out.exists()
