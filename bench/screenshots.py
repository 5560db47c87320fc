"""Screenshots of every page for README and docs/ (headless Debian Chromium + selenium).

    python bench/screenshots.py [--port 8599] [--out docs/screenshots]

Starts `streamlit run app.py` with a private run store, opens each page by clicking its
navigation link (as a person would), waits for its charts, and saves a full-width PNG.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from browser_helpers import wait_for  # noqa: E402  (the browser tests' wait: a server not up yet is "not yet")

PAGES = [("home", ""), ("spectrum", "spectrum"), ("river-valley", "river-valley"), ("landscape", "landscape"),
         ("shift", "shift"), ("length", "length"), ("algo", "algo"), ("atlas", "atlas")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8599)
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LOOPVIZ_STORE=tempfile.mkdtemp(prefix="loopviz-shots-"))
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(args.port),
                               "--server.headless", "true"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://localhost:{args.port}"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,2400",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='loopviz-chrome-')}"):
        options.add_argument(flag)
    driver = None
    try:
        wait_for(lambda: urllib.request.urlopen(f"{base}/_stcore/health").status == 200, 60)
        driver = webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)
        driver.get(base)
        for name, path in PAGES:
            if path:
                link = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f'a[href$="/{path}"]'), 60)
                link[0].click()
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"), 180)
            time.sleep(6)  # let every chart of the page draw
            errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
            driver.save_screenshot(str(out / f"{name}.png"))
            print(f"{name}: {'EXCEPTION on page' if errors else 'ok'} -> {out / (name + '.png')}")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
