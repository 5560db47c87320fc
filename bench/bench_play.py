"""Benchmark: ▶ play on the Spectrum page as a lecturer sees it, in a real headless Chromium:
how often a new frame (both eigenspectrum panels at the next epoch) reaches the screen.

    python bench/bench_play.py [--seconds 12] [--width 1280]

The app as the README starts it (`python -m loopviz app`, a private run store), the Spectrum
page at the default configuration (the bundled runs) from epoch 0; ▶ play clicked, then the
DOM polled every 20 ms: a frame is the moment both eigenspectrum panels (outside any stale
element) show an epoch they did not show before. Reported: frames per second and the
median / 90th-percentile interval between frames, against play's own tick (the fragment's
PLAY_TICK, the floor a frame cannot beat), with the CPU time per second of play of the server
and of Chromium's processes (/proc), and the load average (2 shared cores).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import app_server, headless_chromium, wait_for  # noqa: E402
from timing import load_note  # noqa: E402

# The epochs the two eigenspectrum panels show now (fresh elements only).
EPOCHS_JS = """
const fresh = e => !e.closest('[data-stale="true"]');
return [...document.querySelectorAll('.js-plotly-plot')].filter(fresh)
  .map(p => String((p.layout && p.layout.title && p.layout.title.text) || ''))
  .map(t => (t.match(/eigenspectrum at epoch (\\d+) /) || [])[1]).filter(x => x !== undefined).map(Number);
"""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes (their children not included; a gone one counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def pids_with(*words: bytes) -> list[int]:
    """Processes whose command line holds every one of `words`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if all(w in cmd for w in words):
                found.append(int(entry.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    with app_server(Path(tempfile.mkdtemp(prefix="bench-play-")) / "server.log", "bench-play") as url:
        server = pids_with(b"loopviz", b"app", url.rsplit(":", 1)[1].encode())
        browser = headless_chromium(args.width, 1000, "bench-play-")
        try:
            browser.get(url + "/spectrum?epoch=0")
            assert wait_for(lambda: browser.execute_script(EPOCHS_JS) == [0, 0], 120), "the spectra did not draw"
            time.sleep(2)
            play = browser.find_element(By.XPATH, '//button[contains(., "play from epoch 0")]')
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", play)
            chromium = pids_with(b"chromium", b"bench-play-")   # the page's renderer is up by now
            cpu0, start = (cpu_seconds(server), cpu_seconds(chromium)), time.perf_counter()
            play.click()
            frames, seen = [], {0}
            while time.perf_counter() - start < args.seconds:
                epochs = browser.execute_script(EPOCHS_JS)
                if len(epochs) == 2 and epochs[0] == epochs[1] and epochs[0] not in seen:
                    seen.add(epochs[0])
                    frames.append(time.perf_counter() - start)
                time.sleep(0.02)
            cpu = cpu_seconds(server) - cpu0[0], cpu_seconds(chromium) - cpu0[1]
            elapsed = time.perf_counter() - start
        finally:
            browser.quit()
    tick = float(re.search(r"^PLAY_TICK = ([0-9.]+)", (REPO / "app_pages" / "spectrum.py").read_text(),
                           re.MULTILINE).group(1))
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    if len(gaps) < 2:
        raise SystemExit(f"only {len(frames)} frames in {elapsed:.1f} s")
    p90 = sorted(gaps)[int(0.9 * (len(gaps) - 1))]
    print(f"▶ play: {len(frames)} frames in {elapsed:.1f} s = {len(frames) / elapsed:.2f} frames/s; interval median "
          f"{statistics.median(gaps):.2f} s (×{statistics.median(gaps) / tick:.2f} the tick, {tick:g} s), 90th "
          f"percentile {p90:.2f} s; CPU per second of play: server {cpu[0] / elapsed:.2f} s, Chromium "
          f"{cpu[1] / elapsed:.2f} s; {load_note()}")


if __name__ == "__main__":
    main()
