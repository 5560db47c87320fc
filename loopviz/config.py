"""RunConfig: every knob of one training run, validated, hashable, to and from JSON.

The paper fixes some knobs (Adam, lr 1e-3, 600 epochs, T = 3, N = 500, alpha = 2);
the README's "choices" table names the ones it leaves open, and each is a field here with the
default we chose, never a constant buried in the code.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, fields
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MODELS = ("single", "looped", "shift")
EMBEDDINGS = ("random", "onehot")
TRANSITION_KINDS = ("dirichlet", "uniform")
DEVICES = ("auto", "cpu", "cuda")
ENTROPY_DEFINITIONS = ("histogram", "spectral")   # curvature.py's two readings of p(|λ|)
SCP_WAITS = ("patience", "gradient")               # shift.scp's two rules for E_shift
OPTIMIZERS = ("adam", "sgd", "gd")                 # adam: the paper; sgd: minibatch; gd: full batch

# Fields that change how a run executes but not what it computes (up to floating
# point): excluded from the run's identity so that the store never recomputes them.
EXECUTION_FIELDS = ("device",)
# Fields that only change how a finished run is read (SHIFT's suggested epoch), never
# its records: excluded from the identity too.
ANALYSIS_FIELDS = ("scp_wait",)
# Fields added after runs were stored: left out of the identity at their default, so
# every earlier stored run (which used that default) keeps its key and is still found.
LATER_FIELDS = {"entropy_definition": "histogram", "optimizer": "adam", "momentum": 0.0}


class ConfigError(ValueError):
    """A configuration value is out of range or malformed; the message says which."""


@dataclass(frozen=True)
class RunConfig:
    """One run of one model on the Markov language task (Sec. 3, App. E.1; SHIFT: Sec. 5)."""

    # -- model (Sec. 3; docs/background.md §1) --
    model: str = "looped"          # single | looped | shift
    loops: int = 3                 # T of Looped-Attn (Single-Attn is T = 1)
    d: int = 4                     # embedding width; P = 3 d^2 + V d parameters
    embedding: str = "random"      # random: seeded token + position vectors; onehot: one-hot ⊕ one-hot
    init_scale: float = 0.02       # std of the Gaussian initial weights
    # -- training (App. E.1.1; docs/background.md §1) --
    epochs: int = 1500             # the paper trains 600; 1500 shows where both models end (README, Reproduction)
    lr: float = 1e-3
    batch_size: int = 0            # 0 = full batch (one Adam step per epoch)
    # adam (the paper); sgd: SGD (toy/optim, torch's steps) on minibatches of batch_size (> 0);
    # gd: the same SGD on the full batch (batch_size 0), one step per epoch
    optimizer: str = "adam"
    # sgd/gd only: torch's SGD momentum (u <- mu u + g, theta <- theta - lr u; no dampening,
    # no Nesterov), i.e. heavy ball theta' = theta - lr g + mu (theta - theta_prev) at a fixed lr
    momentum: float = 0.0
    seed: int = 50                 # initial weights and minibatch order (50: see README, Reproduction)
    device: str = "auto"           # auto = CUDA when present, else CPU
    # -- task (App. E.1.1; docs/background.md §1) --
    data_seed: int = 50            # transitions, embeddings, training/validation draws
    transitions: str = "dirichlet"  # rows ~ Dirichlet(concentration), or normalised uniform
    concentration: float = 1.0
    alpha: float = 2.0             # oversampling ∝ P(X)^alpha
    n_train: int = 500
    n_val: int = 500
    keep_all_sequences: bool = True  # the 81 sequences once each, then oversample to n_train
    # -- curvature (Sec. 4.1–4.2, Definition 1) --
    hessian_every: int = 1         # 0 = no spectra; k = spectrum every k epochs (and the last)
    river_eps: float = 1e-3        # Def. 1: river = eigenvalues <= eps, valley = above
    valley_delta: float = 1.0      # Def. 1: U-shaped when kappa <= 1 + delta
    low_curvature_tau: float = 0.5  # Assumption 1 / Remark 5: valley eigenvalues <= tau
    entropy_bins: int = 40         # log-spaced bins of |lambda| for entropy and MI
    entropy_min: float = 1e-8      # |lambda| below this falls in the first bin
    entropy_max: float = 1e2       # |lambda| above this falls in the last bin
    entropy_definition: str = "histogram"  # histogram of |lambda| | spectral: p_i = |lambda_i| / sum |lambda|
    # -- SHIFT (Sec. 5) --
    shift_epoch: int = 100         # model = shift: Single-Attn for epochs 1..shift_epoch
    reset_optimizer: bool = False  # model = shift: fresh Adam state at the switch
    # SCP: E_shift = E_plateau + W (paper); gradient: also wait for a settled gradient norm
    scp_wait: str = "patience"

    # ----------------------------------------------------------------- checks
    def validate(self) -> "RunConfig":
        """Raise ConfigError naming the first bad field; return self when all are fine."""
        check_field_types(self)
        need(self.model in MODELS, f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        need(self.embedding in EMBEDDINGS, f"embedding must be one of {', '.join(EMBEDDINGS)}, got {self.embedding!r}")
        need(self.transitions in TRANSITION_KINDS,
             f"transitions must be one of {', '.join(TRANSITION_KINDS)}, got {self.transitions!r}")
        need(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        need(1 <= self.loops <= 16, f"loops must be between 1 and 16, got {self.loops}")
        need(1 <= self.d <= 64, f"d must be between 1 and 64, got {self.d}")
        need(self.embedding != "onehot" or self.d >= 3 + 3,
             f"embedding onehot needs d >= 6 (3 tokens + 3 positions), got d = {self.d}")
        need(0 < self.init_scale <= 10, f"init_scale must be in (0, 10], got {self.init_scale}")
        need(1 <= self.epochs <= 100_000, f"epochs must be between 1 and 100000, got {self.epochs}")
        need(0 < self.lr <= 10, f"lr must be in (0, 10], got {self.lr}")
        need(0 <= self.batch_size <= self.n_train,
             f"batch_size must be 0 (full batch) or at most n_train = {self.n_train}, got {self.batch_size}")
        need(self.optimizer in OPTIMIZERS,
             f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(self.optimizer != "adam" or self.momentum == 0,
             f"momentum is used by sgd and gd only; optimizer adam needs momentum 0, got {self.momentum}")
        need(self.optimizer != "sgd" or self.batch_size > 0,
             "optimizer sgd trains on minibatches: set batch_size > 0 (or use optimizer gd for full batch)")
        need(self.optimizer != "gd" or self.batch_size == 0,
             f"optimizer gd is full-batch gradient descent: batch_size must be 0, got {self.batch_size} "
             "(or use optimizer sgd for minibatches)")
        need(0 <= self.seed < 2**32 and 0 <= self.data_seed < 2**32,
             f"seed and data_seed must be in [0, 2^32), got {self.seed}, {self.data_seed}")
        need(self.concentration > 0, f"concentration must be > 0, got {self.concentration}")
        need(0 <= self.alpha <= 10, f"alpha must be in [0, 10], got {self.alpha}")
        need((81 if self.keep_all_sequences else 1) <= self.n_train <= 1_000_000,
             f"n_train must be between {81 if self.keep_all_sequences else 1} and 1000000, got {self.n_train}")
        need(1 <= self.n_val <= 1_000_000, f"n_val must be between 1 and 1000000, got {self.n_val}")
        need(self.hessian_every >= 0, f"hessian_every must be >= 0, got {self.hessian_every}")
        need(self.river_eps > 0, f"river_eps must be > 0, got {self.river_eps}")
        need(self.valley_delta >= 0, f"valley_delta must be >= 0, got {self.valley_delta}")
        need(self.low_curvature_tau > 0, f"low_curvature_tau must be > 0, got {self.low_curvature_tau}")
        need(2 <= self.entropy_bins <= 1000, f"entropy_bins must be between 2 and 1000, got {self.entropy_bins}")
        need(0 < self.entropy_min < self.entropy_max,
             f"need 0 < entropy_min < entropy_max, got {self.entropy_min}, {self.entropy_max}")
        need(self.entropy_definition in ENTROPY_DEFINITIONS,
             f"entropy_definition must be one of {', '.join(ENTROPY_DEFINITIONS)}, got {self.entropy_definition!r}")
        need(self.scp_wait in SCP_WAITS, f"scp_wait must be one of {', '.join(SCP_WAITS)}, got {self.scp_wait!r}")
        need(self.model != "shift" or 0 <= self.shift_epoch <= self.epochs,
             f"shift_epoch must be in [0, epochs = {self.epochs}], got {self.shift_epoch}")
        return self

    # ------------------------------------------------------------- identity
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Build and validate; unknown keys and wrong types are errors, not ignored."""
        return cls(**known_fields(cls, data, coerce)).validate()

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(parse_json(text))

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes).validate()

    def key(self) -> str:
        """The run's identity: a hash of every field that changes what is computed."""
        # A float field given as an int (init_scale=10) is the same run as 10.0, and JSON read back gives 10.0;
        # fields added later leave the key alone at their default, so stored runs keep their keys.
        science = {f.name: float(getattr(self, f.name)) if f.type == "float" else getattr(self, f.name)
                   for f in fields(self) if f.name not in EXECUTION_FIELDS + ANALYSIS_FIELDS}
        science = {k: v for k, v in science.items() if LATER_FIELDS.get(k, ...) != v}
        if self.model != "shift":  # SHIFT-only knobs do not change other models' runs
            science.pop("shift_epoch")
            science.pop("reset_optimizer")
        if self.model == "single":  # Single-Attn never loops
            science.pop("loops")
        blob = json.dumps(science, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def loops_at(self, epoch: int) -> int:
        """Loops used by the update that produces `epoch` (SHIFT switches after shift_epoch)."""
        if self.model == "single":
            return 1
        if self.model == "shift" and epoch <= self.shift_epoch:
            return 1
        return self.loops


def need(ok: bool, message: str) -> None:
    """A config check: raise ConfigError(message) unless ok."""
    if not ok:
        raise ConfigError(message)


def check_field_types(config) -> None:
    """Every float field a finite number, every int field an int, every bool field a bool
    (bool is not accepted as a number: True would pass as 1)."""
    for f in fields(config):
        value = getattr(config, f.name)
        if f.type == "float":
            need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                 f"{f.name} must be a finite number, got {value!r}")
        elif f.type == "int":
            need(isinstance(value, int) and not isinstance(value, bool), f"{f.name} must be an integer, got {value!r}")
        elif f.type == "bool":
            need(isinstance(value, bool), f"{f.name} must be true or false, got {value!r}")


def parse_json(text: str) -> Any:
    """A config file's JSON, or one ConfigError line."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # also: too deeply nested, integers of 4300+ digits
        raise ConfigError(f"config is not valid JSON: {str(exc)[:200]}") from None


def known_fields(cls, data: Any, coerce_one) -> dict[str, Any]:
    """A config's fields from a JSON object: unknown keys and wrong types are errors, not ignored;
    each value goes through coerce_one(name, type name, value)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    return {name: coerce_one(name, known[name].type, value) for name, value in data.items()}


def coerce(name: str, type_name: str, value: Any) -> Any:
    """JSON and query strings carry numbers loosely; accept exact equivalents only."""
    try:
        if type_name == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                return int(value.strip())
            return value
        if type_name == "float":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, (int, str)):
                return float(value)
            return value
        if type_name == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError
            return value
    except (ValueError, TypeError):
        raise ConfigError(f"{name} must be {type_name}, got {value!r}") from None
    return value


def overwrite_refused(paths: Iterable[Path], force: bool) -> str:
    """The one message every command gives before writing over existing output without
    --force ("" when it may write); each caller raises it as its own error."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not force:
        return f"{', '.join(existing)} already exists; use another --out or --force to overwrite"
    return ""
