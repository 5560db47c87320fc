"""What the browser tests share: the app on a free port, Debian's Chromium (or a skip), a
headless driver, waiting."""
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def require_chromium() -> None:
    """Skip the calling test module without chromium + chromedriver; fail instead where the
    environment says a browser is required (CI sets LOOPVIZ_REQUIRE_BROWSER)."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("LOOPVIZ_REQUIRE_BROWSER"):
            raise RuntimeError("chromium and chromedriver are required here (apt-get install chromium chromium-driver)")
        pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)


def headless_chromium(width: int, height: int, profile_prefix: str):
    """A headless Chromium with a fresh profile, the background services off (they add noise
    to timings and reach for the network)."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={width},{height}",
                 f"--user-data-dir={tempfile.mkdtemp(prefix=profile_prefix)}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))


def wait_for(predicate, timeout: float, pause: float = 0.1):
    """predicate's first truthy value within `timeout` seconds, else None; a server not listening
    yet (OSError) or an element Streamlit replaced while it was read counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except (OSError, StaleElementReferenceException):
            value = None
        if value:
            return value
        time.sleep(pause)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(log_path: Path, store_prefix: str):
    """The app as the README starts it (`python -m loopviz app`) on a free local port, with a
    private run store and algo run folder, its output in `log_path`; yields its URL once
    healthy and stops it afterwards."""
    port = free_port()
    env = dict(os.environ, LOOPVIZ_STORE=tempfile.mkdtemp(prefix=f"{store_prefix}-store-"),
               LOOPVIZ_ALGO_RUNS=tempfile.mkdtemp(prefix=f"{store_prefix}-algo-"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "loopviz", "app", "--port", str(port), "--address", "127.0.0.1"],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_for(lambda: urllib.request.urlopen(url + "/_stcore/health", timeout=1).status == 200, 60,
                            pause=0.2):
                proc.kill()
                pytest.fail("the Streamlit server did not become healthy in 60 s")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)
