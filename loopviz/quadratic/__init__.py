"""The river-valley model of Sec. 4.3 / App. F: simulators apart from the claims they check.

- `simulate`: gradient descent on Setting 1 (quadratic) and Setting 2 (stiffening walls),
  the cumulative force and Theorem 1's bounds, heavy-ball momentum and gradient noise.
- `valleys`: U/V valley spectra (Definition 1), the `RiverValley` instance, loss slices.
- `claims`: two valleys side by side and Theorem 1–2 / Corollaries 1–2 checked on them.

`from loopviz import quadratic as q; q.<name>` reaches every public name below.
"""
from .claims import (MINOR_FEEDBACK, MUCH_GREATER, SETTLED, Claim, Comparison, Side,
                     check_claims, compare_valleys)
from .simulate import (GeneralTrajectory, Trajectory, cumulative_force, eigh, force_bound,
                       force_bound_split, general_loss, geometric_weights, momentum_stable,
                       noise_floor_variance, quadratic_loss, simulate, simulate_general,
                       simulate_general_pair, simulate_momentum, unforced_force)
from .valleys import (Assumption1, RiverValley, check_assumption1, loss_slice, make_problem,
                      river_progress, slice_contours, slice_level_set, u_valley_spectrum,
                      v_valley_spectrum, valley_direction, valley_pair)

__all__ = [
    "Assumption1", "Claim", "Comparison", "GeneralTrajectory", "MINOR_FEEDBACK", "MUCH_GREATER",
    "RiverValley", "SETTLED", "Side", "Trajectory", "check_assumption1", "check_claims",
    "compare_valleys", "cumulative_force", "eigh", "force_bound", "force_bound_split",
    "general_loss", "geometric_weights", "loss_slice", "make_problem", "momentum_stable",
    "noise_floor_variance", "quadratic_loss", "river_progress", "simulate",
    "simulate_general", "simulate_general_pair", "simulate_momentum", "slice_contours",
    "slice_level_set", "u_valley_spectrum", "v_valley_spectrum", "valley_direction",
    "valley_pair", "unforced_force",
]
