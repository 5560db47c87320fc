"""Landscape instruments against independent computations: the plane loss against the
model's loss per sample, Adam's state against the Trainer's own optimiser, the
preconditioned sharpness against dense eigen-solves, block spectra against Hessians of
the loss restricted to one weight matrix."""
from pathlib import Path

import numpy as np
import pytest
import torch

from loopviz import landscape as L
from loopviz.config import RunConfig
from loopviz.runs.format import read_run
from loopviz.toy import models
from loopviz.toy import training
from loopviz.toy.training import Trainer, prepare

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "default"


@pytest.fixture(scope="module")
def runs():
    return {m: read_run(ASSETS / m) for m in ("single", "looped", "shift")}


def per_sample_loss(theta: np.ndarray, task: dict, loops: int) -> float:
    """Mean cross-entropy over the 500 stored training rows, one row at a time (no count tables)."""
    token = torch.as_tensor(task["token_embedding"])
    position = torch.as_tensor(task["position_embedding"])
    E0 = models.embed(torch.as_tensor(task["train_inputs"]), token, position)
    out = models.logits(torch.as_tensor(theta), E0, loops)
    return float(torch.nn.functional.cross_entropy(out, torch.as_tensor(task["train_targets"])))


def test_plane_loss_equals_the_models_loss_at_sampled_points(runs):
    single, looped = runs["single"], runs["looped"]
    plane = L.endpoint_plane(single.thetas[0], single.thetas[-1], looped.thetas[-1])
    coords = [plane.coords(r.thetas) for r in runs.values()]
    alpha, beta = L.plane_axes(coords, 9)
    problem = prepare(looped.config)
    rng = np.random.default_rng(0)
    for loops in (1, 3):
        z = L.plane_loss(L.batched_loss(problem, loops),
                         plane, alpha, beta)
        for j, i in rng.integers(0, 9, size=(4, 2)):
            theta = plane.origin + alpha[i] * plane.basis[0] + beta[j] * plane.basis[1]
            assert z[j, i] == pytest.approx(per_sample_loss(theta, looped.task, loops), rel=1e-12)


def test_the_endpoint_plane_holds_its_three_points_and_their_recorded_losses(runs):
    single, looped = runs["single"], runs["looped"]
    plane = L.endpoint_plane(single.thetas[0], single.thetas[-1], looped.thetas[-1])
    assert np.allclose(plane.basis @ plane.basis.T, np.eye(2), atol=1e-12)
    points = np.stack([single.thetas[0], single.thetas[-1], looped.thetas[-1]])
    assert plane.residual(points).max() < 1e-12
    (a, b), problem = plane.coords(single.thetas[-1])[0], prepare(single.config)
    z = L.plane_loss(L.batched_loss(problem, 1), plane, np.array([a]), np.array([b]))
    assert z[0, 0] == pytest.approx(single.records["loss"].iloc[-1], rel=1e-12)
    with pytest.raises(ValueError, match="collinear"):
        L.endpoint_plane(points[0], points[1], 2 * points[1] - points[0])


def test_pca_plane_captures_the_top_two_eigenvalues_share_and_beats_any_other_plane(runs):
    trajectories = [r.thetas for r in runs.values()]
    pooled = np.concatenate(trajectories)
    cov_eig = np.linalg.eigvalsh(np.cov(pooled.T))
    pca = L.pca_plane(trajectories)
    assert L.variance_captured(pca, trajectories) == pytest.approx(cov_eig[-2:].sum() / cov_eig.sum(), rel=1e-10)
    ends = L.endpoint_plane(pooled[0], runs["single"].thetas[-1], runs["looped"].thetas[-1])
    assert L.variance_captured(ends, trajectories) < L.variance_captured(pca, trajectories)
    # points planted in a plane: both planes through them capture everything
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((60, 2)))[0].T
    planted = [rng.standard_normal((50, 2)) @ basis + 3.0]
    assert L.variance_captured(L.pca_plane(planted), planted) == pytest.approx(1.0, abs=1e-12)
    assert L.variance_captured(L.endpoint_plane(*planted[0][:3]), planted) == pytest.approx(1.0, abs=1e-12)
    noise = [rng.standard_normal((400, 60))]   # isotropic noise: no plane holds much of it
    assert L.variance_captured(L.pca_plane(noise), noise) < 0.15


@pytest.mark.parametrize("model,reset", [("looped", False), ("shift", False), ("shift", True)])
def test_adam_state_from_stored_weights_matches_the_trainers_optimiser(model, reset):
    config = RunConfig(model=model, d=2, epochs=12, shift_epoch=5, reset_optimizer=reset, lr=0.01)
    trainer = Trainer(config)
    thetas, v_replay, steps = [trainer.theta.copy()], [], []
    for _ in range(config.epochs):
        trainer.step_epoch()
        state = trainer.optimizer.state
        v_replay.append(state["exp_avg_sq"].copy())
        steps.append(int(state["step"]))
        thetas.append(trainer.theta.copy())
    thetas = np.stack(thetas)
    states = L.run_adam_states(trainer.problem, config, thetas, np.arange(len(thetas)))
    assert np.allclose(states.v[:-1], np.stack(v_replay), rtol=1e-12, atol=0)
    assert list(states.step[:-1]) == steps
    assert np.allclose(L.adam_steps(states, config.lr)[:-1], np.diff(thetas, axis=0), rtol=1e-9, atol=1e-18)


