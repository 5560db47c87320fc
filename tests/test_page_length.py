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
    assert list(compare["L"]) == [4, 8, 11, 14, 17]
    assert {"paper Single", "paper Looped", "Single", "Looped", "SHIFT"} <= set(compare.columns)
    # Empty cells show a dash, not "None" or "nan" (an empty display value reads "None" in the browser's grid).
    cells = set(compare.to_numpy().ravel().tolist())
    assert "—" in cells and not {"", "None", "nan", "NaN", None} & cells and not compare.isna().to_numpy().any()
    full = at.dataframe[1].value
    # The SHIFT run shown is named by its epoch: SCP's for the bundled run, 261.
    assert set(full["model"]) == {"single", "looped", "shift"} and set(full["n"]) == {500, 5000}
    assert any("switched to Looped-Attn at epoch 232" in c.value for c in at.caption)
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
    assert list(at.dataframe[0].value["L"]) == [4, 6, 9]


def test_a_seed_without_a_run_shows_the_message_and_no_table():
    at = page().run()
    number_input(at, "weight seed").set_value(14).run()
    assert not at.exception
    assert any("No finished run" in i.value for i in at.info)
    assert len(at.dataframe) == 0
    assert not at.button(key="train").disabled


def test_table_1_gives_each_of_our_accuracies_and_shares_with_its_interval():
    """QA: Table 1's accuracies and simple shares had their 95 % intervals only in the full
    table, inside an expander. Each of our cells now reads 'value (low–high)', the interval the
    full table holds (Clopper–Pearson over the simple sequences of that length)."""
    at = page().run()
    compare = at.dataframe[0].value
    full = at.dataframe[1].value
    checked = 0
    for _, row in compare.iterrows():
        for model, column in (("single", "Single"), ("looped", "Looped"), ("shift", "SHIFT")):
            cell = row[column]
            if cell == "—":
                continue
            match = full[(full["data"] == row["data"]) & (full["length"] == row["L"]) & (full["model"] == model)]
            r = match.iloc[0]
            assert cell == (f"{100 * r['acc_simple']:.1f} % ({100 * r['acc_simple_low']:.1f}–"
                            f"{100 * r['acc_simple_high']:.1f})"), (cell, r.to_dict())
            checked += 1
        if row["simple share"] != "—":
            assert "(" in row["simple share"] and "–" in row["simple share"], row["simple share"]
    assert checked >= 10
