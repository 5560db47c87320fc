import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from loopviz.config import RunConfig
from loopviz.ui import jobs
from tests.apptest_helpers import app_test, number_input, run_until

PAGE = "app_pages/spectrum.py"


pytestmark = pytest.mark.usefixtures("fresh_jobs")


def page() -> AppTest:
    return app_test(PAGE)


def test_default_view_shows_the_bundled_run_at_once():
    at = page().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 8
    verdict = " ".join(i.value for i in at.info)
    assert "This run" in verdict and "high-IC" in verdict
    assert any("seeds: Looped − Single" in m.value for m in at.markdown)
    assert any("By Definition 1" in c.value and "U-shaped at" in c.value for c in at.caption)


def test_changing_a_widget_asks_for_training_and_the_widget_is_bound_to_the_url():
    at = page().run()
    number_input(at, "embedding width").set_value(3).run()
    assert not at.exception
    # The browser rewrites the URL of a bound widget (AppTest has no browser; test_browser checks the URL).
    assert number_input(at, "embedding width").proto.query_param_key == "d"
    assert any("No run for this configuration yet" in i.value for i in at.info)


def test_a_tiny_job_streams_and_finishes():
    at = app_test(PAGE)
    at.query_params.update({"d": "2", "epochs": "8", "hessian_every": "4"})
    at.run()
    assert not at.exception
    at.button(key="train").click().run()
    at = run_until(at, lambda a: sum("complete in" in s.value for s in a.success) == 2)
    assert not at.exception
    assert sum("complete in" in s.value for s in at.success) == 2
    assert len(at.get("plotly_chart")) >= 6
    assert jobs.registry().get(RunConfig(d=2, epochs=8, hessian_every=4, model="looped")).saved


def test_bad_query_parameters_fall_back_to_defaults_with_a_note():
    at = app_test(PAGE)
    at.query_params.update({"d": "abc", "epochs": "999999", "lr": "-1"})
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "d='abc'" in warnings and "epochs" in warnings and "lr" in warnings
    assert number_input(at, "embedding width").value == RunConfig().d


def test_an_invalid_sidebar_configuration_is_said_on_the_page_not_only_in_the_sidebar():
    """QA: optimizer sgd with full batch is refused; the sidebar said so under its knobs, while the
    page drew the default (adam) run's charts and verdicts below a sidebar that reads "sgd"."""
    at = app_test(PAGE)
    at.query_params.update({"optimizer": "sgd", "momentum": "0.9"})
    at.run()
    assert not at.exception
    assert any("invalid configuration" in e.value for e in at.sidebar.error)
    assert any("shows the default configuration" in w.value for w in at.main.warning)


def test_two_sessions_asking_for_one_config_share_one_job():
    first, second = page(), page()
    for at in (first, second):
        at.query_params.update({"d": "2", "epochs": "30", "hessian_every": "0"})
        at.run()
    first.button(key="train").click().run()
    second.run()
    job = jobs.registry().get(RunConfig(d=2, epochs=30, hessian_every=0, model="single"))
    assert job is not None
    assert second.button(key="train").disabled  # the other session's job is running or done
    assert len([k for k in jobs.registry().jobs]) == 2  # single + looped, not four


def test_a_corrupt_stored_run_is_reported_and_recomputed(tmp_path):
    config = RunConfig(d=2, epochs=4, hessian_every=2, model="single")
    store = jobs.registry().store
    target = store.root / config.key()
    source = store.bundled[RunConfig(model="single").key()]
    shutil.copytree(source, target)
    (target / "config.json").write_text(json.dumps(config.to_dict()))
    (target / "spectra.npz").write_bytes(b"garbage")
    at = app_test(PAGE)
    at.query_params.update({"d": "2", "epochs": "4", "hessian_every": "2"})
    at.run()
    assert not at.exception
    assert any("unreadable" in w.value for w in at.warning)
    assert not target.exists()
    assert not at.button(key="train").disabled


def test_train_draws_quick_runs_trained_in_the_rerun_it_asks_for(monkeypatch):
    """Train waits (interruptibly, up to jobs.TRAINING_WAIT) for quick jobs' training before its
    rerun, so their curves are drawn complete at once; with no wait the rerun finds them mid-run."""
    for wait, trained in ((30.0, True), (0.0, False)):
        monkeypatch.setattr(jobs, "TRAINING_WAIT", wait)
        epochs = 3000 if trained else 2999    # d = 8: ~1 s of training per model
        at = app_test(PAGE)
        at.query_params.update({"d": "8", "epochs": str(epochs), "hessian_every": "0"})
        at.run()
        at.button(key="train").click().run()
        logs = [jobs.registry().get(RunConfig(d=8, epochs=epochs, hessian_every=0, model=m)).log
                for m in ("single", "looped")]
        assert all(log.records and log.records[-1].epoch == epochs for log in logs) is trained, wait
        run_until(at, lambda a: all(log.done for log in logs), timeout=120)


def test_a_diverging_run_says_where_and_keeps_its_curves():
    at = app_test(PAGE)
    at.query_params.update({"d": "8", "loops": "8", "init_scale": "1.0", "epochs": "5", "hessian_every": "0"})
    at.run()
    at.button(key="train").click().run()
    at = run_until(at, lambda a: any("diverged at epoch 0" in e.value for e in a.error))
    assert not at.exception
    assert any("diverged at epoch 0" in e.value and "kept" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) >= 2  # the records up to the divergence are drawn


