"""Adam and SGD on one weight tensor θ, written out in torch ops.

Why not torch.optim: constructing any torch.optim optimiser imports torch._dynamo
(measured: ~1 s of CPU and ~70 MB, as much as `import torch` itself), and each of its
steps on a 60-entry θ costs ~44 µs of dispatch. A toy run trains one flat θ, so these
classes carry only what it needs, with the very ops, in the very order, of torch's
single-tensor kernels (torch/optim/adam.py `_single_tensor_adam`, sgd.py
`_single_tensor_sgd`, the kernels torch runs on the CPU): every step is bit for bit
torch's (tests/test_optim.py checks 1000+ steps against torch.optim as the peer). On a
GPU torch.optim would pick its foreach kernels instead: the same formula, not checked
bit for bit there.

Their state_dict has torch's layout ({"state": {0: {...}}, "param_groups": [...]}), so
a stored state resumes exactly as a torch one (training.adam_state, SHIFT's Stage II).
"""
from __future__ import annotations

import torch

BETAS = (0.9, 0.999)   # torch's defaults, the paper's Adam (App. E.1.1)
EPS = 1e-8


class _OneTensorOptimizer:
    """What Trainer uses of a torch optimiser: step, zero_grad, state[θ], state_dict, load_state_dict."""

    def __init__(self, theta: torch.Tensor, **group):
        self.theta = theta
        self.group = group
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.theta.grad = None

    def state_dict(self) -> dict:
        state = {0: dict(self.state[self.theta])} if self.theta in self.state else {}
        return {"state": state, "param_groups": [{**self.group, "params": [0]}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Moments are copied onto θ's device and dtype; Adam's step stays a float32 CPU tensor, as in torch."""
        saved = state_dict["state"].get(0)
        self.state = {} if not saved else {self.theta: {
            key: value.clone() if key == "step" else value.to(self.theta.device, self.theta.dtype, copy=True)
            for key, value in saved.items()}}


class Adam(_OneTensorOptimizer):
    r"""Adam (Kingma & Ba) with torch's defaults β = (0.9, 0.999), ε = 1e-8, no weight decay.

    With g the gradient and t the step count (from 1):

        m ← m + (1 − β₁)(g − m)                     (exp_avg.lerp_)
        v ← β₂ v + (1 − β₂) g²                       (exp_avg_sq.mul_.addcmul_)
        θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)

    t is kept as a float32 tensor and read back as a Python float, and the bias
    corrections are Python floats, exactly as in torch's `_single_tensor_adam`.
    Elementwise, so one Adam over stacked runs' θ [R, P] is R independent Adams.
    """

    def __init__(self, theta: torch.Tensor, lr: float):
        super().__init__(theta, lr=lr, betas=BETAS, eps=EPS)

    def step(self) -> None:
        grad = self.theta.grad
        if grad is None:
            return
        beta1, beta2 = BETAS
        lr = self.group["lr"]
        state = self.state.get(self.theta)
        if state is None:
            state = self.state[self.theta] = {"step": torch.tensor(0.0, dtype=torch.float32),
                                              "exp_avg": torch.zeros_like(self.theta),
                                              "exp_avg_sq": torch.zeros_like(self.theta)}
        with torch.no_grad():
            state["step"] += 1
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = state["step"].item()
            bias_correction1 = 1 - beta1 ** step
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
            self.theta.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))


class SGD(_OneTensorOptimizer):
    r"""SGD with heavy-ball momentum μ (torch's form, no dampening): b ← μ b + g (b = g at the
    first step), θ ← θ − lr · b; with μ = 0, θ ← θ − lr · g. Ops as torch's `_single_tensor_sgd`."""

    def __init__(self, theta: torch.Tensor, lr: float, momentum: float = 0.0):
        super().__init__(theta, lr=lr, momentum=momentum)

    def step(self) -> None:
        grad = self.theta.grad
        if grad is None:
            return
        momentum = self.group["momentum"]
        with torch.no_grad():
            if momentum != 0:
                state = self.state.setdefault(self.theta, {})
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.detach().clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(grad, alpha=1)
                grad = state["momentum_buffer"]
            self.theta.add_(grad, alpha=-self.group["lr"])
