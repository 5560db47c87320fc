"""Pages stay thin (issue #13): they read widgets, call loopviz and draw. No page imports
torch, a training module or the job machinery; the science they show comes from modules
that load torch only inside the function that differentiates (loopviz.shift, landscape,
toy.lengthgen), so that opening a page does not load torch."""
import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from loopviz import shift
from loopviz.config import RunConfig
from loopviz.toy import models
from loopviz.toy.training import prepare

REPO = Path(__file__).resolve().parent.parent
CONFIG = RunConfig(d=3, loops=3)
PAGES = sorted((REPO / "app_pages").glob("*.py")) + [REPO / "app.py"]
# What a page must not import: torch, anything that trains, the job machinery (pages reach jobs
# through loopviz.ui.jobs, runs through loopviz.runs.format's RunData).
FORBIDDEN = ("torch", "loopviz.toy.training", "loopviz.toy.models", "loopviz.toy.hessian", "loopviz.toy.batched",
             "loopviz.algo.training", "loopviz.algo.models", "loopviz.runs.execute", "loopviz.runs.store",
             "loopviz.runs.spectrum_worker", "loopviz.runs.log")


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module (a.b.f), not a submodule
        return False


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (`from a import b` gives a and, if b is a module, a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if node.module.startswith("loopviz") and is_module(full):
                    names.add(full)
    return names


def registry_calls(path: Path) -> int:
    """How often a file reaches into the job registry (`jobs.registry()`) instead of a ui.jobs helper."""
    tree = ast.parse(path.read_text())
    return sum(isinstance(node, ast.Attribute) and node.attr == "registry" for node in ast.walk(tree))


def test_the_checks_see_a_forbidden_import_and_a_registry_call(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("import streamlit as st\n\ndef f():\n    from loopviz.toy.training import prepare\n"
                    "from loopviz import shift\nfrom loopviz.ui import jobs\njobs.registry().start(None)\n")
    assert {"loopviz.toy.training", "loopviz.shift", "streamlit"} <= imported_modules(page)
    assert registry_calls(page) == 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_imports_torch_training_or_job_internals(page):
    bad = [n for n in imported_modules(page) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"{page.name} imports {bad}: put the science behind a loopviz entry point"
    assert registry_calls(page) == 0, f"{page.name} reaches into the job registry: use a loopviz.ui.jobs helper"


def test_what_the_pages_import_loads_without_torch():
    """In a fresh interpreter, every loopviz module any page imports leaves torch unloaded."""
    modules = sorted({n for page in PAGES for n in imported_modules(page)
                      if n.startswith("loopviz") and is_module(n)})
    assert "loopviz.landscape" in modules and "loopviz.toy.lengthgen" in modules
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n" \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code, *modules], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


# The pages' entry points by configuration equal the science on the problem (SHIFT page;
# the Landscape page's are checked in test_landscape.py).
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
