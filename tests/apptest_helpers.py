"""Helpers for Streamlit AppTest: a fresh job registry and polling a live job to its end."""
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from loopviz.ui import jobs

REPO = Path(__file__).resolve().parent.parent


def app_test(script: str, timeout: float = 60) -> AppTest:
    """AppTest for a script path relative to the repository root."""
    return AppTest.from_file(str(REPO / script), default_timeout=timeout)


def fresh_registry() -> None:
    """Cancel and forget every job, then drop the cached registry (it is per process)."""
    jobs.registry().clear()
    jobs.registry.clear()


def run_until(at: AppTest, done, timeout: float = 120.0, pause: float = 0.5) -> AppTest:
    """AppTest does not fire run_every by itself: rerun until `done(at)` or time out."""
    deadline = time.time() + timeout
    while True:
        at.run()
        if done(at) or time.time() > deadline:
            return at
        time.sleep(pause)


def texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in at.get(kind)]


def number_input(at: AppTest, label_start: str):
    """The number input whose label starts with `label_start`."""
    return next(w for w in at.number_input if w.label.startswith(label_start))
