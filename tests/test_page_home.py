"""AppTest of the entry point: the navigation, the home page, and every page reachable from it."""
import pytest

from tests.apptest_helpers import app_test

PAGES = ["app_pages/spectrum.py", "app_pages/river_valley.py", "app_pages/shift.py",
         "app_pages/length_generalisation.py"]


pytestmark = pytest.mark.usefixtures("fresh_jobs")


def test_app_opens_on_the_home_page_with_the_bundled_run():
    at = app_test("app.py").run()
    assert not at.exception
    assert "why looped transformers" in at.title[0].value
    labels = [m.label for m in at.metric]
    assert "Looped-Attn high-IC train accuracy" in labels
    assert len(at.get("plotly_chart")) == 1
    assert any("chosen because it shows the paper's shape" in w.value for w in at.warning)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_from_the_navigation(page):
    at = app_test("app.py").run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) >= 1
