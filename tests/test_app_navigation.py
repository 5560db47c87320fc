"""The whole app (app.py with its navigation) in AppTest: state that survives page switches,
reset, presenter mode. The browser test repeats the navigation by clicking real links."""
import pytest

from loopviz.config import RunConfig
from tests.apptest_helpers import app_test, number_input

pytestmark = pytest.mark.usefixtures("fresh_jobs")


def sidebar_values(at) -> dict:
    return {w.key: w.value for w in [*at.number_input, *at.selectbox, *at.checkbox] if w.key in
            ("d", "loops", "epochs", "lr", "init_scale", "seed", "data_seed", "hessian_every")}


def test_page_switches_keep_the_configuration():
    at = app_test("app.py")
    at.query_params.update({"seed": "7", "epochs": "40"})
    at.switch_page("app_pages/spectrum.py").run()
    assert not at.exception
    for page in ("app_pages/shift.py", "app_pages/length_generalisation.py", "app_pages/home.py",
                 "app_pages/river_valley.py", "app_pages/spectrum.py", "app_pages/shift.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        if "home" in page or "river" in page:
            continue
        values = sidebar_values(at)
        assert values["seed"] == 7 and values["epochs"] == 40, (page, values)
        assert values["d"] == RunConfig().d and values["lr"] == RunConfig().lr, (page, values)


def test_a_value_changed_on_one_page_is_kept_on_the_next():
    at = app_test("app.py")
    at.switch_page("app_pages/spectrum.py").run()
    number_input(at, "embedding width").set_value(5).run()
    at.switch_page("app_pages/river_valley.py").run()
    at.switch_page("app_pages/length_generalisation.py").run()
    assert not at.exception
    assert number_input(at, "embedding width").value == 5


def test_reset_restores_the_defaults_without_an_exception():
    at = app_test("app.py")
    at.query_params.update({"d": "6", "seed": "3"})
    at.switch_page("app_pages/spectrum.py").run()
    assert number_input(at, "embedding width").value == 6
    at.button(key="cfg_reset").click().run()
    assert not at.exception
    assert number_input(at, "embedding width").value == RunConfig().d
    assert number_input(at, "weight seed").value == RunConfig().seed
    assert "d" not in at.query_params and "seed" not in at.query_params


def test_presenter_mode_is_kept_across_pages_and_hides_the_controls():
    at = app_test("app.py")
    at.query_params["present"] = "1"
    at.run()
    for page in ("app_pages/spectrum.py", "app_pages/shift.py", "app_pages/home.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.query_params.get("present") in ("1", ["1"]), page
        assert not [b for b in at.button if b.key in ("train", "cancel", "cancel-shift")], page
        assert any(b.key == "present_leave" for b in at.button)
    at.button(key="present_leave").click().run()
    at.switch_page("app_pages/spectrum.py").run()
    assert "present" not in at.query_params
    assert at.button(key="train") is not None


def test_page_views_survive_a_round_trip_through_other_pages():
    at = app_test("app.py").run()
    at.switch_page("app_pages/spectrum.py").run()
    at.slider(key="epoch").set_value(300).run()
    at.switch_page("app_pages/river_valley.py").run()
    at.slider(key="eta").set_value(0.5).run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/spectrum.py").run()
    assert at.slider(key="epoch").value == 300
    at.switch_page("app_pages/river_valley.py").run()
    assert at.slider(key="eta").value == 0.5
    assert not at.exception
