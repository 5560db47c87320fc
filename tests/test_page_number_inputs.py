"""A number typed out of range: Streamlit's browser widget only outlines it in red and keeps the
old value without a word (its message hides in a tooltip), so the knobs check their range
themselves (loopviz.ui.inputs.bounded_number): one message naming the knob and its range, and
the last valid value kept, in the widget and in the run."""
import pytest

from loopviz.config import RunConfig
from loopviz.ui.config_sidebar import SHARED_KEY
from tests.apptest_helpers import app_test, number_input

pytestmark = pytest.mark.usefixtures("fresh_jobs")


def range_notes(at) -> list[str]:
    return [w.value for w in at.warning if "must be between" in w.value]


def test_a_typed_out_of_range_width_is_named_with_its_range_and_not_applied():
    at = app_test("app.py")
    at.switch_page("app_pages/spectrum.py").run()
    number_input(at, "embedding width").set_value(5).run()
    number_input(at, "embedding width").set_value(50).run()
    assert not at.exception, at.exception
    notes = range_notes(at)
    assert len(notes) == 1, notes
    assert "embedding width d" in notes[0] and "2" in notes[0] and "32" in notes[0] and "50" in notes[0]
    assert "stays 5" in notes[0]
    assert number_input(at, "embedding width").value == 5     # the widget shows the value in use
    assert at.session_state[SHARED_KEY].d == 5                  # and the page's run uses it
    # A valid value next: the note goes.
    number_input(at, "embedding width").set_value(6).run()
    assert not range_notes(at)
    assert at.session_state[SHARED_KEY].d == 6


def test_a_float_knob_below_its_range_and_reset_clears_the_note():
    at = app_test("app.py")
    at.switch_page("app_pages/spectrum.py").run()
    number_input(at, "initial weight std").set_value(0.0).run()
    notes = range_notes(at)
    assert len(notes) == 1 and "initial weight std" in notes[0] and "0.001" in notes[0], notes
    assert at.session_state[SHARED_KEY].init_scale == RunConfig().init_scale
    at.button(key="cfg_reset").click().run()
    assert not at.exception
    assert not range_notes(at)


def test_an_out_of_range_link_value_is_named_once_and_the_default_is_used():
    at = app_test("app.py")
    at.query_params.update({"d": "999"})
    at.switch_page("app_pages/spectrum.py").run()
    assert not at.exception, at.exception
    notes = [w.value for w in at.warning if "999" in w.value]
    assert len(notes) == 1, notes
    assert "embedding width d" in notes[0] and "32" in notes[0]
    assert number_input(at, "embedding width").value == RunConfig().d
    assert at.session_state[SHARED_KEY].d == RunConfig().d


def test_a_page_knob_out_of_range_is_named_too():
    """The length page's test-set seed (0 … 1,000,000) is a page knob, not a sidebar one."""
    at = app_test("app_pages/length_generalisation.py").run()
    number_input(at, "N_test per length").set_value(10).run()
    assert not at.exception, at.exception
    notes = range_notes(at)
    assert len(notes) == 1 and "N_test per length" in notes[0] and "100" in notes[0], notes
