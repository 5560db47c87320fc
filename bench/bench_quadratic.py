"""Times one slider move of the river-valley page: both valleys simulated, all figures built.

Run: python bench/bench_quadratic.py. Prints wall-clock times and their ratios to two
baselines measured in the same process, so numbers compare across machines: one
[K+1, d]·[d, d] matrix product (the arithmetic of a K-step run done at once), and a
naive gradient-descent loop of K steps, eq. 1–2 written block by block for one valley
(what the page would cost per valley without the fused update, before any figure).
Asserts nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopviz import quadratic as q  # noqa: E402
from loopviz.plots import valley as vp  # noqa: E402

from timing import best_of  # noqa: E402  (bench/ is on sys.path when run as a script)

D_V, D_R, K = 180, 20, 2000          # d_V + d_R = 200, the page's speed budget size


def naive_gd(p: q.RiverValley, eta: float, steps: int) -> None:
    """Eq. 1–2 of App. F.2, one block at a time, trajectory kept as Python lists."""
    tv, tr = [p.theta_v0], [p.theta_r0]
    for _ in range(steps):
        tv.append(tv[-1] - eta * (p.H_valley @ tv[-1] + p.H_rv.T @ tr[-1]))
        tr.append(tr[-1] - eta * (p.H_rv @ tv[-2] - p.h_r))


def compute(setting: int) -> q.Comparison:
    u, v, _ = q.valley_pair(D_V, 1.0, 1.2, 100.0, 0.5)
    return q.compare_valleys(u, v, d_r=D_R, coupling=0.002, offset=1.0, drive=1e-5, eta=1.8,
                             steps=K, tau=0.5, setting=setting,
                             stiffening=0.5 if setting == 2 else 0.0)


def figures(cmp: q.Comparison) -> None:
    """The page's figures for one comparison, serialised as Streamlit would send them."""
    sides = {"U": cmp.single, "V": cmp.looped}
    progress = {n: q.river_progress(s.run.theta_r, s.problem.h_r) for n, s in sides.items()}
    paths = {n: q.valley_direction(s.problem, s.run, "steepest") for n, s in sides.items()}
    xr = vp.finite_range(*progress.values())
    yr = vp.finite_range(*(p[2] for p in paths.values()))
    gx, gy = np.linspace(*xr, 60), np.linspace(*yr, 60)
    figs = [vp.progress_loss_figure(progress, {n: s.run.loss for n, s in sides.items()})]
    for n, s in sides.items():
        lam_i, cross, coord = paths[n]
        _, lower, upper = q.slice_contours(lam_i, 1e-5, cross, 0.0, gx, gy)
        figs.append(vp.path_figure(progress[n], coord, gx, lower, upper, title=n, color=vp.U_COLOR,
                                   x_range=xr, y_range=yr))
        figs.append(vp.force_figure(np.linalg.norm(s.run.force, axis=1),
                                    np.linalg.norm(s.unforced, axis=1), s.bound, title=n,
                                    color=vp.U_COLOR, y_range=None))
        figs.append(vp.valley_spectrum_figure(s.eigenvalues, tau=0.5, eta=1.8, title=n))
    for f in figs:
        f.to_json(validate=False)


def main() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((K + 1, D_V + D_R)), rng.standard_normal((D_V + D_R, D_V + D_R))
    matmul = best_of(lambda: a @ b, repeats=20)
    problem = q.make_problem(q.v_valley_spectrum(D_V, 1.0, 100.0), D_R, 0.002, 1.0, 1e-5)
    loop = best_of(lambda: naive_gd(problem, 1.8, K))
    print(f"d_V + d_R = {D_V + D_R}, K = {K}")
    print(f"  baseline A, one [{K + 1}×{D_V + D_R}]·[{D_V + D_R}×{D_V + D_R}] product: "
          f"{matmul * 1e3:7.1f} ms")
    print(f"  baseline B, naive GD loop, one valley:           {loop * 1e3:7.1f} ms")
    for setting in (1, 2):
        cmp = compute(setting)
        t_sim = best_of(lambda: compute(setting))
        t_fig = best_of(lambda: figures(cmp))
        total = t_sim + t_fig
        print(f"  Setting {setting}: simulate both valleys {t_sim * 1e3:6.1f} ms + figures "
              f"{t_fig * 1e3:6.1f} ms = slider move {total * 1e3:6.1f} ms "
              f"= {total / matmul:4.0f}× A = {total / loop:4.1f}× B")


if __name__ == "__main__":
    main()
