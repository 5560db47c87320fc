"""Benchmark: the app server's memory with the bundled run open (issue #12's goal: ≤ 300 MB).

    python bench/bench_memory.py [--port 8630] [--pages spectrum,shift,...] [--start launcher]

Starts `streamlit run app.py` (or with --start launcher the README's `python -m loopviz app`,
which also loads every page's modules, torch excepted, beside the server; headless, a private
empty run store), opens each page in
a headless Chromium (Debian's chromium + chromedriver, as tests/test_browser.py), waits
for its charts, and reads the server's VmRSS (now) and VmHWM (peak) from /proc, plus
whether torch's shared library is mapped into the server (a page that imports torch
adds ~250 MB). First the bundled Spectrum page alone (the goal's figure), then the
other pages in turn. Memory, not time: the machine's load does not change it much.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = ("spectrum", "", "shift", "river-valley", "landscape", "length", "atlas", "algo")


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MB, and whether libtorch is mapped, for one process."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    values = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status if line.startswith(("VmRSS", "VmHWM"))}
    values["torch"] = "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8630)
    parser.add_argument("--pages", default=",".join(PAGES), help="URL paths to open in turn ('' = Home)")
    parser.add_argument("--start", choices=("streamlit", "launcher"), default="streamlit",
                        help="streamlit run app.py, or python -m loopviz app")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    env = dict(os.environ, LOOPVIZ_STORE=tempfile.mkdtemp(prefix="loopviz-memory-store-"))
    command = ([sys.executable, "-m", "loopviz", "app", "--port", str(args.port), "--address", "127.0.0.1"]
               if args.start == "launcher" else
               [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(args.port),
                "--server.headless", "true", "--server.address", "127.0.0.1"])
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}"
    driver = None
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        print(f"server started ({args.start}): {memory(server.pid)['VmRSS']:.0f} MB RSS")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,2200", f"--user-data-dir={tempfile.mkdtemp(prefix='loopviz-mem-')}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options,
                                  service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
        for path in args.pages.split(","):
            driver.get(f"{url}/{path}")
            deadline = time.time() + 120
            while time.time() < deadline and not driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"):
                time.sleep(0.2)
            time.sleep(3)  # let the script run finish (fragments, caches)
            m = memory(server.pid)
            print(f"after /{path or '(home)'}: server RSS {m['VmRSS']:.0f} MB, peak (VmHWM) {m['VmHWM']:.0f} MB, "
                  f"torch loaded: {m['torch']}" + ("  ← the goal's figure (≤ 300 MB)" if path == "spectrum" else ""))
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
