"""Test-wide setup: a private run store, so tests never read or write the user's runs/."""
import os
import tempfile

# Must be set before loopviz.runs is imported anywhere (it reads it at import).
os.environ.setdefault("LOOPVIZ_STORE", tempfile.mkdtemp(prefix="loopviz-test-store-"))


import pytest  # noqa: E402


@pytest.fixture
def fresh_jobs():
    """A page test starts and ends with no background jobs (the registry is per process)."""
    from tests.apptest_helpers import fresh_registry

    fresh_registry()
    yield
    fresh_registry()


@pytest.fixture
def one_torch_thread():
    """Tiny tensors on a shared 2-core machine: one intra-op thread is much faster (docs/background.md §4).
    The algorithmic-task tests use it (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
