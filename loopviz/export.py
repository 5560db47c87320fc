"""`python -m loopviz export`: a run's eigenspectrum, or the River valleys paths, as a GIF or
MP4 animation with fixed axes, for slides.

Frames are the app's own plotly figures rendered to PNG by kaleido (1.x drives a headless
Chrome through choreographer, which finds Debian's `chromium` on PATH, or the browser
named by BROWSER_PATH); one browser is kept open for all frames (~0.3 s a frame here,
against ~3 s when each frame starts its own). imageio writes the GIF (pillow) and the MP4
(imageio-ffmpeg's bundled ffmpeg, H.264).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import overwrite_refused
from .curvature import log_bin_edges

if TYPE_CHECKING:  # the CLI's --help must not load pandas (runs.format) or torch
    from .runs.format import RunData

FORMATS = (".gif", ".mp4")
WIDTH, HEIGHT = 800, 448    # multiples of 16: H.264 needs no resizing
MODEL_DIRS = ("single", "looped", "shift")


class ExportError(ValueError):
    """Bad input to an export; the message says what to change."""


def spectrum_figures(runs: dict[str, RunData], frames: int) -> list:
    """Frames of the |λ| histograms of every run, at `frames` epochs spread over the shared
    range, on fixed axes (the bins of the runs' entropy histogram, y up to the largest count)."""
    from .plots.training import eigenspectrum_frame

    if not runs:
        raise ExportError("no runs to draw")
    first = next(iter(runs.values())).config
    edges = log_bin_edges(first.entropy_bins, first.entropy_min, first.entropy_max)
    if any(len(r.spectrum_epochs) == 0 for r in runs.values()):
        raise ExportError("a run has no spectra (hessian_every = 0): nothing to animate")
    last = int(min(r.spectrum_epochs[-1] for r in runs.values()))
    epochs = np.unique(np.linspace(0, last, max(1, frames)).round().astype(int))
    y_max = 1.05 * max(np.histogram(np.clip(np.abs(e), edges[0], edges[-1]), bins=edges)[0].max()
                       for r in runs.values() for e in r.eigenvalues)
    return [eigenspectrum_frame({label: (r.config.model, r.spectrum_at(int(e))) for label, r in runs.items()},
                           edges, y_max, int(e), first.river_eps, first.low_curvature_tau) for e in epochs]


def valley_figures(frames: int, **knobs) -> list:
    """Frames of the River valleys page's paths (steepest valley direction against river
    progress, U and V valleys) for the page's knobs (quadratic.compare_valleys)."""
    from . import quadratic as q
    from .plots.valley import finite_range, valley_frame

    d_v, kappa_u, kappa_v = knobs.pop("d_v"), knobs.pop("kappa_u"), knobs.pop("kappa_v")
    cmp = q.compare_valleys(q.u_valley_spectrum(d_v, 1.0, kappa_u), q.v_valley_spectrum(d_v, 1.0, kappa_v), **knobs)
    paths = {}
    for key, side in (("U", cmp.single), ("V", cmp.looped)):
        _, _, coord = q.valley_direction(side.problem, side.run, "steepest")
        paths[key] = (q.river_progress(side.run.theta_r, side.problem.h_r), coord)
    x_range = finite_range(*(p[0] for p in paths.values()))
    y_range = finite_range(*(p[1] for p in paths.values()))
    steps = valley_steps(knobs["steps"], frames)
    title = f"GD on the river valley, η = {knobs['eta']:g}"
    return [valley_frame(paths, int(k), x_range, y_range, title) for k in steps]


def valley_steps(steps: int, frames: int) -> np.ndarray:
    """Steps shown: the first half of the frames one step apart (hopping happens early), the
    rest geometrically spaced to the last step."""
    head = np.arange(min(steps, frames // 2) + 1)
    tail = np.geomspace(max(head[-1], 1), max(steps, 1), max(frames - len(head), 1) + 1).round().astype(int)
    return np.unique(np.concatenate([head, tail]))


def render(figures: Iterable, out: Path, fps: float) -> Path:
    """Render figures to PNG with kaleido (one browser for all) and write them as `out`."""
    import imageio.v3 as iio
    import kaleido
    import plotly.io as pio

    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"--out must end in {' or '.join(FORMATS)}, got {out.name!r}")
    images = []
    kaleido.start_sync_server(silence_warnings=True)
    try:
        for fig in figures:
            with warnings.catch_warnings():  # plotly warns that a running server ignores kaleido options
                warnings.simplefilter("ignore", UserWarning)
                png = pio.to_image(fig, format="png", width=WIDTH, height=HEIGHT)
            images.append(iio.imread(png)[..., :3])
    except Exception as exc:  # kaleido's errors name a missing browser in many ways
        raise ExportError(f"could not render frames with kaleido ({type(exc).__name__}: {exc}); it needs "
                          "Chrome or Chromium (Debian: apt-get install chromium, or set BROWSER_PATH)") from None
    finally:
        kaleido.stop_sync_server(silence_warnings=True)
    frames = np.stack(images)
    if suffix == ".gif":
        iio.imwrite(out, frames, extension=".gif", duration=1000 / fps, loop=0)
    else:
        import imageio_ffmpeg

        writer = imageio_ffmpeg.write_frames(str(out), (WIDTH, HEIGHT), fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", macro_block_size=16)
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    return out


def render_bytes(figures: Iterable, suffix: str = ".gif", fps: float = 8.0) -> bytes:
    """The same animation as bytes (the pages' download buttons)."""
    with tempfile.TemporaryDirectory() as tmp:
        return render(figures, Path(tmp) / f"animation{suffix}", fps).read_bytes()


def read_runs(directory: Path) -> dict[str, RunData]:
    """One run directory, or a directory of <model>/ run directories (as `run --out` writes)."""
    from .runs.format import read_run

    directory = Path(directory)
    if (directory / "config.json").is_file():
        run = read_run(directory)
        return {run.config.model: run}
    found = {m: directory / m for m in MODEL_DIRS if (directory / m / "config.json").is_file()}
    if not found:
        raise ExportError(f"{directory} holds no run (no config.json, nor single/, looped/, shift/)")
    return {m: read_run(path) for m, path in found.items()}


def command_export(args: argparse.Namespace) -> int:
    from .runs.format import RunFormatError

    try:
        out = Path(args.out)
        if out.suffix.lower() not in FORMATS:
            raise ExportError(f"--out must end in {' or '.join(FORMATS)}, got {out.name!r}")
        if refusal := overwrite_refused([out], args.force):
            raise ExportError(refusal)
        if not 1 <= args.frames <= 1000:
            raise ExportError(f"--frames must be between 1 and 1000, got {args.frames}")
        if not 0 < args.fps <= 60:
            raise ExportError(f"--fps must be in (0, 60], got {args.fps}")
        if args.what == "spectrum":
            if args.run is None:
                raise ExportError("--what spectrum needs --run DIR")
            runs = {}
            for directory in args.run:
                runs.update(read_runs(Path(directory)))
            figures = spectrum_figures(runs, args.frames)
        else:
            if not (0 < args.eta and 1 <= args.steps <= 100_000 and 2 <= args.d_v <= 1000 and 1 <= args.d_r <= 1000):
                raise ExportError("valley knobs out of range: need eta > 0, 1 <= steps <= 100000, "
                                  "2 <= d-v <= 1000, 1 <= d-r <= 1000")
            figures = valley_figures(args.frames, d_v=args.d_v, kappa_u=args.kappa_u, kappa_v=args.kappa_v,
                                     d_r=args.d_r, coupling=args.coupling, offset=args.offset, drive=args.drive,
                                     eta=args.eta, steps=args.steps, tau=args.tau)
        out.parent.mkdir(parents=True, exist_ok=True)
        render(figures, out, args.fps)
    except (ExportError, RunFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({len(figures)} frames, {WIDTH}x{HEIGHT})", file=sys.stderr)
    return 0


def export_command(what: str, run_dirs: list[str], out: str, frames: int, **valley: float) -> str:
    """The CLI line that writes the same animation (shown on the pages for copying)."""
    parts = ["python -m loopviz export", f"--what {what}", *(f"--run {d}" for d in run_dirs)]
    parts += [f"--{k.replace('_', '-')} {v:g}" for k, v in valley.items()]
    parts += [f"--frames {frames}", f"--out {out}"]
    return " ".join(parts)


def add_export_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `export` (called from loopviz.__main__)."""
    cmd = subparsers.add_parser("export", help="an animation (GIF or MP4, fixed axes) of a run's spectrum or of "
                                               "the River valleys paths")
    cmd.add_argument("--what", choices=("spectrum", "valley"), default="spectrum")
    cmd.add_argument("--run", action="append", default=None,
                     help="a run directory, or a directory of single/ looped/ shift/ runs; repeat to add runs")
    cmd.add_argument("--out", required=True, help="file to write: .gif or .mp4")
    cmd.add_argument("--frames", type=int, default=60, help="frames, spread evenly over epochs (or steps)")
    cmd.add_argument("--fps", type=float, default=8.0, help="frames per second")
    cmd.add_argument("--force", action="store_true", help="overwrite --out")
    valley = cmd.add_argument_group("--what valley: the River valleys page's knobs (its defaults)")
    valley.add_argument("--eta", type=float, default=1.8)
    valley.add_argument("--steps", type=int, default=1000)
    valley.add_argument("--coupling", type=float, default=0.002)
    valley.add_argument("--offset", type=float, default=1.0)
    valley.add_argument("--d-v", dest="d_v", type=int, default=20)
    valley.add_argument("--d-r", dest="d_r", type=int, default=5)
    valley.add_argument("--kappa-u", dest="kappa_u", type=float, default=1.2)
    valley.add_argument("--kappa-v", dest="kappa_v", type=float, default=100.0)
    valley.add_argument("--drive", type=float, default=1e-5)
    valley.add_argument("--tau", type=float, default=0.5)
    cmd.set_defaults(handler=command_export)
