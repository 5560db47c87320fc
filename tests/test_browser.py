"""The main flows in a real headless Chromium (Debian's chromium + chromium-driver).

Starts the app as the README says (`python -m loopviz app`: the Streamlit server with the
pages' modules loaded beside it) on a free port with a private run store, opens the
bundled charts, starts a short run (d = 8, 20 epochs), watches its curve appear and
grow, checks that no page shows an exception, and saves screenshots. Then it drives the
app as a lecturer would: clicks through the navigation from a shared link, presses reset,
scrubs the SHIFT slider, plays the spectrum, and uses presenter mode, checking the URL,
the sidebar values, the server's jobs and the absence of exception boxes after each step.
Last, the server's log must hold no warnings. Prints the measured times (reported, not
asserted as limits).
"""
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.browser_helpers import app_server, headless_chromium, require_chromium, wait_for

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
SERVER_LOG = Path(tempfile.mkdtemp(prefix="loopviz-browser-log-")) / "server.log"

require_chromium()

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    started = time.time()
    with app_server(SERVER_LOG, "loopviz-browser") as url:
        yield url, started, time.time() - started


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(1400, 2200, "loopviz-chromium-")
    yield driver
    driver.quit()


def plot_count(driver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))


def first_curve_length(driver, title_part: str = "train (solid)") -> int:
    """Points in the first trace of the first Plotly chart whose title holds `title_part`
    (the accuracy chart), 0 when there is none yet."""
    # _fullData holds the decoded arrays (plotly sends data base64-encoded).
    return driver.execute_script(
        "const p = [...document.querySelectorAll('.js-plotly-plot')].find("
        "  q => q.layout && q.layout.title && String(q.layout.title.text || '').includes(arguments[0]));"
        "const d = p && (p._fullData || p.data);"
        "return (d && d.length && d[0].x) ? d[0].x.length : 0;", title_part)


def assert_no_exception(driver) -> None:
    errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not errors, errors[0].text


def test_bundled_charts_then_a_live_run(server, browser, capsys):
    url, started, healthy_after = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    requested = time.time()
    browser.get(url + "/spectrum")
    assert wait_for(lambda: plot_count(browser) >= 8, 60), "the bundled charts did not appear"
    first_paint = time.time() - started
    request_to_charts = time.time() - requested
    assert first_curve_length(browser) == 1501   # the bundled pair runs to 1500 epochs
    assert_no_exception(browser)
    browser.save_screenshot(str(ARTIFACTS / "spectrum-bundled.png"))

    # A researcher clicks a seed on the sweep scatter: the sidebar loads it.
    scatter = browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")[-1]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", scatter)
    points = scatter.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace:first-child .points path")
    rightmost = max(points, key=lambda p: p.location["x"])
    ActionChains(browser).move_to_element(rightmost).click().perform()
    assert wait_for(lambda: "No run for this configuration yet" in browser.page_source, 30), \
        "clicking a seed on the sweep did not load it"
    assert_no_exception(browser)

    browser.get(url + "/spectrum?d=8&epochs=20&hessian_every=5")
    assert wait_for(lambda: browser.find_elements(By.XPATH, "//button[contains(., 'Train')]"), 30)
    assert wait_for(lambda: "No run for this configuration yet" in browser.page_source, 30)
    clicked = time.time()
    browser.find_element(By.XPATH, "//button[contains(., 'Train')]").click()
    seen = []
    def grown():
        n = first_curve_length(browser)
        if n and (not seen or seen[-1] != n):
            seen.append(n)
        return n == 21 and "complete in" in browser.page_source and browser.page_source.count("complete in") >= 2
    assert wait_for(grown, 120, pause=0.05), f"the live run did not finish on screen; curve lengths seen: {seen}"
    first_points = time.time() - clicked
    assert seen and seen[-1] == 21
    assert_no_exception(browser)
    browser.save_screenshot(str(ARTIFACTS / "spectrum-live.png"))

    # A longer run (minibatches of 16: ~30 Adam steps an epoch; 1000 epochs train for seconds,
    # well past Train's wait for quick runs, jobs.TRAINING_WAIT) streams: the curve must be seen
    # growing, and the gaps between redraws say how fresh the chart is.
    browser.get(url + "/spectrum?d=8&epochs=1000&hessian_every=0&batch_size=16")
    train_button = "//button[contains(., 'Train') and not(@disabled)]"
    assert wait_for(lambda: "No run for this configuration yet" in browser.page_source
                    and browser.find_elements(By.XPATH, train_button), 30)
    browser.find_element(By.XPATH, train_button).click()
    growth = []
    def streamed():
        n = first_curve_length(browser)
        if n and (not growth or growth[-1][1] != n):
            growth.append((time.time(), n))
        return n == 1001
    assert wait_for(streamed, 300, pause=0.05), f"the streaming run did not finish on screen: {growth}"
    lengths = [n for _, n in growth]
    assert len(lengths) >= 3 and lengths == sorted(lengths), f"the curve did not grow: {lengths}"
    gaps = np.diff([t for t, _ in growth])
    assert_no_exception(browser)

    for path in ("", "/river-valley"):
        browser.get(url + path)
        assert wait_for(lambda: plot_count(browser) >= 1, 60), f"no chart on {path or 'home'}"
        assert_no_exception(browser)
        # The script that starts loading Plotly's chunk at once is on the page, and takes no room.
        preload = browser.execute_script(
            "return [...document.querySelectorAll('script[data-mark=\"loopviz-plotly-preload\"]')]"
            ".map(s => s.closest('.stElementContainer').getBoundingClientRect().height);")
        assert preload and all(height == 0 for height in preload), preload
    browser.save_screenshot(str(ARTIFACTS / "river-valley.png"))
    with capsys.disabled():  # the measured times belong in the test log
        print(f"\n[browser] server start → healthy {healthy_after:.2f} s; page request → bundled charts "
              f"{request_to_charts:.2f} s; server start → charts (browser launch included) {first_paint:.2f} s; "
              f"Train click → finished run's curves on screen: {first_points:.2f} s; curve lengths seen {seen}; "
              f"streaming run: {len(lengths)} redraws, median gap {np.median(gaps):.2f} s, max gap {gaps.max():.2f} s")


