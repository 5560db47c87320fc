"""First paint (issue #12): every run starts loading Plotly's browser chunk, from a script whose
element is hidden, and Home computes its claims once per content of the runs, not per visit.
The times themselves are measured by bench/bench_paint.py, never asserted here."""
import json
import re
from pathlib import Path

import pytest
import streamlit as st

from loopviz import verdicts
from loopviz.ui import present
from tests.apptest_helpers import app_test

pytestmark = pytest.mark.usefixtures("fresh_jobs")


def test_the_installed_streamlit_has_one_plotly_chunk_and_the_preload_names_it():
    chunk = present.plotly_chunk()
    assert chunk is not None and re.fullmatch(r"PlotlyChart\.[\w-]+\.js", chunk)
    assert (Path(st.__file__).parent / "static" / "static" / "js" / chunk).is_file()
    script = present.preload_html(chunk)
    # The name is a JavaScript string literal, resolved beside Streamlit's own index.*.js.
    assert f"import(new URL('{chunk}', index.src).href)" in script
    assert 'data-mark="loopviz-plotly-preload"' in script


def test_no_chunk_or_two_chunks_mean_no_preload(tmp_path):
    assert present.plotly_chunk.__wrapped__(tmp_path) is None
    (tmp_path / "PlotlyChart.a1.js").write_text("")
    assert present.plotly_chunk.__wrapped__(tmp_path) == "PlotlyChart.a1.js"
    (tmp_path / "PlotlyChart.b2.js").write_text("")
    assert present.plotly_chunk.__wrapped__(tmp_path) is None


@pytest.mark.parametrize("query", [{}, {"present": "1"}])
def test_every_run_sends_the_preload_script_with_javascript_allowed_and_hides_it(query):
    at = app_test("app.py")
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    scripts = [h.proto for h in at.get("html") if "<script" in h.proto.body and "plotly-preload" in h.proto.body]
    assert len(scripts) == 1 and scripts[0].unsafe_allow_javascript
    css = " ".join(h.proto.body for h in at.get("html"))
    assert '.stElementContainer:has(script[data-mark="loopviz-plotly-preload"]) { display: none; }' in css


def test_home_computes_its_claims_once_for_the_same_runs(monkeypatch):
    calls = []
    real = verdicts.home_claims

    def counted(*args):
        calls.append(len(args))
        return real(*args)

    monkeypatch.setattr(verdicts, "home_claims", counted)
    st.cache_data.clear()
    first = app_test("app.py").run()
    second = app_test("app.py").run()  # a new session: another visitor, same bundled runs
    assert not first.exception and not second.exception
    assert len(calls) == 1
    texts = [[m.value for m in at.markdown if m.value.startswith("1. **The paper:**")] for at in (first, second)]
    assert texts[0] and texts[0] == texts[1]
    charts = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in second.get("plotly_chart")]
    assert "Accuracy on high-information samples" in charts
