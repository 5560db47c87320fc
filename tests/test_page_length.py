import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import app_test, number_input

PAGE = "app_pages/length_generalisation.py"


pytestmark = pytest.mark.usefixtures("fresh_jobs")


def page() -> AppTest:
    return app_test(PAGE)


def test_default_view_shows_figures_and_table_1_beside_the_paper():
    at = page().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2
    compare = at.dataframe[0].value
    assert list(compare["length"]) == [4, 8, 11, 14, 17]
    assert {"paper_single_acc_simple", "paper_looped_acc_simple", "single_acc_simple", "looped_acc_simple"} \
        <= set(compare.columns)
    full = at.dataframe[1].value
    assert set(full["model"]) == {"single", "looped"} and set(full["n"]) == {500, 5000}
    assert len(at.get("download_button")) == 3


def test_changing_the_test_seed_or_lengths_recomputes():
    at = page().run()
    before = at.dataframe[1].value
    number_input(at, "test-set seed").set_value(1).run()
    assert not at.exception
    after = at.dataframe[1].value
    assert not before.equals(after)
    at.multiselect(key="len_lengths").set_value([6, 9]).run()
    assert not at.exception
    assert list(at.dataframe[0].value["length"]) == [4, 6, 9]


def test_a_seed_without_a_run_shows_the_message_and_no_table():
    at = page().run()
    number_input(at, "weight seed").set_value(14).run()
    assert not at.exception
    assert any("No finished run" in i.value for i in at.info)
    assert len(at.dataframe) == 0
    assert not at.button(key="train").disabled
