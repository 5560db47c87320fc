"""On a CPU machine the toy trains in numpy: `python -m loopviz run` and a seed sweep never
load torch (~1.5 s of the run's start, ~280 MB), checked in a fresh interpreter as the CLI
runs them; and "auto" resolves to the CPU without asking torch where no NVIDIA driver is."""
import subprocess
import sys

import pytest

from loopviz.toy import training


def fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


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
