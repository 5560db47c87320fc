import numpy as np
import pandas as pd
import pytest
import torch

from loopviz import shift
from loopviz.__main__ import main
from loopviz.config import ConfigError, RunConfig
from loopviz.runs.execute import execute
from loopviz.runs.format import run_data_from_log
from loopviz.toy.training import Problem, Trainer, prepare, train

BASE = RunConfig(d=3, epochs=14, hessian_every=2)


@pytest.fixture(scope="module")
def single_run():
    return run_data_from_log(execute(BASE.replace(model="single"), workers=0))


def test_stage_one_is_the_stored_single_run_bit_for_bit(single_run, monkeypatch):
    S = 6
    computed = []
    original = Problem.hessian_spectra
    monkeypatch.setattr(Problem, "hessian_spectra", lambda self, thetas, loops: computed.extend(loops)
                        or original(self, thetas, loops))
    log = execute(BASE.replace(model="shift", shift_epoch=S), workers=0, prior=single_run)
    assert log.status == "complete"
    shifted = run_data_from_log(log)
    pd.testing.assert_frame_equal(shifted.records.iloc[:S + 1].drop(columns="phase"),
                                  single_run.records.iloc[:S + 1].drop(columns="phase"))
    np.testing.assert_array_equal(shifted.thetas[:S + 1], single_run.thetas[:S + 1])
    for epoch in (0, 2, 4, 6):
        np.testing.assert_array_equal(log.spectra[epoch], single_run.spectrum_at(epoch))
    assert computed == [3, 3, 3, 3]  # only Stage II's spectra (epochs 8..14) were computed


def test_without_a_stored_single_run_stage_one_is_replayed_identically(single_run):
    S = 4
    log = execute(BASE.replace(model="shift", shift_epoch=S, hessian_every=0), workers=0)
    for record, theta in zip(log.records[:S + 1], single_run.thetas[:S + 1]):
        np.testing.assert_array_equal(record.theta, theta)


def test_the_loop_count_switches_at_shift_epoch_plus_one():
    S = 5
    config = BASE.replace(model="shift", shift_epoch=S, hessian_every=0)
    records = execute(config, workers=0).records
    assert [r.loops for r in records[S - 1:S + 3]] == [1, 1, 3, 3]
    # θ_{S+1} is one Adam step on the *looped* loss from the Single run's state at S.
    problem = prepare(config)
    trainer = Trainer(config.replace(model="single"), problem)
    list(trainer.run(until=S))
    theta = trainer.theta
    trainer.optimizer.step(problem.gradients(theta[None], 3)[0])
    np.testing.assert_array_equal(records[S + 1].theta, theta)


def test_reset_optimizer_changes_stage_two_only():
    keep = execute(BASE.replace(model="shift", shift_epoch=5, hessian_every=0), workers=0).records
    reset = execute(BASE.replace(model="shift", shift_epoch=5, hessian_every=0, reset_optimizer=True),
                    workers=0).records
    np.testing.assert_array_equal(keep[5].theta, reset[5].theta)
    assert not np.array_equal(keep[6].theta, reset[6].theta)


def test_shift_at_the_last_epoch_is_the_single_run_and_at_zero_is_looped():
    single = [r.theta for r in train(BASE.replace(model="single", hessian_every=0))]
    looped = [r.theta for r in train(BASE.replace(model="looped", hessian_every=0))]
    at_end = execute(BASE.replace(model="shift", shift_epoch=BASE.epochs, hessian_every=0), workers=0).records
    at_zero = execute(BASE.replace(model="shift", shift_epoch=0, hessian_every=0), workers=0).records
    np.testing.assert_array_equal(at_end[-1].theta, single[-1])
    np.testing.assert_array_equal(at_zero[-1].theta, looped[-1])


def _scp_curves():
    rng = np.random.default_rng(0)
    epochs = np.arange(400)
    val = 0.6 + 0.5 * np.exp(-epochs / 30) + rng.normal(0, 1e-4, 400)   # flat after ~100
    grad = np.where(epochs < 180, 1.0 + rng.uniform(-0.5, 0.5, 400), 0.2 + rng.uniform(-0.005, 0.005, 400))
    return val, grad


def test_scp_default_is_the_papers_rule_plateau_plus_patience():
    val, grad = _scp_curves()
    plateau, shift_epoch = shift.scp(val, grad, delta1=0.01, plateau_epochs=20, patience=20, delta2=0.1)
    # brute force: the first e with val[e-20] - val[e] < 0.01
    expected = next(e for e in range(20, 400) if val[e - 20] - val[e] < 0.01)
    assert plateau == expected and 80 < plateau < 130
    assert shift_epoch == plateau + 20            # E_shift = E_plateau + W (Sec. 5), whatever the gradient does
    assert shift.scp(val, grad, patience=7) == (plateau, plateau + 7)
    # δ2 is then only a check: here the gradient has not settled yet at E_shift.
    assert shift.gradient_spread(grad, shift_epoch, 20) > 0.1


