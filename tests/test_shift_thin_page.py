"""The SHIFT page stays thin (issue #13): no torch, no training module; the science it shows
comes from loopviz.shift, which loads torch only when it differentiates."""
import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from loopviz import shift
from loopviz.config import RunConfig
from loopviz.toy import models
from loopviz.toy.training import prepare

REPO = Path(__file__).resolve().parent.parent
CONFIG = RunConfig(d=3, loops=3)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {node.module or ""} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_shift_page_imports_neither_torch_nor_training():
    names = imported_modules(REPO / "app_pages" / "shift.py")
    assert "loopviz.shift" in names
    assert not [n for n in names if n == "torch" or n.startswith("torch.") or "toy.training" in n]


def test_loopviz_shift_imports_without_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, loopviz.shift; print('torch' in sys.modules)"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_json_entry_points_equal_the_problem_ones():
    theta = models.init_weights(CONFIG.d, 0.5, 3)
    problem = prepare(CONFIG)
    assert shift.switch_jump_of(CONFIG.to_json(), theta) == shift.switch_jump(problem, theta, CONFIG.loops)
    thetas = np.stack([theta, 2 * theta])
    a = shift.theorem3_of(CONFIG.to_json(), [0, 1], thetas)
    b = shift.theorem3_table(problem, [0, 1], thetas, CONFIG.loops)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_assumption4_reads_the_weights_as_the_model_lays_them_out():
    theta = models.init_weights(CONFIG.d, 0.5, 4)
    W_K, W_Q, W_V, _ = (w.numpy() for w in models.unflatten(torch.as_tensor(theta), CONFIG.d))
    got = shift.assumption4_distance(theta, CONFIG.d)
    for name, W in (("K", W_K), ("Q", W_Q), ("V", W_V)):
        D = np.diag(np.diag(W))
        assert got[f"offdiag_ratio_{name}"] == np.linalg.norm(W - D, 2) / np.abs(np.diag(W)).max()
        assert got[f"negative_diag_{name}"] == np.mean(np.diag(W) < 0)