# --- a lecturer's clicks ------------------------------------------------------------------

def sidebar_value(driver, label: str) -> str | None:
    """The shown value of the sidebar number input labelled `label` (None when not drawn)."""
    inputs = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="stSidebar"] input[aria-label="{label}"]')
    return inputs[0].get_attribute("value") if inputs else None


def click_nav(driver, title: str) -> float:
    """Click the navigation link `title` (sidebar or top bar); the seconds until its page's
    charts and no spinner show."""
    link = driver.find_element(By.XPATH, f'//a[(@data-testid="stSidebarNavLink" or @data-testid="stTopNavLink")'
                                         f' and contains(., "{title}")]')
    clicked = time.time()
    link.click()
    return clicked


def idle(driver) -> bool:
    """The script run has ended (Streamlit shows its running icon while a run goes on)."""
    return not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidgetRunningIcon"], '
                                                     '[data-testid="stStatusWidgetRunningManIcon"]')


def wait_page(driver, title_part: str, timeout: float = 180, charts: int = 0) -> bool:
    """The page titled `title_part` is drawn: its heading, `charts` charts, and the run ended."""
    return bool(wait_for(lambda: any(title_part in h.text for h in driver.find_elements(By.TAG_NAME, "h1"))
                         and plot_count(driver) >= charts and idle(driver), timeout))


def query(driver) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit
    return dict(parse_qsl(urlsplit(driver.current_url).query))


def jobs_line(driver) -> tuple[int, int] | None:
    """(training, queued) from the SHIFT page's "Server jobs" caption."""
    match = re.search(r"Server jobs: (\d+) training, (\d+) queued", driver.find_element(By.TAG_NAME, "body").text)
    return (int(match[1]), int(match[2])) if match else None


def chart_titles(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.js-plotly-plot')].map("
        "  p => String((p.layout && p.layout.title && p.layout.title.text) || ''));")


def shift_curve_at(driver, epoch: int) -> bool:
    """The SHIFT chart shows a SHIFT curve and the switch line at `epoch`."""
    return driver.execute_script(
        "const p = [...document.querySelectorAll('.js-plotly-plot')].find("
        "  q => q.layout && q.layout.title && String(q.layout.title.text || '').includes('Accuracy on'));"
        "if (!p) return false;"
        "const names = (p._fullData || p.data).map(t => t.name);"
        "const notes = (p.layout.annotations || []).map(a => a.text);"
        "return names.includes('SHIFT train') && notes.includes('switch at ' + arguments[0]);", epoch)