def test_adam_state_refuses_minibatch_runs_and_gaps(runs):
    looped = runs["looped"]
    problem = prepare(looped.config)
    with pytest.raises(ValueError, match="full-batch"):
        L.run_adam_states(problem, looped.config.replace(batch_size=32), looped.thetas, looped.weight_epochs)
    with pytest.raises(ValueError, match="every epoch"):
        L.run_adam_states(problem, looped.config, looped.thetas[::2], looped.weight_epochs[::2])


def test_bundled_adam_steps_reproduce_the_stored_weights(runs):
    for run in runs.values():
        states = L.run_adam_states(prepare(run.config), run.config, run.thetas, run.weight_epochs)
        assert np.abs(L.adam_steps(states, run.config.lr)[:-1] - np.diff(run.thetas, axis=0)).max() < 1e-14


def test_precond_lambda_max_against_dense_eigen_solves():
    rng = np.random.default_rng(2)
    for _ in range(5):
        A = rng.standard_normal((12, 12))
        H = A + A.T
        p = rng.uniform(0.01, 3.0, 12)
        root = 1 / np.sqrt(p)
        symmetrised = np.linalg.eigvalsh(root[:, None] * H * root[None, :])[-1]
        general = np.linalg.eigvals(H / p[:, None]).real.max()
        assert L.precond_lambda_max(H, p) == pytest.approx(symmetrised, rel=1e-10)
        assert L.precond_lambda_max(H, p) == pytest.approx(general, rel=1e-8)
    h, p = np.array([4.0, 1.0, -3.0]), np.array([0.5, 0.01, 1.0])   # diagonal: max h_i / p_i
    assert L.precond_lambda_max(np.diag(h), p) == pytest.approx(100.0)


def test_adam_preconditioner_and_thresholds():
    assert L.adam_threshold(1e-3) == pytest.approx(38_000)
    assert L.gd_threshold(1e-3) == pytest.approx(2_000)
    v, t = np.array([4e-6, 0.0]), 3
    expected = (1 - 0.9 ** 3) * (np.sqrt(v / (1 - 0.999 ** 3)) + 1e-8)
    assert np.allclose(L.adam_preconditioner(v, t), expected, rtol=1e-15)


def test_block_spectra_against_hessians_of_the_loss_restricted_to_one_block(runs):
    looped = runs["looped"]
    problem, d = prepare(looped.config), looped.config.d
    theta = torch.as_tensor(looped.thetas[400])
    full = L.run_hessians(problem, looped.config, looped.thetas[[400]], np.array([400]))[0]
    spectra = L.block_spectra(full, d)
    slices = L.block_slices(d)
    for name, s in slices.items():
        def restricted(block, s=s):
            return problem.loss(torch.cat([theta[:s.start], block, theta[s.stop:]]), 3)
        H_block = torch.autograd.functional.hessian(restricted, theta[s].clone()).numpy()
        assert np.allclose(spectra.eigenvalues[name], np.linalg.eigvalsh(H_block), rtol=1e-9, atol=1e-10)
        assert spectra.eigenvalues[name][-1] <= np.linalg.eigvalsh(full)[-1] + 1e-9   # interlacing
    k, v = slices["W_K"], slices["W_V"]
    def grad_k(block_v):  # ∂L/∂W_K as a function of W_V: its Jacobian is the (K, V) block
        t = torch.cat([theta[:v.start], block_v, theta[v.stop:]]).requires_grad_(True)
        return torch.autograd.grad(problem.loss(t, 3), t, create_graph=True)[0][k]
    cross = torch.autograd.functional.jacobian(grad_k, theta[v].clone()).numpy()
    assert spectra.coupling[0, 2] == pytest.approx(np.linalg.norm(cross), rel=1e-9)
    assert L.block_spectra(np.diag(np.arange(60.0)), d).coupling_share == 0.0
    # softmax ignores a vector added to every row of W_h: its block has d zero eigenvalues
    w_h = spectra.eigenvalues["W_h"]
    assert np.sum(np.abs(w_h) < 1e-10 * np.abs(w_h).max()) == d


def test_curvature_series_lambda_max_matches_the_stored_spectra(runs):
    looped = runs["looped"]
    problem, pick = prepare(looped.config), np.array([0, 150, 600])
    states = L.run_adam_states(problem, looped.config, looped.thetas, looped.weight_epochs)
    hessians = L.run_hessians(problem, looped.config, looped.thetas[pick], pick)
    series = L.curvature_series(pick, hessians, L.adam_preconditioner(states.v[pick], states.step[pick]), 4)
    assert np.allclose(series.lambda_max, looped.eigenvalues[pick, -1], rtol=1e-10)
    assert np.all(series.precond_lambda_max > series.lambda_max)   # P < 1 elementwise here: Adam sharpens


