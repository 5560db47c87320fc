"""What a lecturer and a researcher meet on screen, in a real headless Chromium (Debian's chromium
+ chromium-driver): every page in an 800 × 900 window (sidebar open) and in presenter mode at
1280 × 720, checked for text drawn over other text inside every chart (legend, titles, annotations,
tick labels, colour bar, toolbar) or cut at its edge, for exception boxes and for "None" / "nan"
on screen; then the inputs a person gets wrong: a number typed out of its knob's range, and bad
URL parameters. Last, the server's log holds no warnings.
"""
import tempfile
import time
from pathlib import Path

import pytest

from tests.browser_helpers import app_server, headless_chromium, require_chromium, wait_for

REPO = Path(__file__).resolve().parent.parent
require_chromium()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PAGES = ("", "spectrum", "river-valley", "landscape", "shift", "length", "atlas", "algo")
LOG = Path(tempfile.mkdtemp(prefix="loopviz-screen-log-")) / "server.log"

# Inside each Plotly chart: the boxes of its texts (legend, title, annotations, axis titles, each
# tick label, colour bar, toolbar). Two boxes of different kinds that overlap by more than 2 px,
# or a box beyond the chart's edge, is text a reader cannot read.
OVERLAPS = """
const out = [];
[...document.querySelectorAll('.js-plotly-plot')].forEach((p, n) => {
  const title = String((p.layout && p.layout.title && p.layout.title.text) || ('chart ' + n)).slice(0, 60);
  const items = [];
  const add = (el, kind) => {
    const r = el.getBoundingClientRect();
    if (r.width >= 1 && r.height >= 1) items.push({kind, text: (el.textContent || kind).trim().slice(0, 40), r});
  };
  p.querySelectorAll('g.legend').forEach(el => add(el, 'legend'));
  p.querySelectorAll('.annotation-text-g text').forEach(el => add(el, 'annotation'));
  p.querySelectorAll('.g-gtitle text').forEach(el => add(el, 'title'));
  p.querySelectorAll('[class^="g-x"][class$="title"] text').forEach(el => add(el, 'x title'));
  p.querySelectorAll('[class^="g-y"][class$="title"] text').forEach(el => add(el, 'y title'));
  p.querySelectorAll('.xaxislayer-above, .yaxislayer-above').forEach((layer, i) =>
    layer.querySelectorAll('text').forEach(el => add(el, 'ticks ' + i)));
  p.querySelectorAll('.colorbar').forEach(el => add(el, 'colour bar'));
  p.querySelectorAll('.modebar').forEach(el => add(el, 'toolbar'));
  p.querySelectorAll('.draglayer .nsewdrag').forEach(el => add(el, 'plot area'));   // against the toolbar only
  const edge = p.getBoundingClientRect();
  items.forEach((a, i) => {
    if (a.r.right > edge.right + 1 || a.r.left < edge.left - 1) out.push(`${title}: ${a.kind} "${a.text}" cut`);
    items.slice(i + 1).forEach(b => {
      if (a.kind === b.kind) return;
      if ((a.kind === 'plot area' || b.kind === 'plot area') && a.kind !== 'toolbar' && b.kind !== 'toolbar') return;
      const x = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const y = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (x > 2 && y > 2) out.push(`${title}: ${a.kind} "${a.text}" on ${b.kind} "${b.text}"`);
    });
  });
});
return out;
"""


@pytest.fixture(scope="module")
def url():
    with app_server(LOG, "loopviz-screen") as base:
        yield base


@pytest.fixture(scope="module")
def driver():
    chrome = headless_chromium(800, 900, "loopviz-screen-chromium-")
    yield chrome
    chrome.quit()


def settled(driver, timeout: float = 120) -> None:
    """The script run has ended and the charts have stopped changing for a second."""
    seen = []

    def still() -> bool:
        running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidgetRunningIcon"], '
                                                        '[data-testid="stStatusWidgetRunningManIcon"]')
        count = len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
        seen.append((running == [], count))
        return len(seen) >= 6 and all(s == (True, count) for s in seen[-6:]) and count > 0
    assert wait_for(still, timeout), f"the page did not settle: {seen[-6:]}"


# A metric's label or value cut short with an ellipsis: Streamlit keeps both on one line in a
# box that clips; the text (an inline element) is wider than that box.
CUT_METRICS = """
return [...document.querySelectorAll('[data-testid="stMetricLabel"], [data-testid="stMetricValue"]')]
  .filter(m => { const t = m.querySelector('p') || m.querySelector('div > div') || m;
                 const box = t.closest('.stMarkdownEllipsis') || t.parentElement;
                 return t.getBoundingClientRect().width > box.getBoundingClientRect().width + 1; })
  .map(m => 'metric cut: "' + m.textContent.trim() + '"');
"""


