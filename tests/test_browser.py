"""The main flows in a real headless Chromium (Debian's chromium + chromium-driver).

Starts `streamlit run app.py` on a free port with a private run store, opens the
bundled charts, starts a short run (d = 8, 20 epochs), watches its curve appear and
grow, checks that no page shows an exception, and saves screenshots. Prints the
measured times (reported, not asserted as limits).
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("LOOPVIZ_REQUIRE_BROWSER"):
        raise RuntimeError("chromium and chromedriver are required here (apt-get install chromium chromium-driver)")
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = dict(os.environ, LOOPVIZ_STORE=tempfile.mkdtemp(prefix="loopviz-browser-store-"))
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
                             "--server.headless", "true", "--server.address", "127.0.0.1"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the Streamlit server did not become healthy in 60 s")
    yield url, started, time.time() - started
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,2200",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='loopviz-chromium-')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def wait_for(predicate, timeout: float, pause: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    return None


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

    # A longer run (minibatches of 16: ~20 Adam steps an epoch) streams: the curve must be
    # seen growing, and the gaps between redraws say how fresh the chart is.
    browser.get(url + "/spectrum?d=8&epochs=200&hessian_every=0&batch_size=16")
    train_button = "//button[contains(., 'Train') and not(@disabled)]"
    assert wait_for(lambda: "No run for this configuration yet" in browser.page_source
                    and browser.find_elements(By.XPATH, train_button), 30)
    browser.find_element(By.XPATH, train_button).click()
    growth = []
    def streamed():
        n = first_curve_length(browser)
        if n and (not growth or growth[-1][1] != n):
            growth.append((time.time(), n))
        return n == 201
    assert wait_for(streamed, 120, pause=0.05), f"the streaming run did not finish on screen: {growth}"
    lengths = [n for _, n in growth]
    assert len(lengths) >= 3 and lengths == sorted(lengths), f"the curve did not grow: {lengths}"
    gaps = np.diff([t for t, _ in growth])
    assert_no_exception(browser)

    for path in ("", "/river-valley"):
        browser.get(url + path)
        assert wait_for(lambda: plot_count(browser) >= 1, 60), f"no chart on {path or 'home'}"
        assert_no_exception(browser)
    browser.save_screenshot(str(ARTIFACTS / "river-valley.png"))
    with capsys.disabled():  # the measured times belong in the test log
        print(f"\n[browser] server start → healthy {healthy_after:.2f} s; page request → bundled charts "
              f"{request_to_charts:.2f} s; server start → charts (browser launch included) {first_paint:.2f} s; "
              f"Train click → finished run's curves on screen: {first_points:.2f} s; curve lengths seen {seen}; "
              f"streaming run: {len(lengths)} redraws, median gap {np.median(gaps):.2f} s, max gap {gaps.max():.2f} s")