def test_scp_gradient_option_waits_for_the_gradient_to_settle():
    val, grad = _scp_curves()
    plateau, shift_epoch = shift.scp(val, grad, delta1=0.01, plateau_epochs=20, patience=20, delta2=0.1,
                                     wait="gradient")
    assert shift_epoch == 180 + 19  # the first full window of settled gradients
    assert shift_epoch >= plateau + 20
    assert shift.gradient_spread(grad, shift_epoch, 20) < 0.1 <= shift.gradient_spread(grad, shift_epoch - 1, 20)
    with pytest.raises(ValueError, match="wait"):
        shift.scp(val, grad, wait="later")


def test_scp_without_a_plateau_says_so():
    val = np.linspace(2.0, 0.0, 300)   # falls 0.133 every 20 epochs
    assert shift.scp(val, np.ones(300)) == (None, None)
    assert shift.scp(np.ones(100), np.linspace(1, 5, 100)) == (20, 40)
    plateau, shift_epoch = shift.scp(np.ones(100), np.linspace(1, 5, 100), wait="gradient")
    assert plateau == 20 and shift_epoch is None
    assert shift.scp(np.ones(30), np.ones(30)) == (20, None)   # E_plateau + W lies past the run's end


def test_theorem3_quantities_match_finite_difference_gradients():
    config = RunConfig(d=2)
    problem = prepare(config)
    theta = np.random.default_rng(3).standard_normal(problem.config.d ** 2 * 3 + 6) * 0.5

    def fd_grad(loops):
        h = 1e-6
        out = np.zeros_like(theta)
        for i in range(len(theta)):
            e = np.zeros_like(theta)
            e[i] = h
            out[i] = (problem.loss(torch.as_tensor(theta + e), loops).item()
                      - problem.loss(torch.as_tensor(theta - e), loops).item()) / (2 * h)
        return out

    g1, g2 = fd_grad(1), fd_grad(3)
    got = shift.gradient_alignment(problem, theta, 3)
    for name, block in (("K", slice(0, 4)), ("Q", slice(4, 8))):
        assert got[f"inner_{name}"] == pytest.approx(g1[block] @ g2[block], rel=1e-6, abs=1e-10)
        cos = g1[block] @ g2[block] / np.linalg.norm(g1[block]) / np.linalg.norm(g2[block])
        assert got[f"cos_{name}"] == pytest.approx(cos, rel=1e-6)


def test_assumption4_distance_of_known_matrices():
    d = 2
    W_K = np.diag([1.0, 2.0])
    W_Q = np.array([[1.0, 0.5], [0.5, -1.0]])
    W_V = np.eye(2)
    theta = np.concatenate([W_K.ravel(), W_Q.ravel(), W_V.ravel(), np.zeros(6)])
    out = shift.assumption4_distance(theta, d)
    assert out["offdiag_ratio_K"] == 0.0 and out["negative_diag_K"] == 0.0
    assert out["offdiag_ratio_Q"] == pytest.approx(0.5) and out["negative_diag_Q"] == 0.5


def test_speedup():
    assert shift.speedup(2.0, 1.6) == pytest.approx(1.25)


def test_shift_epoch_outside_the_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="shift_epoch must be in"):
        RunConfig(model="shift", epochs=10, shift_epoch=11).validate()
    assert main(["run", "--model", "shift", "--epochs", "10", "--shift-epoch", "20", "--out", str(tmp_path / "o")]) == 2
    assert "shift_epoch must be in [0, epochs = 10]" in capsys.readouterr().err


def test_cli_shift_reuses_the_single_run_of_the_same_invocation(tmp_path):
    out = tmp_path / "o"
    assert main(["run", "--model", "single,shift", "--d", "3", "--epochs", "8", "--shift-epoch", "3",
                 "--hessian-every", "2", "--workers", "0", "--out", str(out)]) == 0
    a = pd.read_csv(out / "single" / "records.csv")
    b = pd.read_csv(out / "shift" / "records.csv")
    pd.testing.assert_frame_equal(a.iloc[:4].drop(columns="phase"), b.iloc[:4].drop(columns="phase"))
    assert list(b["loops"]) == [1, 1, 1, 1, 3, 3, 3, 3, 3]