def test_run_curvature_series_keeps_the_strided_last_and_extra_epochs(runs):
    shifted = runs["shift"]
    switch = shifted.config.shift_epoch   # the bundled SHIFT run's switch (SCP's epoch)
    series, check = L.run_curvature_series(prepare(shifted.config), shifted.config, shifted.thetas,
                                           shifted.weight_epochs, 300, (switch, switch + 1, 9999))
    last = int(shifted.weight_epochs[-1])   # the bundled horizon
    assert list(series.epochs) == sorted({*range(0, last + 1, 300), last, switch, switch + 1})
    assert check < 1e-14
    # the step leaving the switch epoch descends Looped's loss from Single's weights: far sharper
    # than the stored spectrum of that epoch, which is Single's loss there
    assert series.lambda_max[1] > 10 * shifted.eigenvalues[switch, -1]


def test_the_entry_points_by_configuration_equal_the_problem_ones(runs):
    """What the Landscape page calls (by config JSON, torch loaded inside) is the science on the problem."""
    single, looped, shifted = runs["single"], runs["looped"], runs["shift"]
    trajectories = {"Single-Attn": single.thetas, "Looped-Attn": looped.thetas}
    got = L.surface_view_of(looped.config.to_json(), trajectories, "endpoints", 5)
    want = L.surface_view(prepare(looped.config), trajectories, "endpoints", 5, (1, looped.config.loops),
                          ("Single-Attn", "Looped-Attn"))
    assert got.loss.keys() == want.loss.keys() == {1, looped.config.loops}
    for T in want.loss:
        np.testing.assert_array_equal(got.loss[T], want.loss[T])
    blocks = L.block_spectra_of(looped.config.to_json(), looped.thetas[400], 400)
    full = L.run_hessians(prepare(looped.config), looped.config, looped.thetas[[400]], np.array([400]))[0]
    for name, values in L.block_spectra(full, looped.config.d).eigenvalues.items():
        np.testing.assert_array_equal(blocks.eigenvalues[name], values)
    events = L.event_epochs(shifted)
    assert events == (int(shifted.spectrum_epochs[np.argmax(shifted.eigenvalues[:, -1])]),
                      shifted.config.shift_epoch, shifted.config.shift_epoch + 1)
    assert len(L.event_epochs(single)) == 1   # no switch: the peak only
    series, check = L.curvature_series_of(shifted.config.to_json(), shifted.thetas, shifted.weight_epochs, 300, events)
    want_series, want_check = L.run_curvature_series(prepare(shifted.config), shifted.config, shifted.thetas,
                                                     shifted.weight_epochs, 300, events)
    np.testing.assert_array_equal(series.epochs, want_series.epochs)
    np.testing.assert_array_equal(series.precond_lambda_max, want_series.precond_lambda_max)
    assert check == want_check



def test_the_landscape_adam_constants_are_the_trainers():
    from loopviz.toy import optim
    assert (L.ADAM_BETA1, L.ADAM_BETA2) == optim.BETAS and L.ADAM_EPS == optim.EPS


@pytest.mark.parametrize("model", ["single", "looped", "shift"])
def test_run_hessians_and_gradients_equal_autograd_per_theta(model):
    """The Landscape's Hessians (toy/hessian.py's closed form) and gradients (one backward over
    a run axis) against torch.func on each θ alone, across a SHIFT switch's loop counts."""
    from loopviz.curvature import exact_hessian

    config = RunConfig(model=model, d=4, loops=3, epochs=6, shift_epoch=2)
    problem = prepare(config)
    rng = np.random.default_rng(5)
    thetas = rng.normal(0, 0.3, (6, models.param_count(config.d)))
    epochs = np.arange(6)
    loops = L.step_loops(config, epochs)
    hessians, grads = L.run_hessians(problem, config, thetas, epochs), L.run_gradients(problem, config, thetas, epochs)
    for theta, T, H, g in zip(thetas, loops, hessians, grads):
        t = torch.as_tensor(theta, dtype=torch.float64)
        want_H = exact_hessian(lambda p, T=int(T): problem.loss(p, T), t).numpy()
        want_g = torch.func.grad(lambda p, T=int(T): problem.loss(p, T))(t).numpy()
        assert np.abs(H - want_H).max() <= 1e-12 * np.abs(want_H).max()
        assert np.abs(g - want_g).max() <= 1e-14 * max(1.0, np.abs(want_g).max())


def test_a_plane_in_slices_is_the_plane_at_once(monkeypatch):
    """batched_loss evaluates RUNS_PER_PASS points a call; the slicing changes no number (each
    point is its own row of the run axis)."""
    problem = prepare(RunConfig(d=4))
    thetas = np.random.default_rng(2).normal(0, 0.4, (23, 60))
    whole = L.batched_loss(problem, 3)(thetas)
    monkeypatch.setattr(training, "RUNS_PER_PASS", 5)
    assert np.array_equal(L.batched_loss(problem, 3)(thetas), whole)