def click_if_present(browser, xpath: str, tries: int = 10) -> float | None:
    """Click the element if it is (still) there and clickable, and return when; None if it is gone.
    The live fragment redraws every second, so a found element can go stale before the click lands."""
    from selenium.common.exceptions import (ElementClickInterceptedException, ElementNotInteractableException)

    for _ in range(tries):
        found = browser.find_elements(By.XPATH, xpath)
        if not found:
            return None
        try:
            clicked = time.time()
            found[0].click()
            return clicked
        except (StaleElementReferenceException, ElementNotInteractableException, ElementClickInterceptedException):
            time.sleep(0.2)  # redrawn, or briefly covered/disabled while the fragment reruns
    return None


def test_a_lecturer_clicks_through_scrubs_and_plays(server, browser, capsys):
    url, _, _ = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    timings = {}

    # Runs an earlier test started may still train: they are the baseline of the job counts below.
    browser.get(url + "/shift")
    assert wait_for(lambda: jobs_line(browser) is not None, 120)
    others = jobs_line(browser)[0]

    # A shared link with one knob set; then every page by clicking the navigation.
    browser.get(url + "/spectrum?seed=7&epochs=40")
    assert wait_page(browser, "Spectrum evolution"), "the shared link did not open"
    for title, heading in (("SHIFT", "SHIFT"), ("Length generalisation", "Length generalisation"),
                           ("Spectrum evolution", "Spectrum evolution"), ("River valleys", "River valleys"),
                           ("SHIFT", "SHIFT")):
        clicked = click_nav(browser, title)
        assert wait_page(browser, heading), f"{title} did not open by its link"
        timings.setdefault("page switch", []).append(time.time() - clicked)
        assert_no_exception(browser)
        if title != "River valleys":
            assert wait_for(lambda: query(browser).get("seed") == "7" and query(browser).get("epochs") == "40", 10), \
                f"{title}: the URL lost the configuration: {browser.current_url}"
            assert wait_for(lambda: sidebar_value(browser, "weight seed") == "7"
                            and sidebar_value(browser, "epochs") == "40", 10), title
            # untouched knobs keep their defaults
            assert wait_for(lambda: sidebar_value(browser, "embedding width d") == "4", 10), title
    assert (jobs_line(browser) or (0, 0))[1] == 0  # seed 7 has no stored Single run: nothing was started

    # Reset: the defaults, at once, without an exception; the URL is clean.
    browser.find_element(By.XPATH, '//button[contains(., "reset to defaults")]').click()
    assert wait_for(lambda: sidebar_value(browser, "weight seed") == "50", 20), "reset did not restore the seed"
    assert wait_page(browser, "SHIFT")
    assert_no_exception(browser)
    assert wait_for(lambda: "seed" not in query(browser) and "epochs" not in query(browser), 10), browser.current_url
    # The default SHIFT run is bundled: no SHIFT job (an earlier test's run may still be training).
    assert wait_for(lambda: jobs_line(browser) is not None and jobs_line(browser)[1] == 0, 30), jobs_line(browser)
    assert not re.search(r"SHIFT: (epoch|queued)", browser.find_element(By.TAG_NAME, "body").text)
    assert query(browser).get("shift_epoch") is None  # SCP's epoch is the slider's default

    # Scrub the SHIFT slider: five quick moves; only the last position keeps a job.
    def slider_value() -> int:
        return int(browser.find_element(By.CSS_SELECTOR, 'input[type="range"][aria-label="shift epoch"]')
                   .get_attribute("value"))

    thumb = browser.find_element(By.CSS_SELECTOR, 'input[type="range"][aria-label="shift epoch"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", thumb)
    start = slider_value()
    moved = None
    for _ in range(5):
        ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
        moved = time.time()
        time.sleep(0.3)
        assert_no_exception(browser)
    target = slider_value()
    assert target == start + 5, (start, target)
    assert wait_for(lambda: query(browser).get("shift_epoch") == str(target), 10), browser.current_url
    assert wait_for(lambda: shift_curve_at(browser, target), 60), "the last slider position's curve did not appear"
    timings["slider → first new curve"] = time.time() - moved
    # Superseded runs are cancelled at once (none queued, none training); they may take a few
    # seconds to reach their next cancellation check ("stopping"), then end.
    assert wait_for(lambda: (jobs_line(browser) or (9, 9))[1] == 0 and (jobs_line(browser) or (9, 9))[0] <= others + 1,
                    20), \
        f"stale SHIFT jobs: {jobs_line(browser)}"
    assert wait_for(lambda: "stopping" not in browser.find_element(By.TAG_NAME, "body").text, 120), \
        "superseded runs did not stop"
    assert "queued (" not in browser.find_element(By.TAG_NAME, "body").text
    assert_no_exception(browser)
    browser.save_screenshot(str(ARTIFACTS / "shift-scrubbed.png"))
    # Cancel answers at once.
    clicked = click_if_present(browser, '//button[contains(., "Cancel this SHIFT run")]')
    if clicked is not None:
        # Stage II now trains in about a second: the run may finish before the click lands, and
        # then the page must say it completed rather than pretend a cancel happened.
        feedback = wait_for(lambda: re.search(r"cancelling…|cancelled|SHIFT: complete",
                                              browser.find_element(By.TAG_NAME, "body").text), 20)
        assert feedback, "neither cancel feedback nor completion after clicking Cancel"
        timings["Cancel → feedback"] = time.time() - clicked
        if feedback.group(0) != "SHIFT: complete":
            assert wait_for(lambda: "SHIFT: cancelled" in browser.find_element(By.TAG_NAME, "body").text, 60), \
                "cancel did not stop the SHIFT run"

    # The spectrum's one epoch cursor: a URL epoch, then ▶ play from it.
    browser.get(url + "/spectrum?epoch=123")
    assert wait_page(browser, "Spectrum evolution")
    assert wait_for(lambda: sum("eigenspectrum at epoch 123 " in t for t in chart_titles(browser)) == 2, 30)
    browser.find_element(By.XPATH, '//button[contains(., "play from epoch 123")]').click()
    def played():
        epochs = {int(m) for t in chart_titles(browser) for m in re.findall(r"eigenspectrum at epoch (\d+) ", t)}
        return len(epochs) == 1 and epochs.pop() > 140 and int(query(browser).get("epoch", 0)) > 140
    assert wait_for(played, 30), f"play did not move every panel: {chart_titles(browser)} {browser.current_url}"
    browser.find_element(By.XPATH, '//button[contains(., "pause")]').click()
    assert wait_for(lambda: browser.find_elements(By.XPATH, '//button[contains(., "play from epoch")]'), 30)
    assert_no_exception(browser)
    heading = browser.find_element(By.XPATH, '//h3[contains(., "The eigenspectrum through training")]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", heading)
    time.sleep(1)
    browser.save_screenshot(str(ARTIFACTS / "spectrum-cursor.png"))

    # Presenter mode: no sidebar, navigation on top, kept across pages.
    browser.get(url + "/?present=1")
    assert wait_page(browser, "why looped transformers")
    for title, heading in (("SHIFT", "SHIFT"), ("River valleys", "River valleys")):
        click_nav(browser, title)
        assert wait_page(browser, heading), title
        assert query(browser).get("present") == "1", browser.current_url
        sidebars = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"]')
        assert not sidebars or not sidebars[0].is_displayed()
        assert not browser.find_elements(By.XPATH, '//button[contains(., "Train")]')
        assert_no_exception(browser)
    browser.save_screenshot(str(ARTIFACTS / "presenter-river-valley.png"))
    with capsys.disabled():
        switches = timings.pop("page switch")
        print(f"\n[browser] page switch by link: median {np.median(switches):.2f} s, max {max(switches):.2f} s; " +
              "; ".join(f"{k}: {v:.2f} s" for k, v in timings.items()))


def test_the_algorithmic_tasks_page_trains_live_and_cancels(server, browser, capsys):
    """Train on the Algorithmic tasks page (cpu preset) starts three server jobs whose progress
    shows live; Cancel stops them all (nothing is written). The click lands in step 0's
    checkpoint, whose Hessian Lanczos once ignored it (over 60 s under load; now one product)."""
    url, _, _ = server
    browser.get(url + "/algo")
    assert wait_page(browser, "Algorithmic tasks", charts=5)
    body = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
    button = browser.find_element(By.XPATH, '//button[contains(., "Train Single-Attn + Looped-Attn + SHIFT")]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    assert wait_for(lambda: re.search(r"Single-Attn: step \d+/4000", body()), 120), body()[-1500:]
    assert "SHIFT: queued" in body() or "SHIFT: step" in body()
    assert_no_exception(browser)
    assert click_if_present(browser, '//button[contains(., "Cancel")]') is not None
    clicked = time.time()
    assert wait_for(lambda: all(f"{m}: cancelled" in body() for m in ("Single-Attn", "Looped-Attn", "SHIFT")), 60), \
        body()[-1500:]
    assert_no_exception(browser)
    with capsys.disabled():  # reported, not asserted: the page's redraw every second is part of it
        print(f"\n[browser] algo Cancel → all three cancelled on screen {time.time() - clicked:.1f} s")


NARROW_CHECK = """
const hit = (a, b) => a && b && a.width > 0 && b.width > 0 && a.left < b.right - 1 && b.left < a.right - 1
                      && a.top < b.bottom - 1 && b.top < a.bottom - 1;
const box = (p, sel) => { const e = p.querySelector(sel); return e ? e.getBoundingClientRect() : null; };
return [...document.querySelectorAll('.js-plotly-plot')].map(p => {
  const svg = box(p, '.main-svg'), title = box(p, '.gtitle'), legend = box(p, '.legend .bg');
  const tools = box(p, '.modebar');
  return {title: (p.querySelector('.gtitle') || {}).textContent || '', width: Math.round(svg.width),
          titleCut: !!title && (title.right > svg.right + 1 || title.left < svg.left - 1),
          titleUnderTools: !!title && !!tools && title.right > tools.left + 2 && title.top < tools.bottom
                           && tools.top < title.bottom,
          legendOnAxisTitle: !!hit(legend, box(p, '.xtitle')), legendOnPlot: !!hit(legend, box(p, '.nsewdrag')),
          legendOutside: !!legend && legend.bottom > svg.bottom + 1};
});
"""


def test_a_narrow_window_with_the_sidebar_open_keeps_charts_legible(server, browser):
    """QA: in an 800 px window with the sidebar open, paired charts shrank to ~200 px, legends
    wrapped into a column onto the x-axis title and titles were cut. Now the pairs stack, each
    chart keeps its full title, and no legend touches its axis title or plot."""
    from loopviz.ui.present import MIN_CHART_PX

    url, _, _ = server
    browser.set_window_size(800, 900)
    try:
        browser.get(url + "/shift")
        assert wait_page(browser, "SHIFT", charts=7)
        time.sleep(1)  # the last charts' first layout
        assert browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]').size["width"] > 200  # open
        charts = browser.execute_script(NARROW_CHECK)
        assert len(charts) >= 7
        bad = [c for c in charts if c["width"] < MIN_CHART_PX or c["titleCut"] or c["titleUnderTools"]
               or c["legendOnAxisTitle"]
               or c["legendOnPlot"] or c["legendOutside"]]
        assert not bad, bad
        assert_no_exception(browser)
    finally:
        browser.set_window_size(1400, 2200)


def test_a_run_downloads_as_files_made_when_clicked(server, browser, tmp_path):
    """The Spectrum page's download buttons make their files when clicked (not at every rerun
    or ▶ play frame): a click saves the bundled run's records and arrays, whole."""
    from loopviz.config import RunConfig
    from loopviz.runs.store import RunStore

    url, _, _ = server
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.get(url + "/spectrum")
    assert wait_page(browser, "Spectrum evolution")
    for label in ("Single-Attn records (CSV)", "Looped-Attn arrays (NPZ)"):
        button = wait_for(lambda: browser.find_elements(By.XPATH, f'//button[contains(., "{label}")]'), 60)[0]
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        button.click()
    assert wait_for(lambda: sorted(p.suffix for p in tmp_path.iterdir()) == [".csv", ".npz"], 30), \
        list(tmp_path.iterdir())
    store = RunStore()
    single, looped = (store.load(RunConfig(model=m)) for m in ("single", "looped"))
    records = pd.read_csv(next(tmp_path.glob("*.csv")))
    assert list(records.columns) == list(single.records.columns) and len(records) == len(single.records)
    np.testing.assert_array_equal(records["acc_high"], single.records["acc_high"])
    with np.load(next(tmp_path.glob("*.npz")), allow_pickle=False) as arrays:
        np.testing.assert_array_equal(arrays["eigenvalues"], looped.eigenvalues)
    assert_no_exception(browser)


def test_the_server_log_holds_no_warnings(server):
    """Runs after the flows above (same server): any warning or traceback they caused fails here."""
    lines = SERVER_LOG.read_text().splitlines()
    noise = [line for line in lines if re.search(r"WARNING|ERROR|Traceback|was created with a default value", line)]
    assert not noise, "\n".join(noise[:20])
    # Streamlit logs at INFO when a polling fragment's last timer fires after a page switch or a
    # full rerun replaced it; one fragment id per live panel keeps this rare (it was every run's end).
    stale = [line for line in lines if "does not exist anymore" in line]
    assert len(stale) <= 3, "\n".join(stale)