def test_sweep_shift_on_a_tiny_grid(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    assert main(["sweep-shift", "--d", "2", "--epochs", "10", "--shift-epochs", "0,5,10", "--repeats", "2",
                 "--workers", "1", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["shift_epoch"]) == [0, 5, 10]
    np.testing.assert_allclose(table["speedup"], table["looped_seconds"] / table["seconds"])
    raw = pd.read_csv(str(out) + ".raw.csv")
    assert len(raw) == 8 and "best speed-up" in capsys.readouterr().out
    shift_rows = raw[raw["model"] == "shift"]
    np.testing.assert_allclose(table["seconds"], shift_rows.groupby("shift_epoch")["seconds"].median().to_numpy())
    assert list(table["repeats"]) == [2, 2, 2]
    assert main(["sweep-shift", "--epochs", "10", "--shift-epochs", "0,50", "--out", str(tmp_path / "b.csv")]) == 2


def test_an_interrupted_shift_sweep_keeps_the_points_finished(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "sweep.csv"
    raw = tmp_path / "sweep.csv.raw.csv"
    proc = subprocess.Popen([sys.executable, "-m", "loopviz", "sweep-shift", "--d", "3", "--epochs", "400",
                             "--shift-epochs", ",".join(str(s) for s in range(0, 400, 20)), "--repeats", "3",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), os.setpgrp()))
    def comparable() -> bool:
        """≥ 3 rows kept, a pure Looped and a SHIFT run among them: a summary can be written.
        (Points finish in any order on the workers; an interrupt before both models are in is
        test_a_shift_sweep_interrupted_before_any_comparison_exits_as_interrupted's case.)"""
        try:
            rows = pd.read_csv(raw)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):  # absent or being written
            return False
        return len(rows) >= 3 and {"looped", "shift"} <= set(rows.get("model", ()))

    deadline = time.time() + 120
    while time.time() < deadline and not comparable():
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the workers too
    _, err = proc.communicate(timeout=60)
    kept = pd.read_csv(raw)
    assert 3 <= len(kept) < 63, err
    assert "interrupted: keeping the" in err
    assert proc.returncode == 130, err
    assert len(pd.read_csv(out)) >= 1


def test_a_stage_one_that_diverges_never_starts_stage_two(monkeypatch):
    # Single-Attn does not diverge at any valid setting, so Stage I's end is forged as NaN.
    import loopviz.runs.execute as pipeline
    config = BASE.replace(model="shift", shift_epoch=3, hessian_every=0)
    real_stage_one = pipeline.stage_one

    def no_stage_two(self, *args, **kwargs):
        raise AssertionError("Stage II trained after a diverged Stage I")
        yield

    def diverging_stage_one(*args):
        records, state, spectra = real_stage_one(*args)
        records[-1].metrics["loss"] = float("nan")
        monkeypatch.setattr(pipeline.Trainer, "run", no_stage_two)  # from here on, training is Stage II
        return records, state, spectra

    monkeypatch.setattr(pipeline, "stage_one", diverging_stage_one)
    log = execute(config, workers=0)
    assert log.status == "diverged" and log.diverged_epoch == 3
    assert [r.loops for r in log.records] == [1, 1, 1, 1]


def test_switch_jump_is_both_losses_at_the_same_weights(single_run):
    from tests import reference

    problem = prepare(BASE)
    theta = single_run.thetas[6]
    jump = shift.switch_jump(problem, theta, BASE.loops)
    t = single_run.task
    for name, loops in (("single", 1), ("looped", BASE.loops)):
        expected = reference.mean_cross_entropy(theta, BASE.d, t["token_embedding"], t["position_embedding"],
                                                t["train_inputs"], t["train_targets"], loops)
        assert jump[f"{name}_loss"] == pytest.approx(expected, rel=1e-10)
    assert jump["single_loss"] == pytest.approx(single_run.records["loss"].iloc[6], rel=1e-10)
    assert jump["single_grad_norm"] == pytest.approx(single_run.records["grad_norm"].iloc[6], rel=1e-8)
    assert jump["chance_loss"] == pytest.approx(np.log(3))


def test_theorem3_table_in_one_pass_is_each_weight_alone():
    """theorem3_table takes all gradients on the run axis at once; each row is what
    gradient_alignment gives for its θ alone, bit for bit."""
    config = RunConfig(d=4)
    problem = prepare(config)
    thetas = np.random.default_rng(8).normal(0, 0.4, (5, 60))
    table = shift.theorem3_table(problem, np.arange(5), thetas, 3)
    for i, theta in enumerate(thetas):
        for key, value in shift.gradient_alignment(problem, theta, 3).items():
            assert table[key][i] == value


def test_a_shift_sweep_interrupted_before_any_comparison_exits_as_interrupted(tmp_path, monkeypatch, capsys):
    """Ctrl-C before a pure Looped and a SHIFT run have both finished is still Ctrl-C (130, the
    rows kept for a rerun), not a failure; without the interrupt it is one error line (1)."""
    from loopviz import sweeps

    only_looped = pd.DataFrame({"model": ["looped"], "shift_epoch": [0]})
    for interrupted, code, said in ((True, 130, "no summary yet"), (False, 1, "error: too few runs")):
        monkeypatch.setattr(sweeps, "sweep", lambda *a, interrupted=interrupted, **k: (only_looped, interrupted, 0))
        assert main(["sweep-shift", "--epochs", "10", "--shift-epochs", "0,5", "--serial",
                     "--out", str(tmp_path / f"s{code}.csv")]) == code
        assert said in capsys.readouterr().err
