"""loopviz.toy.optim against torch.optim (the peer, used only here): every step to ~1 ulp
(torch's CPU kernels fuse multiply-adds and use a vectorised sqrt, numpy cannot, so not bit for
bit), states in torch's layout, rows of a stacked θ independent, and no torch on the default run."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from loopviz.toy.optim import SGD, Adam


def _gradients(shape, steps, seed):
    """Random gradients over several magnitudes (and a few exact zeros), float64."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-6, 2, size=(steps, 1) + (1,) * (len(shape) - 1))
    g = rng.standard_normal((steps, *shape)) * scale
    g[rng.random(g.shape) < 0.01] = 0.0
    return g


def _close(ours, theirs, rtol):
    theirs = np.asarray(theirs)
    return np.abs(ours - theirs).max() <= rtol * np.abs(theirs).max()


def _run_both(ours_cls, peer, shape, steps=1200, seed=0, **kwargs):
    """Step ours and torch's peer on the same gradients, each step from torch's state: one step
    agrees to 1e-14 relative (θ and state), and the whole trajectories to 1e-13."""
    init = np.random.default_rng(seed + 1).standard_normal(shape)
    a, b = init.copy(), torch.tensor(init, requires_grad=True)
    ours, theirs = ours_cls(a, **kwargs), peer([b], **kwargs)
    for g in _gradients(shape, steps, seed):
        one = ours_cls(b.detach().numpy().copy(), **kwargs)     # one step from torch's current state
        one.load_state_dict(theirs.state_dict())
        one.step(g)
        ours.step(g)
        b.grad = torch.as_tensor(g.copy())
        theirs.step()
        assert _close(one.theta, b.detach(), 1e-14)
        for key, value in theirs.state[b].items():
            if key != "step":
                assert _close(one.state[key], value, 1e-14), key
        assert _close(a, b.detach(), 1e-13)
    return a, b, ours, theirs


@pytest.mark.parametrize("shape", [(60,), (7, 60)], ids=["P", "RxP"])
@pytest.mark.parametrize("lr", [1e-3, 0.3])
def test_adam_is_torchs_adam_to_round_off(shape, lr):
    a, b, ours, theirs = _run_both(Adam, torch.optim.Adam, shape, lr=lr)
    mine, peer = ours.state, theirs.state[b]
    assert set(mine) == set(peer)
    for key in ("exp_avg", "exp_avg_sq"):
        assert mine[key].dtype == np.float64 and _close(mine[key], peer[key], 1e-13), key
    assert mine["step"] == float(peer["step"]) == 1200


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("shape", [(60,), (7, 60)], ids=["P", "RxP"])
def test_sgd_is_torchs_sgd_to_round_off(shape, momentum):
    a, b, ours, theirs = _run_both(SGD, torch.optim.SGD, shape, lr=1e-3, momentum=momentum)
    if momentum:
        assert _close(ours.state["momentum_buffer"], theirs.state[b]["momentum_buffer"], 1e-13)


@pytest.mark.parametrize("cls, kwargs", [(Adam, dict(lr=0.01)), (SGD, dict(lr=0.01, momentum=0.9))])
def test_stacked_rows_are_each_run_alone_bit_for_bit(cls, kwargs):
    """Elementwise: row r of an optimiser over θ [R, P] is the optimiser over θ_r alone."""
    init = np.random.default_rng(3).standard_normal((5, 60))
    grads = _gradients((5, 60), 300, seed=4)
    stacked = cls(init.copy(), **kwargs)
    alone = [cls(init[r].copy(), **kwargs) for r in range(5)]
    for g in grads:
        stacked.step(g)
        for r, opt in enumerate(alone):
            opt.step(g[r])
    for r, opt in enumerate(alone):
        np.testing.assert_array_equal(stacked.theta[r], opt.theta)


def test_adam_resumes_from_its_own_and_torchs_state_dict():
    """Our state_dict has torch's layout: reloading ours continues bit for bit, and loading
    torch's continues its run (to round-off); loading copies."""
    shape, lr = (60,), 0.01
    a, b, ours, theirs = _run_both(Adam, torch.optim.Adam, shape, steps=300, lr=lr)
    assert ours.state_dict()["param_groups"][0].items() <= theirs.state_dict()["param_groups"][0].items()
    again = Adam(a.copy(), lr=lr)
    again.load_state_dict(ours.state_dict())
    from_torch = Adam(b.detach().numpy().copy(), lr=lr)
    from_torch.load_state_dict(theirs.state_dict())
    for g in _gradients(shape, 200, seed=5):
        for opt in (ours, again, from_torch):
            opt.step(g)
        b.grad = torch.as_tensor(g.copy())
        theirs.step()
    np.testing.assert_array_equal(again.theta, ours.theta)
    assert _close(from_torch.theta, b.detach(), 1e-13)
    assert again.state["exp_avg"] is not ours.state["exp_avg"]
    assert not np.shares_memory(again.state["exp_avg"], ours.state["exp_avg"])


def test_the_first_adam_step_is_lr_times_the_sign():
    """At t = 1, m̂ = g and √v̂ = |g|: θ moves by lr against each nonzero component (ε aside)."""
    theta = np.zeros(4)
    Adam(theta, lr=0.1).step(np.array([3.0, -2e-3, 0.0, 5e3]))
    np.testing.assert_allclose(theta, [-0.1, 0.1, 0.0, -0.1], rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_a_toy_run_leaves_torch_unloaded(optimizer):
    """A toy run on the CPU (and a batched seed sweep) trains in numpy: torch is never imported,
    whatever the optimiser."""
    code = (
        "import sys\n"
        "from loopviz.config import RunConfig\n"
        "from loopviz.runs.execute import execute\n"
        "from loopviz.toy.batched import final_metrics_many\n"
        f"config = RunConfig(d=4, epochs=3, optimizer={optimizer!r}, device='cpu')\n"
        "log = execute(config, workers=0)\n"
        "assert log.status == 'complete', log.status\n"
        "final_metrics_many([config.replace(seed=s, hessian_every=0) for s in (1, 2)])\n"
        "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False", "torch was imported by a toy run on the CPU"
