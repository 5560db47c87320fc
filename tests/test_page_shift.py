import pytest

from loopviz.config import RunConfig
from loopviz.ui import jobs
from tests.apptest_helpers import app_test, run_until

PAGE = "app_pages/shift.py"


pytestmark = pytest.mark.usefixtures("fresh_jobs")


def test_default_view_uses_scp_and_the_bundled_runs():
    at = app_test(PAGE).run()
    assert not at.exception
    assert any("SCP: validation-loss plateau at epoch" in s.value for s in at.success)
    assert at.slider(key="shift_epoch").value == 232   # E_plateau 212 + W 20, the paper's rule
    assert any("E_shift = E_plateau + W = 212 + 20 = 232" in s.value for s in at.success)
    assert any("restarts from worse than chance" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) >= 5
    assert any(m.label == "speed-up" for m in at.metric)
    assert jobs.registry().jobs == {}  # the SCP epoch's SHIFT run is bundled: nothing to train


def test_moving_the_slider_trains_stage_two_only():
    at = app_test(PAGE).run()
    at.slider(key="shift_epoch").set_value(1400).run()
    config = RunConfig(model="shift", shift_epoch=1400)
    job = jobs.registry().get(config)
    assert job is not None
    at = run_until(at, lambda a: job.log.done, timeout=240)
    assert not at.exception and job.log.status == "complete"
    # Stage I came from the bundled Single run: its 1401 spectra were reused, not recomputed.
    assert len(job.log.spectra) == 1501
    at.run()
    assert any(m.label == "SHIFT training (Stage I + II)" for m in at.metric)


def test_thresholds_without_a_plateau_are_said_and_the_slider_still_works():
    at = app_test(PAGE).run()
    at.number_input[0].set_value(1e-6).run()
    assert not at.exception
    assert any("no plateau" in w.value or "never settled" in w.value for w in at.warning)
    at.slider(key="shift_epoch").set_value(150).run()
    assert not at.exception
    assert jobs.registry().get(RunConfig(model="shift", shift_epoch=150)) is not None


def test_a_configuration_without_a_single_run_asks_for_training():
    at = app_test(PAGE)
    at.query_params["d"] = "3"
    at.run()
    assert not at.exception
    assert any("finished Single-Attn run" in i.value for i in at.info)