def test_cancel_keeps_what_was_computed():
    at = app_test(PAGE)
    at.query_params.update({"d": "16", "epochs": "3000", "hessian_every": "1"})
    at.run()
    at.button(key="train").click().run()
    at = run_until(at, lambda a: jobs.registry().get(RunConfig(d=16, epochs=3000, hessian_every=1,
                                                               model="single")).log.records, timeout=60)
    at.button(key="cancel").click().run()
    at = run_until(at, lambda a: sum("cancelled" in w.value for w in a.warning) == 2, timeout=60)
    assert not at.exception
    job = jobs.registry().get(RunConfig(d=16, epochs=3000, hessian_every=1, model="single"))
    assert job.log.status == "cancelled" and len(job.log.records) >= 1
    assert not job.saved  # a cancelled run is not stored as if it were complete
    assert not any("This run" in i.value for i in at.info)  # no verdict on a cancelled, mid-run comparison
    assert len(at.get("plotly_chart")) >= 2  # its curves stay on screen


def test_a_point_picked_on_the_seed_sweep_names_its_seed():
    from loopviz.ui.config_sidebar import selected_seed
    assert selected_seed({"points": [{"curve_number": 0, "point_index": 3, "customdata": 41}]}) == 41
    assert selected_seed({"points": [{"curve_number": 0, "customdata": [88]}]}) == 88
    assert selected_seed({"points": [{"curve_number": 1, "customdata": 50}]}) is None  # the star
    assert selected_seed({"points": []}) is None


def _spectrum_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")
            if "eigenspectrum at epoch" in json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "")]


def _assumption_metrics(at) -> tuple:
    m = {x.label: x.value for x in at.metric}
    return m["m1 (Single, valley λ ≤ τ)"], m["m2 (Looped, valley λ ≤ τ)"]


def _expected_assumption(epoch: int) -> tuple:
    from loopviz import curvature
    from loopviz.runs.format import read_run
    store = jobs.registry().store
    single, looped = (read_run(store.bundled[RunConfig(model=m).key()]) for m in ("single", "looped"))
    c = RunConfig()
    check = curvature.assumption1(single.spectrum_at(epoch), looped.spectrum_at(epoch), c.river_eps,
                                  c.low_curvature_tau)
    return str(check.m1), str(check.m2)


def test_the_epoch_in_the_url_drives_every_epoch_panel():
    at = app_test(PAGE)
    at.query_params["epoch"] = "123"
    at.run()
    assert not at.exception
    assert at.slider(key="epoch").value == 123
    titles = _spectrum_titles(at)
    assert len(titles) == 2 and all("at epoch 123 " in t for t in titles)
    assert _assumption_metrics(at) == _expected_assumption(123)


def test_play_starts_at_the_cursor_and_moves_every_panel():
    at = page().run()
    at.slider(key="epoch").set_value(400).run()
    at.button(key="spectrum_play").click().run()
    assert not at.exception
    seen = []
    for _ in range(3):  # AppTest does not fire run_every: each run is one tick of play
        at.run()
        epoch = at.slider(key="epoch").value
        seen.append(epoch)
        assert all(f"at epoch {epoch} " in t for t in _spectrum_titles(at))
        assert _assumption_metrics(at) == _expected_assumption(epoch)
    assert seen[0] > 400 and seen == sorted(seen) and len(set(seen)) == 3  # from the cursor on, not from 0
    at.button(key="spectrum_play").click().run()  # pause
    paused = at.slider(key="epoch").value
    at.run()
    at.run()
    assert at.slider(key="epoch").value == paused


def test_a_rerun_makes_no_download_file(monkeypatch):
    """The four download buttons hand Streamlit functions, called only when a button is
    clicked (test_browser downloads the files): a rerun, live tick or ▶ play frame used to
    write two CSVs and two NPZs (~45 ms, ~4 MB) each time."""
    from loopviz.runs import format as run_format
    from loopviz.ui import downloads

    made = []
    monkeypatch.setattr(downloads, "run_npz_bytes", lambda run: made.append(run) or run_format.run_npz_bytes(run))
    monkeypatch.setattr(run_format.pd.DataFrame, "to_csv",
                        lambda self, *a, **k: made.append(self) or "")   # any CSV the page would write
    at = page().run()
    assert not at.exception
    assert len(at.get("download_button")) == 4
    at.run()
    assert made == []


def test_a_run_without_spectra_still_offers_its_downloads(monkeypatch):
    """hessian_every = 0: no spectra, no eigenspectrum section, but the records and arrays download."""
    monkeypatch.setattr(jobs, "TRAINING_WAIT", 30.0)
    at = page()
    at.query_params["hessian_every"] = "0"
    at.query_params["epochs"] = "50"
    at.run()
    at.button(key="train").click().run()
    at = run_until(at, lambda a: not jobs.any_running(jobs.model_pair(RunConfig(hessian_every=0, epochs=50))),
                   timeout=60)
    at.run()
    assert not at.exception
    assert any("No spectra yet" in i.value for i in at.info)
    assert not any("eigenspectrum" in s.value for s in at.subheader)
    assert len(at.get("download_button")) == 4
