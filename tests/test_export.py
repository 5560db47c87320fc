"""`python -m loopviz export`: frames on fixed axes that show the stored numbers, clear
errors for bad input, and real GIF / MP4 files read back frame by frame."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from loopviz.__main__ import main
from loopviz.curvature import bin_index, log_bin_edges
from loopviz.export import read_runs, render_bytes, spectrum_figures, valley_figures

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "default"
HAS_BROWSER = bool(os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("google-chrome"))


def test_spectrum_frames_show_the_stored_histograms_on_fixed_axes():
    runs = read_runs(ASSETS)
    assert set(runs) == {"single", "looped", "shift"}
    figures = spectrum_figures(runs, 7)
    assert len(figures) == 7
    axes = {(f.layout.xaxis.range, f.layout.yaxis.range) for f in figures}
    assert len(axes) == 1   # the same axes in every frame
    config = runs["looped"].config
    edges = log_bin_edges(config.entropy_bins, config.entropy_min, config.entropy_max)
    last = figures[-1]
    assert f"epoch {config.epochs}" in last.layout.title.text   # the last frame is the last epoch
    for trace in last.data:
        expected = np.bincount(bin_index(runs[trace.name].eigenvalues[-1], edges), minlength=len(edges) - 1)
        assert np.array_equal(np.asarray(trace.y), expected)
    assert figures[0].layout.yaxis.range[1] >= max(max(t.y) for f in figures for t in f.data)


def test_valley_frames_share_axes_and_start_with_every_step():
    figures = valley_figures(10, d_v=20, kappa_u=1.2, kappa_v=100.0, d_r=5, coupling=0.002, offset=1.0,
                             drive=1e-5, eta=1.8, steps=200, tau=0.5)
    titles = [f.layout.title.text for f in figures]
    assert titles[:3] == [f"GD on the river valley, η = 1.8, step {k}" for k in (0, 1, 2)]
    assert titles[-1].endswith("step 200")
    assert len({(f.layout.xaxis.range, f.layout.yaxis.range) for f in figures}) == 1


@pytest.mark.parametrize("argv,message", [
    (["--what", "spectrum", "--run", "assets/default", "--out", "x.png"], "must end in .gif or .mp4"),
    (["--what", "spectrum", "--out", "x.gif"], "needs --run"),
    (["--what", "spectrum", "--run", "no/such/dir", "--out", "x.gif"], "holds no run"),
    (["--what", "valley", "--eta", "-1", "--out", "x.gif"], "out of range"),
    (["--what", "spectrum", "--run", "assets/default", "--frames", "0", "--out", "x.gif"], "--frames"),
])
def test_bad_input_is_one_error_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [a if a != "x.gif" and a != "x.png" else str(tmp_path / a) for a in argv]
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not any(tmp_path.iterdir())


def test_an_existing_output_is_kept_without_force(tmp_path, capsys):
    out = tmp_path / "x.gif"
    out.write_bytes(b"keep")
    assert main(["export", "--run", str(ASSETS), "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep"
    assert "--force" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BROWSER, reason="kaleido needs Chrome or Chromium")
def test_gif_and_mp4_are_written_and_read_back(tmp_path):
    import imageio.v3 as iio
    import imageio_ffmpeg

    gif, mp4 = tmp_path / "s.gif", tmp_path / "v.mp4"
    assert main(["export", "--what", "spectrum", "--run", str(ASSETS / "looped"), "--frames", "3",
                 "--out", str(gif)]) == 0
    frames = iio.imread(gif, index=None)
    assert frames.shape == (3, 448, 800, 3)
    assert not np.array_equal(frames[0], frames[-1])   # the spectrum moves
    assert main(["export", "--what", "valley", "--steps", "50", "--frames", "3", "--out", str(mp4)]) == 0
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert meta["size"] == (800, 448) and len(list(reader)) == len(valley_figures(
        3, d_v=20, kappa_u=1.2, kappa_v=100.0, d_r=5, coupling=0.002, offset=1.0, drive=1e-5, eta=1.8, steps=50,
        tau=0.5))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BROWSER, reason="kaleido needs Chrome or Chromium")
def test_the_pages_download_renders_gif_bytes():
    data = render_bytes(spectrum_figures(read_runs(ASSETS), 2), ".gif")
    assert data[:6] == b"GIF89a"
