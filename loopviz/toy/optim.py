"""Adam and SGD on one weight array θ ([P], or [R, P]: R runs side by side), in numpy.

Why not torch.optim: a toy run trains one flat θ of ~60 numbers, where torch's per-op
dispatch (and torch.optim's import of torch._dynamo, ~1 s) costs far more than the
arithmetic. These classes carry only what the toy needs: the formulas of torch's
single-tensor kernels (torch/optim/adam.py `_single_tensor_adam`, sgd.py
`_single_tensor_sgd`), op for op and in the same order. Not bit for bit: torch's CPU
kernels fuse some of these ops (lerp_ and add_(alpha) are fused multiply-adds, and its
vectorised sqrt is not always correctly rounded), which numpy cannot; each step agrees with
torch.optim's to ~1 ulp (tests/test_optim.py checks 1000+ steps against torch.optim as the
peer, ≤ 1e-14 relative). Every op is elementwise, so one optimiser over R stacked runs'
θ [R, P] is R independent optimisers, each row bit for bit that run's alone.

Their state_dict has torch's layout ({"state": {0: {...}}, "param_groups": [...]}) with
numpy arrays; load_state_dict also takes torch's own (tensors are copied into numpy), so a
stored state resumes exactly (training.adam_state, SHIFT's Stage II).
"""
from __future__ import annotations

import numpy as np

BETAS = (0.9, 0.999)   # torch's defaults, the paper's Adam (App. E.1.1)
EPS = 1e-8


class _OneArrayOptimizer:
    """What Trainer uses of a torch optimiser: step(grad), state, state_dict, load_state_dict."""

    def __init__(self, theta: np.ndarray, **group):
        self.theta = theta          # updated in place
        self.group = group
        self.state: dict[str, np.ndarray | float] = {}

    def state_dict(self) -> dict:
        """torch's layout; the arrays are the live state (copy it to keep it)."""
        return {"state": {0: dict(self.state)} if self.state else {},
                "param_groups": [{**self.group, "params": [0]}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Moments are copied (float64 arrays of θ's shape); the step count stays a float, as torch's."""
        saved = state_dict["state"].get(0)
        self.state = {} if not saved else {
            key: float(value) if key == "step" else np.array(_numpy(value), dtype=np.float64).reshape(self.theta.shape)
            for key, value in saved.items()}


def _numpy(value):
    """A torch tensor (torch's own state_dict) as numpy, without importing torch; arrays as they are."""
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


class Adam(_OneArrayOptimizer):
    r"""Adam (Kingma & Ba) with torch's defaults β = (0.9, 0.999), ε = 1e-8, no weight decay.

    With g the gradient and t the step count (from 1), in torch's op order:

        m ← m + (1 − β₁)(g − m)                     (exp_avg.lerp_)
        v ← β₂ v + ((1 − β₂) g) g                    (exp_avg_sq.mul_.addcmul_)
        θ ← θ + (−lr / (1 − β₁ᵗ)) m / (√v / √(1 − β₂ᵗ) + ε)   (addcdiv_)

    The bias corrections are Python floats, as in torch's `_single_tensor_adam`.
    """

    def __init__(self, theta: np.ndarray, lr: float):
        super().__init__(theta, lr=lr, betas=BETAS, eps=EPS)

    def step(self, grad: np.ndarray) -> None:
        beta1, beta2 = BETAS
        lr = self.group["lr"]
        state = self.state
        if not state:
            state.update(step=0.0, exp_avg=np.zeros_like(self.theta), exp_avg_sq=np.zeros_like(self.theta))
        state["step"] += 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        step = state["step"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + EPS
        self.theta += -(lr / bias_correction1) * exp_avg / denom


class SGD(_OneArrayOptimizer):
    r"""SGD with heavy-ball momentum μ (torch's form, no dampening): b ← μ b + g (b = g at the
    first step), θ ← θ − lr · b; with μ = 0, θ ← θ − lr · g. Ops as torch's `_single_tensor_sgd`."""

    def __init__(self, theta: np.ndarray, lr: float, momentum: float = 0.0):
        super().__init__(theta, lr=lr, momentum=momentum)

    def step(self, grad: np.ndarray) -> None:
        momentum = self.group["momentum"]
        if momentum != 0:
            if "momentum_buffer" not in self.state:
                self.state["momentum_buffer"] = np.array(grad, dtype=np.float64)
            else:
                buffer = self.state["momentum_buffer"]
                buffer *= momentum
                buffer += grad
            grad = self.state["momentum_buffer"]
        self.theta += -self.group["lr"] * grad
