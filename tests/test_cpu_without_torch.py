"""On a CPU machine the toy is numpy: `python -m loopviz run`, a seed sweep and the science the
SHIFT and Landscape pages call never load torch (~1.5 s of a start, ~280 MB of a server),
checked in a fresh interpreter; and "auto" resolves to the CPU without asking torch where no
NVIDIA driver is."""
import subprocess
import sys
from pathlib import Path

import pytest

from loopviz.toy import training


REPO = Path(__file__).resolve().parent.parent
TORCH_LOADED = "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"


def fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(training.cuda_possible(), reason="this machine may have a CUDA device: auto asks torch there")
def test_a_default_cli_run_and_a_seed_sweep_do_not_load_torch(tmp_path):
    code = (
        "import sys\n"
        "from loopviz.__main__ import main\n"
        f"assert main(['run', '--epochs', '4', '--out', {str(tmp_path / 'run')!r}]) == 0\n"
        f"assert main(['sweep-seeds', '--seeds', '2', '--epochs', '4', '--serial', "
        f"'--out', {str(tmp_path / 'seeds.csv')!r}]) == 0\n"
        "print('torch' in sys.modules)\n")
    assert fresh(code).splitlines()[-1] == "False", "torch was loaded by a CPU run or sweep"
    assert (tmp_path / "run" / "single").is_dir() and (tmp_path / "run" / "looped").is_dir()
    assert (tmp_path / "seeds.csv").read_text().count("\n") == 3   # header + 2 seeds


def test_cpu_and_auto_without_a_driver_need_no_torch(monkeypatch):
    code = ("import sys\n"
            "from loopviz.toy import training\n"
            "training.cuda_possible = lambda: False\n"
            "print(training.device_name('auto'), training.device_name('cpu'), 'torch' in sys.modules)\n")
    assert fresh(code) == "cpu cpu False"
    monkeypatch.setattr(training, "cuda_possible", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        training.device_name("cuda")


def test_the_shift_pages_science_loads_no_torch():
    """switch_jump_of and theorem3_of, what the SHIFT page calls, are toy/gradient.py's numpy."""
    code = ("import sys, numpy as np\nfrom loopviz import shift\nfrom loopviz.config import RunConfig\n"
            "j = RunConfig().to_json()\nt = np.random.default_rng(0).normal(0, .3, (3, 60))\n"
            "shift.switch_jump_of(j, t[0])\nshift.theorem3_of(j, [0, 1, 2], t)\n" + TORCH_LOADED)
    assert fresh(code).splitlines()[-1] == "[]"


def test_the_landscape_pages_science_loads_no_torch():
    """Every entry point the Landscape page calls: loss planes (toy/gradient.py), Hessians
    (toy/hessian.py), Adam's rebuilt states and the block spectra; torch._dynamo least of all."""
    code = ("import sys, numpy as np\nfrom loopviz import landscape as L\nfrom loopviz.config import RunConfig\n"
            "from loopviz.toy.training import train\nc = RunConfig(epochs=3, hessian_every=1)\n"
            "thetas = np.stack([r.theta for r in train(c)])\ne = np.arange(len(thetas))\nj = c.to_json()\n"
            "L.surface_view_of(j, {'Single-Attn': thetas, 'Looped-Attn': thetas[::-1]}, 'pca', 5)\n"
            "L.curvature_series_of(j, thetas, e, 1)\nL.block_spectra_of(j, thetas[-1], 2)\n" + TORCH_LOADED)
    assert fresh(code).splitlines()[-1] == "[]"
