"""AlgoConfig: every knob of one algorithmic-task run (paper App. E.2), validated, hashable.

No torch here: the CLI parses and validates with it before any heavy import.
The paper fixes width 256, AdamW lr 1e-4 and 50,001 steps; everything it leaves to
Fan et al. (2024) is a field with the default we chose (README, choices table).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

# One error class, one set of type checks and coercion rules, one JSON reader for every config.
from ..config import ConfigError, check_field_types, coerce, known_fields, need, parse_json

TASKS = ("parity", "addition", "copy", "binary_sum", "unique_set")
MODELS = ("single", "looped", "shift")
POSITIONS = ("learned", "none")
STOPPING = ("confidence", "oracle")
SCP_PLATEAUS = ("best", "window")   # loopviz.shift.scp's readings of Sec. 5's plateau test
SHIFT_RULES = ("scp", "fixed", "fallback")   # what decided SHIFT's switch (stored by index in handoff.npz)
DEVICES = ("auto", "cpu", "cuda")
EXECUTION_FIELDS = ("device",)


@dataclass(frozen=True)
class AlgoConfig:
    """One run of one paradigm on one algorithmic task."""

    # -- task --
    task: str = "parity"
    train_min_len: int = 1         # training lengths n are drawn uniformly from [min, max]
    train_max_len: int = 6
    test_lengths: tuple[int, ...] = (4, 6, 8, 10, 12)
    alphabet: int = 0              # symbols of copy / unique set; 0 = the task's default
    # -- model (GPT-2 layers: pre-LN, causal MHA, GELU MLP x4, learned positions) --
    model: str = "looped"          # single | looped | shift
    width: int = 64
    heads: int = 4
    depth: int = 1                 # GPT-2 layers in the stack (Single) = in the looped block (Looped)
    positions: str = "learned"     # learned (GPT-2) | none (NoPE)
    input_injection: bool = True   # Looped: h_t = block(h_{t-1} + embedding), h_0 = 0
    stopping: str = "confidence"   # inference loops: confidence = most confident of 1..max; oracle = n
    max_loops_factor: float = 2.0  # confidence searches loops 1 .. ceil(factor * n)
    # -- training --
    steps: int = 4000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0         # 0 = no clipping
    seed: int = 0                  # initial weights
    data_seed: int = 0             # training batches and evaluation sets
    device: str = "auto"
    # -- evaluation --
    eval_every: int = 200
    eval_samples: int = 128        # per evaluation set (train, validation) and per test length
    checkpoints: int = 4           # evenly spaced weight snapshots (plus the last and the switch)
    hessian_top: int = 0           # top Hessian eigenvalues (Lanczos) at each checkpoint; 0 = none
    hessian_samples: int = 32      # per training length, for the curvature batch
    # -- SHIFT (paper Sec. 5 SCP, in evaluation units) --
    shift_step: int = 0            # 0 = chosen by SCP on the Single run; > 0 = switch at this step
    scp_delta1: float = 0.01       # absolute, in nats per output token
    scp_window: int = 3            # p: evaluations in which the best validation loss must fall by delta1
    scp_patience: int = 2          # W: evaluations waited after the plateau (E_shift = E_plateau + W)
    scp_plateau: str = "best"      # best: on the best loss so far | window: on the loss itself (the toy's)

    def validate(self) -> AlgoConfig:
        check_field_types(self)
        need(self.task in TASKS, f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        need(self.model in MODELS, f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        need(self.positions in POSITIONS, f"positions must be one of {', '.join(POSITIONS)}, got {self.positions!r}")
        need(self.stopping in STOPPING, f"stopping must be one of {', '.join(STOPPING)}, got {self.stopping!r}")
        need(self.scp_plateau in SCP_PLATEAUS,
             f"scp_plateau must be one of {', '.join(SCP_PLATEAUS)}, got {self.scp_plateau!r}")
        need(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        need(1 <= self.train_min_len <= self.train_max_len <= 200,
             f"need 1 <= train_min_len <= train_max_len <= 200, got {self.train_min_len}, {self.train_max_len}")
        need(isinstance(self.test_lengths, tuple) and len(self.test_lengths) > 0
             and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 400 for n in self.test_lengths),
             f"test_lengths must be integers in [1, 400], got {self.test_lengths!r}")
        need(self.alphabet == 0 or 2 <= self.alphabet <= 8,
             f"alphabet must be 0 (task default) or 2..8, got {self.alphabet}")
        need(1 <= self.width <= 4096 and 1 <= self.heads and self.width % self.heads == 0,
             f"width must be a positive multiple of heads, got width {self.width}, heads {self.heads}")
        need(1 <= self.depth <= 48, f"depth must be between 1 and 48, got {self.depth}")
        need(1.0 <= self.max_loops_factor <= 8.0, f"max_loops_factor must be in [1, 8], got {self.max_loops_factor}")
        need(1 <= self.steps <= 1_000_000, f"steps must be between 1 and 1000000, got {self.steps}")
        need(1 <= self.batch_size <= 65536, f"batch_size must be between 1 and 65536, got {self.batch_size}")
        need(0 < self.lr <= 1, f"lr must be in (0, 1], got {self.lr}")
        need(0 <= self.weight_decay <= 10, f"weight_decay must be in [0, 10], got {self.weight_decay}")
        need(self.grad_clip >= 0, f"grad_clip must be >= 0, got {self.grad_clip}")
        need(self.seed >= 0 and self.data_seed >= 0, "seed and data_seed must be >= 0")
        need(1 <= self.eval_every <= self.steps,
             f"eval_every must be in [1, steps = {self.steps}], got {self.eval_every}")
        need(1 <= self.eval_samples <= 100_000, f"eval_samples must be in [1, 100000], got {self.eval_samples}")
        need(0 <= self.checkpoints <= 100, f"checkpoints must be in [0, 100], got {self.checkpoints}")
        need(0 <= self.hessian_top <= 50, f"hessian_top must be in [0, 50], got {self.hessian_top}")
        need(1 <= self.hessian_samples <= 10_000, f"hessian_samples must be in [1, 10000], got {self.hessian_samples}")
        need(0 <= self.shift_step < self.steps, f"shift_step must be 0 (SCP) or in [1, steps), got {self.shift_step}")
        need(self.scp_delta1 > 0 and self.scp_window >= 1 and self.scp_patience >= 0,
             "scp_delta1 must be > 0, scp_window >= 1, scp_patience >= 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["test_lengths"] = list(self.test_lengths)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlgoConfig:
        """Build and validate; unknown keys and wrong types are errors, not ignored."""
        return cls(**known_fields(cls, data, _coerce)).validate()

    @classmethod
    def from_json(cls, text: str) -> AlgoConfig:
        return cls.from_dict(parse_json(text))

    def replace(self, **changes: Any) -> AlgoConfig:
        return dataclasses.replace(self, **changes).validate()

    def key(self) -> str:
        """The run's identity: a hash of every field that changes what is computed."""
        science = {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}
        if self.model != "shift":
            for name in ("shift_step",):
                science.pop(name)
        return hashlib.sha256(json.dumps(science, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def max_test_len(self) -> int:
        return max(max(self.test_lengths), self.train_max_len)


def _coerce(name: str, type_name: str, value: Any) -> Any:
    """The toy config's rules (loopviz.config.coerce), plus comma-separated integer tuples."""
    if type_name != "tuple[int, ...]":
        return coerce(name, type_name, value)
    try:
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ValueError
        return tuple(int(v) if not isinstance(v, bool) and float(v) == int(float(v)) else v for v in value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} must be {type_name}, got {value!r}") from None


# Presets. `paper`: App. E.2's width 256, AdamW lr 1e-4, 50,001 steps (heads, depth, batch
# and lengths are ours: Fan et al. 2024 is not repeated in the paper). `cpu`: small enough
# that Parity reaches >= 95 % training accuracy within minutes on two CPU cores.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(width=256, heads=8, depth=1, lr=1e-4, steps=50_001, batch_size=64, train_min_len=1,
                  train_max_len=20, test_lengths=(10, 20, 25, 30, 35, 40), eval_every=1000, eval_samples=512,
                  checkpoints=10, hessian_top=0, scp_window=5, scp_patience=3, device="auto"),
    "cpu": dict(width=64, heads=4, depth=1, lr=2e-3, steps=4000, batch_size=64, train_min_len=1, train_max_len=6,
                test_lengths=(4, 6, 8, 10, 12), eval_every=200, eval_samples=128, checkpoints=4, hessian_top=4,
                scp_window=3, scp_patience=2, device="cpu"),
}


def preset(name: str, **changes: Any) -> AlgoConfig:
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
    return AlgoConfig.from_dict({**PRESETS[name], **changes})
