"""loopviz.toy.optim: bit for bit torch.optim (the peer, used only here), and no torch._dynamo on the default run."""
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
    return torch.as_tensor(g)


def _run_both(ours_cls, peer, shape, steps=1200, seed=0, **kwargs):
    """Step ours and torch's peer on the same θ and gradients; return both trajectories' last θ and states."""
    init = torch.as_tensor(np.random.default_rng(seed + 1).standard_normal(shape))
    a, b = init.clone().requires_grad_(True), init.clone().requires_grad_(True)
    ours, theirs = ours_cls(a, **kwargs), peer([b], **kwargs)
    for i, g in enumerate(_gradients(shape, steps, seed)):
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
        if i % 97 == 0:   # bit for bit all along, not only at the end
            assert torch.equal(a, b), f"step {i + 1}"
    return a, b, ours, theirs


@pytest.mark.parametrize("shape", [(60,), (7, 60)], ids=["P", "RxP"])
@pytest.mark.parametrize("lr", [1e-3, 0.3])
def test_adam_is_torchs_adam_bit_for_bit(shape, lr):
    a, b, ours, theirs = _run_both(Adam, torch.optim.Adam, shape, lr=lr)
    assert torch.equal(a, b)
    mine, peer = ours.state[a], theirs.state[b]
    assert set(mine) == set(peer)
    for key in peer:
        assert mine[key].dtype == peer[key].dtype and mine[key].device == peer[key].device
        assert torch.equal(mine[key], peer[key]), key
    assert float(mine["step"]) == 1200


def test_adam_resumes_from_torchs_state_dict():
    """Our state_dict's state has torch's layout: loading torch's continues its run bit for bit."""
    shape, lr = (60,), 0.01
    a, b, ours, theirs = _run_both(Adam, torch.optim.Adam, shape, steps=300, lr=lr)
    a2 = b.detach().clone().requires_grad_(True)
    ours2 = Adam(a2, lr=lr)
    ours2.load_state_dict(theirs.state_dict())
    assert ours.state_dict()["param_groups"][0].items() <= theirs.state_dict()["param_groups"][0].items()
    for g in _gradients(shape, 200, seed=5):
        for theta, opt in ((b, theirs), (a2, ours2)):
            theta.grad = g.clone()
            opt.step()
    assert torch.equal(a2, b)
    # loading copies: the source optimiser's moments are not shared with the loaded one
    assert ours2.state[a2]["exp_avg"].data_ptr() != theirs.state[b]["exp_avg"].data_ptr()


def test_adam_skips_a_missing_gradient_and_zero_grad_clears_it():
    theta = torch.ones(5, dtype=torch.float64, requires_grad=True)
    opt = Adam(theta, lr=0.1)
    opt.step()
    assert torch.equal(theta, torch.ones(5, dtype=torch.float64)) and not opt.state
    theta.grad = torch.ones(5, dtype=torch.float64)
    opt.step()
    assert not torch.equal(theta, torch.ones(5, dtype=torch.float64))
    opt.zero_grad(set_to_none=True)
    assert theta.grad is None


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("shape", [(60,), (7, 60)], ids=["P", "RxP"])
def test_sgd_is_torchs_sgd_bit_for_bit(shape, momentum):
    a, b, ours, theirs = _run_both(SGD, torch.optim.SGD, shape, lr=1e-3, momentum=momentum)
    assert torch.equal(a, b)
    if momentum:
        assert torch.equal(ours.state[a]["momentum_buffer"], theirs.state[b]["momentum_buffer"])


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_a_toy_run_leaves_torch_dynamo_unloaded(optimizer):
    """torch.optim imports torch._dynamo (~1 s, ~70 MB); a toy run (and a batched seed sweep)
    must not, whatever the optimiser."""
    code = (
        "import sys\n"
        "from loopviz.config import RunConfig\n"
        "from loopviz.runs.execute import execute\n"
        "from loopviz.toy.batched import final_metrics_many\n"
        f"config = RunConfig(d=4, epochs=3, optimizer={optimizer!r})\n"
        "log = execute(config, workers=0)\n"
        "assert log.status == 'complete', log.status\n"
        "final_metrics_many([config.replace(seed=s, hessian_every=0) for s in (1, 2)])\n"
        "print('torch._dynamo' in sys.modules, 'torch.optim' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False", "torch._dynamo was imported by a default toy run"
