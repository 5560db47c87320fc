"""AppTest of the pages' truthfulness blocks (issue 11): verdicts, intervals, phases, definitions, readings."""
import pytest

from tests.apptest_helpers import app_test, texts

pytestmark = pytest.mark.usefixtures("fresh_jobs")


def test_spectrum_page_verdict_bucket_shares_and_entropy_definition_toggle():
    at = app_test("app_pages/spectrum.py").run()
    assert not at.exception
    info = " ".join(texts(at, "info"))
    assert "**faster** (to epoch 1500)" in info and "**higher** (to epoch 600)" in info
    captions = " ".join(texts(at, "caption"))
    assert "train: low 45.4 % (95 % CI" in captions and "val: low 56.2 %" in captions
    assert "Observation 2's shape depends on this choice" in captions
    assert "paper +0.101" not in captions and "Paper line" not in captions
    histogram = [c for c in texts(at, "caption") if "Observation 2's shape" in c][0]
    at.radio(key="entropy_def").set_value("spectral").run()
    assert not at.exception
    spectral = [c for c in texts(at, "caption") if "Observation 2's shape" in c][0]
    assert spectral != histogram and "MI equals min(E_s, E_s+1) at 0.0 %" in spectral
    assert "95 % CI" in " ".join(texts(at, "markdown"))   # the seed sweep's shares and means


def test_length_page_defaults_to_t3_and_says_which_reading_fits_the_paper():
    at = app_test("app_pages/length_generalisation.py").run()
    assert not at.exception
    assert at.radio(key="len_last_step").value == "T3"
    full = at.dataframe[1].value
    assert {"chance", "bayes_total", "acc_simple_low", "acc_simple_high"} <= set(full.columns)
    assert set(full.loc[full["data"] == "test", "last_step"]) == {"T3"}
    assert any("most plausibly tested like with like" in i for i in texts(at, "info"))
    assert any("9.84" in c and "14.57" in c for c in texts(at, "caption"))
    at.radio(key="len_last_step").set_value("cyclic").run()
    assert not at.exception
    full = at.dataframe[1].value
    assert set(full.loc[full["data"] == "test", "last_step"]) == {"cyclic"}
    trained = full[(full["data"] == "test") & full["model"].isin(["single", "looped"])]
    assert (trained["acc_total"] < 1 / 3).all()   # the literal cycle: Single and Looped below chance


def test_home_puts_our_number_beside_each_paper_claim():
    at = app_test("app_pages/home.py").run()
    assert not at.exception
    claims = [m for m in texts(at, "markdown") if "**The paper:**" in m]
    assert len(claims) == 4 and all("**The bundled runs:**" in c for c in claims)
    assert "**faster**" in claims[0] and "epoch 232" in claims[3]
    assert not any("stays static" in m and "The paper" not in m for m in texts(at, "markdown"))
