"""AppTest for app_pages/river_valley.py: presets, sliders, settings, and bad custom spectra."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "river_valley.py")
U_PRESET, V_PRESET, CUSTOM = "U-valley (Single-Attn)", "V-valley (Looped-Attn)", "Custom spectrum"
N_CHARTS = 7   # two paths, progress/loss, two force plots, two spectra


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.run()
    assert not at.exception
    return at


def verdict(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label.startswith(label))


def test_default_view_renders_and_v_wins():
    at = page()
    assert not at.error
    assert len(at.get("plotly_chart")) == N_CHARTS
    text = verdict(at)
    for claim in ("Theorem 1** holds", "Corollary 1** holds", "Corollary 2** holds",
                  "Assumption 1** holds", "Valley hopping"):
        assert claim in text
    assert "fails" not in text


@pytest.mark.parametrize("single, looped", [
    (U_PRESET, V_PRESET), (V_PRESET, U_PRESET), (U_PRESET, U_PRESET), (U_PRESET, CUSTOM),
    (CUSTOM, V_PRESET),
])
def test_each_preset(single, looped):
    at = page()
    by_label(at.selectbox, "Single-Attn side").select(single)
    by_label(at.selectbox, "Looped-Attn side").select(looped)
    at.run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == N_CHARTS
    if single == looped:
        assert "Assumption 1** fails" in verdict(at)


def test_swapped_presets_name_assumption1():
    at = page()
    by_label(at.selectbox, "Single-Attn side").select(V_PRESET)
    by_label(at.selectbox, "Looped-Attn side").select(U_PRESET)
    at.run()
    text = verdict(at)
    assert "Corollary 2** fails" in text and "Assumption 1 fails" in text


def test_sliders_moved():
    at = page()
    by_label(at.slider, "step size").set_value(1.0)
    by_label(at.slider, "steps K").set_value(2000)
    by_label(at.slider, "initial valley offset").set_value(2.0)
    by_label(at.select_slider, "coupling strength").set_value(0.005)
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == N_CHARTS
    assert "Valley hopping" not in verdict(at)          # ηλ_max = 1: no hopping


@pytest.mark.parametrize("label, value", [("coupling strength", 0.0), ("coupling strength", 0.1),
                                          ("initial valley offset", 0.0)])
def test_edge_settings_render(label, value):
    """No coupling, a coupling strong enough for the feedback to run away, no offset."""
    at = page()
    widgets = at.select_slider if label.startswith("coupling") else at.slider
    by_label(widgets, label).set_value(value)
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == N_CHARTS


def test_divergence_is_named():
    at = page()
    by_label(at.slider, "step size").set_value(2.1)
    at.run()
    assert not at.exception
    text = verdict(at)
    assert "diverges" in text and "≥ 2" in text and "Corollary 2** fails" in text


def test_coupling_sign_is_named():
    at = page()
    by_label(at.select_slider, "coupling strength").set_value(-0.002)
    at.run()
    assert not at.exception
    assert "coupling's sign" in verdict(at)


def test_setting2_and_3d():
    at = page()
    by_label(at.radio, "Loss").set_value("Setting 2: stiffening walls")
    by_label(at.checkbox, "3D surface").check()
    at.run()
    assert not at.exception
    text = verdict(at)
    assert "Theorem 2(a)** holds" in text and "Theorem 2(c)** holds" in text
    assert len(at.get("plotly_chart")) == N_CHARTS + 2


@pytest.mark.parametrize("text, fragment", [
    ("1, x, 3", "`x` is not a number"),
    ("1, -2", "must be positive"),
    ("1, nan", "finite"),
    (", ".join(["1"] * 300), "Too many"),
])
def test_bad_custom_spectrum_shows_an_error(text, fragment):
    at = page()
    by_label(at.selectbox, "Looped-Attn side").select(CUSTOM)
    at.run()
    at.text_input[0].input(text)
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and fragment in at.error[0].value
    assert len(at.get("plotly_chart")) == 0


def test_a_diverging_valley_says_diverges_not_nan_or_huge_percentages():
    import re
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.query_params["eta"] = "2.2"  # η λ_max = 2.2 ≥ 2 for both presets
    at.run()
    assert not at.exception
    assert at.slider(key="eta").value == 2.2  # the URL set the knob
    text = " ".join(c.value for c in at.caption) + " ".join(m.value for m in at.markdown)
    assert "diverges" in text
    assert "nan" not in text.lower().replace("nanswer", "")
    assert not re.search(r"\d{7,}|e\+\d", text), text  # no 1.3e+75 force, no 136167172169811869696.0 %


def momentum_text(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Momentum μ"))


def test_momentum_from_the_url_moves_the_threshold_and_draws_the_heavy_ball_path():
    """At η = 2.2, λ_max = 1: plain GD diverges along the steepest direction (ηλ ≥ 2); with
    μ = 0.5 heavy ball converges there (ηλ < 2(1 + μ) = 3), and the sentence says so."""
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params.update({"eta": "2.2"})
    at.run()
    plain = momentum_text(at)
    assert "ηλ < 2(1 + μ) = 2 " in plain and "the others diverge" in plain
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params.update({"eta": "2.2", "momentum": "0.5", "noise": "0.01"})
    at.run()
    assert not at.exception and not at.warning
    assert by_label(at.slider, "momentum").value == 0.5
    heavy = momentum_text(at)
    assert heavy != plain and "ηλ < 2(1 + μ) = 3 " in heavy and "the others diverge" not in heavy
    assert any(m.value.startswith("**Gradient noise σ = 0.01**") for m in at.markdown)
    names = [t.get("name") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert "μ = 0.5, σ = 0.01" in names          # the dotted heavy-ball path is drawn


def test_noise_sentence_is_the_closed_form_variance():
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params.update({"eta": "1", "noise": "0.1"})
    at.run()
    text = next(m.value for m in at.markdown if m.value.startswith("**Gradient noise"))
    # λ_max = 1 at η = 1: ρ = 0, variance η²σ² = 0.01
    assert "0.01 along λ = 1" in text


@pytest.mark.parametrize("param, raw", [("momentum", "1.5"), ("momentum", "fast"), ("noise", "0.5"),
                                        # QA: these were dropped without a word
                                        ("eta", "abc"), ("eta", "5"), ("steps", "-3"), ("coupling", "0.7"),
                                        ("kappa_v", "7"), ("d_r", "x")])
def test_a_bad_knob_value_in_the_url_is_named(param, raw):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params[param] = raw
    at.run()
    assert not at.exception
    assert any(f"{param}={raw!r}" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == N_CHARTS


def test_good_knob_values_in_the_url_raise_no_warning():
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params.update({"eta": "2.2", "steps": "500", "coupling": "-0.003", "kappa_v": "1000", "drive": "0.0001",
                            "momentum": "0.5", "noise": "0.01", "tau": "0.3"})
    at.run()
    assert not at.exception
    assert not [w.value for w in at.warning if "query parameter" in w.value]
    assert at.slider(key="eta").value == 2.2 and at.slider(key="steps").value == 500


def test_a_diverging_side_does_not_shrink_the_other_sides_path_to_a_dot():
    """QA: with the Looped side a custom spectrum 5, 4 at η = 1.8 (ηλ = 9: diverges), the shared
    path axes spanned ±1e304 and the U path was a dot. The frame now fits the sides that do not
    diverge; the diverging path leaves it."""
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params.update({"looped_side": CUSTOM, "custom": "5,4"})
    at.run()
    assert not at.exception
    assert "V diverges" in verdict(at)
    paths = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")][:2]
    for layout in paths:
        assert max(abs(v) for v in layout["yaxis"]["range"] + layout["xaxis"]["range"]) < 10, layout["yaxis"]["range"]
