"""Benchmark: a SHIFT slider move as a person sees it, in a real headless Chromium (issue #12's
goal: the new curves complete ≤ 1 s after the key).

    python bench/bench_slider.py [--moves 5] [--width 1280]

The app as the README starts it (`python -m loopviz app`, a private run store), the SHIFT page
at the default configuration (the bundled runs), the slider focused. Each move is one → key
onto an epoch no run exists for (Stage II trains from the stored Single run's state, its
spectra in the server's warm workers); timed from the key, polling the DOM every 20 ms:

- "accuracy": the accuracy chart holds the new position's complete SHIFT curve (every epoch,
  the switch annotation at the new epoch), outside any stale element;
- "entropy": the entropy chart holds every spectrum of the new run, its switch line at the new
  epoch.

The floor, in the same server and browser: ← back onto the position trained just before (its
run complete in the server): the same two charts redrawn with no training at all: what
Streamlit's rerun, the websocket and Plotly cost. Min and median over the moves; the load
average beside them (2 shared cores).
"""
from __future__ import annotations

import argparse
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

POLL = 0.02
SLIDER = 'input[type="range"][aria-label="shift epoch"]'

# [SHIFT train points, switch annotation at the epoch?, entropy points, entropy switch at the epoch?]
STATE_JS = """
const epoch = arguments[0];
const fresh = e => !e.closest('[data-stale="true"]');
const title = p => String((p.layout && p.layout.title && p.layout.title.text) || '');
const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(fresh)
                .filter(p => p._fullData && p.querySelector('.trace'));
const acc = plots.find(p => title(p).includes('Accuracy on'));
const ent = plots.find(p => title(p).includes('SHIFT: entropy'));
let out = [0, false, 0, false];
if (acc) {
  const t = acc._fullData.find(t => t.name === 'SHIFT train');
  out[0] = t ? t.x.length : 0;
  out[1] = (acc.layout.annotations || []).some(a => String(a.text) === 'switch at ' + epoch);
}
if (ent) {
  out[2] = Math.max(0, ...ent._fullData.map(t => (t.x || []).length));
  out[3] = (ent.layout.shapes || []).some(s => Number(s.x0) === epoch);
}
return out;
"""


def timed(browser, key: str, epoch: int, full: tuple[int, int], timeout: float = 60.0) -> tuple[float, float]:
    """Press `key` on the focused slider; seconds until the accuracy chart, then the entropy
    chart, show the run at `epoch` complete (`full`: their point counts)."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).send_keys(key).perform()
    start = time.perf_counter()
    acc = ent = None
    while time.perf_counter() - start < timeout and (acc is None or ent is None):
        n_acc, at_acc, n_ent, at_ent = browser.execute_script(STATE_JS, epoch)
        now = time.perf_counter() - start
        if acc is None and at_acc and n_acc >= full[0]:
            acc = now
        if ent is None and at_ent and n_ent >= full[1]:
            ent = now
        time.sleep(POLL)
    if acc is None or ent is None:
        raise SystemExit(f"epoch {epoch}: the curves did not complete in {timeout:.0f} s "
                         f"(accuracy {acc}, entropy {ent})")
    return acc, ent


def settle(browser) -> None:
    """Until the page's script run and live fragment have stopped (no training, no polling)."""
    running = "return !!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
    quiet_since = time.time()
    while time.time() - quiet_since < 1.5:
        if browser.execute_script(running):
            quiet_since = time.time()
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from loopviz.config import RunConfig

    full = (RunConfig().epochs + 1, RunConfig().epochs + 1)
    fresh, floor = [], []
    with app_server(Path(tempfile.mkdtemp(prefix="bench-slider-")) / "server.log", "bench-slider") as url:
        browser = headless_chromium(args.width, 1000, "bench-slider-")
        try:
            browser.get(url + "/shift")
            thumb = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, SLIDER), 120)[0]
            epoch = int(thumb.get_attribute("value"))
            assert wait_for(lambda: browser.execute_script(STATE_JS, epoch)[2] >= full[1], 60), \
                "the bundled run did not draw"
            settle(browser)
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", thumb)
            for _ in range(args.moves):
                epoch += 1
                fresh.append(timed(browser, Keys.ARROW_RIGHT, epoch, full))
                settle(browser)
                epoch -= 1
                floor.append(timed(browser, Keys.ARROW_LEFT, epoch, full))
                settle(browser)
                epoch += 1
                browser.find_element(By.CSS_SELECTOR, SLIDER).send_keys(
                    Keys.ARROW_RIGHT)   # back onto the trained position, so the next → is new again
                settle(browser)
        finally:
            browser.quit()

    def line(name: str, times: list[tuple[float, float]]) -> str:
        acc, ent = [t[0] for t in times], [t[1] for t in times]
        return (f"{name}: accuracy min {min(acc):.2f} / median {statistics.median(acc):.2f} s, entropy min "
                f"{min(ent):.2f} / median {statistics.median(ent):.2f} s")

    print("each move (accuracy, entropy) s: new " + ", ".join(f"({a:.2f}, {e:.2f})" for a, e in fresh)
          + " | floor " + ", ".join(f"({a:.2f}, {e:.2f})" for a, e in floor))
    print(line("new position (Stage II trained)", fresh) + " (goal ≤ 1 s)")
    print(line("floor: a trained position redrawn", floor))
    ratio = [statistics.median(t[i] for t in fresh) / statistics.median(t[i] for t in floor) for i in (0, 1)]
    print(f"median ratio to the floor: accuracy ×{ratio[0]:.2f}, entropy ×{ratio[1]:.2f}; {load_note()}")


if __name__ == "__main__":
    main()