# A multiselect's chosen values that run past its box (it scrolls them sideways, out of sight).
CUT_CHIPS = """
return [...document.querySelectorAll('[data-testid="stMultiSelectTagsContainer"]')]
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .map(box => 'multiselect values out of sight: "' + box.textContent + '"');
"""

# The atlas map's squares (scatter markers sized in pixels): two that overlap hide a cell's numbers.
TOUCHING_SQUARES = """
const map = document.querySelector('.js-plotly-plot');
const boxes = [...map.querySelectorAll('.scatterlayer .points path')].map(el => el.getBoundingClientRect());
const out = [];
boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
  const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  if (x > 0 && y > 0) out.push(`atlas squares overlap by ${Math.round(x)} × ${Math.round(y)} px`);
}));
return boxes.length ? out : ['no atlas squares drawn'];
"""


def screen_faults(driver) -> list[str]:
    """Overlapping or cut chart text, cut metrics, exception boxes, and 'None' / 'nan' words."""
    faults = list(driver.execute_script(OVERLAPS)) + list(driver.execute_script(CUT_CHIPS))
    faults += list(driver.execute_script(CUT_METRICS))
    faults += [f"exception: {e.text[:200]}" for e in driver.find_elements(By.CSS_SELECTOR,
                                                                         '[data-testid="stException"]')]
    words = driver.find_element(By.TAG_NAME, "body").text.split()
    faults += [f"'{w}' on screen" for w in words if w.strip(".,;:()'\"") in ("None", "nan", "NaN", "undefined")]
    return faults


@pytest.mark.parametrize("size, suffix", [((800, 900), ""), ((1280, 720), "?present=1")],
                         ids=["800px-sidebar-open", "presenter-1280px"])
def test_every_page_reads_cleanly(url, driver, size, suffix):
    driver.set_window_size(*size)
    faults = []
    for page in PAGES:
        driver.get(f"{url}/{page}{suffix}")
        settled(driver)
        time.sleep(1)   # Plotly's last relayout after the charts' widths settle
        faults += [f"/{page}{suffix}: {f}" for f in screen_faults(driver)]
        if page == "atlas":
            faults += list(driver.execute_script(TOUCHING_SQUARES))
    assert not faults, "\n".join(faults)


def number_field(driver, label: str):
    return driver.find_element(By.CSS_SELECTOR, f'input[aria-label="{label}"]')


def test_a_number_typed_out_of_range_is_named_and_not_applied(url, driver):
    """QA: typing 50 into 'embedding width d' (2–32) left a red outline, the charts unchanged and
    no word (Streamlit's reason hid in a tooltip)."""
    driver.set_window_size(1280, 900)
    driver.get(url + "/spectrum")
    settled(driver)
    field = number_field(driver, "embedding width d")
    before = field.get_attribute("value")
    field.send_keys(Keys.CONTROL, "a")   # a modifier stays down to the end of its send_keys call
    field.send_keys("50", Keys.ENTER)
    note = wait_for(lambda: [a.text for a in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]')
                             if "must be between" in a.text], 30)
    assert note and len(note) == 1, note
    assert "embedding width d" in note[0] and "2 and 32" in note[0] and "50" in note[0], note
    assert wait_for(lambda: number_field(driver, "embedding width d").get_attribute("value") == before, 10)
    assert "d=50" not in driver.current_url
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def test_bad_url_parameters_are_named_and_the_page_still_draws(url, driver):
    driver.set_window_size(1280, 900)
    driver.get(url + "/spectrum?epoch=abc&d=999")
    settled(driver)
    alerts = [a.text for a in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]')]
    assert any("epoch='abc'" in a for a in alerts), alerts
    assert len([a for a in alerts if "999" in a]) == 1, alerts
    assert number_field(driver, "embedding width d").get_attribute("value") != "999"
    assert not screen_faults(driver)


def test_the_server_log_holds_no_warnings(url):
    """Runs after the steps above (same server)."""
    lines = LOG.read_text().splitlines()
    noise = [line for line in lines if "WARNING" in line or "ERROR" in line or "Traceback" in line]
    assert not noise, "\n".join(noise[:20])


def test_a_clicked_atlas_cell_shows_its_share_with_its_interval(url, driver):
    """A researcher clicks a square of the atlas map: the cell's caption gives its share with the
    95 % interval, as the square itself does."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.set_window_size(800, 900)
    driver.get(url + "/atlas")
    settled(driver)
    chart = driver.find_element(By.CSS_SELECTOR, ".js-plotly-plot")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    square = chart.find_elements(By.CSS_SELECTOR, ".scatterlayer .points path")[0]
    ActionChains(driver).move_to_element(square).click().perform()
    caption = wait_for(lambda: [m.text for m in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMarkdown"]')
                                if m.text.startswith("Looped ahead in")], 30)
    assert caption and "95 % CI" in caption[0], caption
    assert not screen_faults(driver)
