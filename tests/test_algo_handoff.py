"""SHIFT's handoff on disk (handoff.npz): a Single run stores where SHIFT switches (weights and
AdamW state), and a SHIFT run started later (another CLI invocation, a restarted server) starts
Stage II from it, bit for bit as from the Single run in memory, with Stage I's rows read, not
trained again. A bad file is one line and a retrained Stage I; runs without one load as before."""
import shutil

import numpy as np
import pandas as pd
import pytest

from loopviz.__main__ import main
from loopviz.algo import job, rundir, training
from loopviz.algo.config import SHIFT_RULES, AlgoConfig
from loopviz.runs.format import RunFormatError
from loopviz.runs.store import BUNDLED_DIR, JobRegistry, RunStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--width", "8", "--heads", "2", "--steps", "30", "--eval-every", "10", "--eval-samples", "8",
        "--train-max-len", "3", "--test-lengths", "2,4", "--checkpoints", "1", "--hessian-top", "2",
        "--hessian-samples", "4", "--batch-size", "8", "--shift-step", "10", "--device", "cpu"]
CONFIG = AlgoConfig(task="parity", width=8, heads=2, steps=30, eval_every=10, eval_samples=8, train_max_len=3,
                    test_lengths=(2, 4), checkpoints=1, hessian_top=2, hessian_samples=4, batch_size=8,
                    shift_step=10, device="cpu")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Single and SHIFT in one invocation: SHIFT takes the in-memory handoff."""
    out = tmp_path_factory.mktemp("handoff") / "both"
    assert main(["algo", "run", "--task", "parity", "--model", "single,shift", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def single_steps(monkeypatch):
    """Counts the training steps each paradigm takes (Single-Attn's: Stage I trained)."""
    taken = {"single": 0, "looped": 0}
    real = training.Trainer.train_step

    def train_step(self):
        taken["looped" if self.looped else "single"] += 1
        return real(self)

    monkeypatch.setattr(training.Trainer, "train_step", train_step)
    return taken


def stored_single(reference, tmp_path):
    """A copy of the reference's Single run alone in a fresh --out directory."""
    out = tmp_path / "out"
    shutil.copytree(reference / "single", out / "single")
    return out


def assert_same_shift(a, b):
    """Records (Stage II's training times apart: they are measured anew), weights, curvature."""
    a, b = rundir.read_run(a), rundir.read_run(b)
    stage2 = a.records["phase"] == "looped"
    assert stage2.any() and (~stage2).any()
    pd.testing.assert_frame_equal(a.records[~stage2], b.records[~stage2])   # Stage I: seconds too
    pd.testing.assert_frame_equal(a.records.drop(columns="seconds"), b.records.drop(columns="seconds"))
    np.testing.assert_array_equal(a.weight_steps, b.weight_steps)
    for name in a.weights:
        np.testing.assert_array_equal(a.weights[name], b.weights[name])
    np.testing.assert_array_equal(a.curvature_top, b.curvature_top)
    for key in ("shift_step", "shift_rule", "plateau_step"):
        assert a.meta[key] == b.meta[key]


def test_the_single_run_stores_its_handoff_as_plain_numbers(reference):
    with np.load(reference / "single" / "handoff.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    assert all(v.dtype.kind in "fiu" for v in arrays.values())
    assert int(arrays["step"]) == 10 and SHIFT_RULES[int(arrays["rule"])] == "fixed"
    run = rundir.read_run(reference / "single")
    at = int(np.flatnonzero(run.weight_steps == 10)[0])
    for name, w in run.weights.items():   # the weights at the switch are weights.npz's there
        np.testing.assert_array_equal(arrays[f"model/{name}"], w[at])
    # AdamW took 10 steps on every parameter; its moments are there, the second one positive.
    steps = [float(v) for k, v in arrays.items() if k.endswith("/step") and k.startswith("adam/")]
    assert len(steps) == len(run.weights) and set(steps) == {10.0}
    assert all((v >= 0).all() for k, v in arrays.items() if k.endswith("exp_avg_sq"))
    assert not (reference / "shift" / "handoff.npz").exists()


def test_shift_from_the_stored_handoff_equals_shift_from_memory(reference, tmp_path, single_steps, capsys):
    out = stored_single(reference, tmp_path)
    assert main(["algo", "run", "--task", "parity", "--model", "shift", "--out", str(out), *TINY]) == 0
    assert single_steps == {"single": 0, "looped": 20}   # Stage I read, not trained
    assert_same_shift(out / "shift", reference / "shift")
    single, shift = (rundir.read_run(out / m).records for m in ("single", "shift"))
    pd.testing.assert_frame_equal(shift[shift["step"] <= 10], single[single["step"] <= 10])  # timings too
    assert "Stage I read from" in capsys.readouterr().err
    assert rundir.read_run(out / "shift").meta["stage_one"] == str(out / "single" / "handoff.npz")


def test_a_restarted_servers_shift_job_reads_the_stored_single_run(reference, tmp_path, single_steps):
    """The registry has no Single job in memory; the Single run is stored in the group directory."""
    out = stored_single(reference, tmp_path)
    reg = JobRegistry(RunStore(tmp_path / "store", bundled=None))
    shift = reg.start(CONFIG.replace(model="shift"), directory=out / "shift")
    shift.thread.join(120)
    assert shift.log.status == "complete" and shift.saved
    assert single_steps["single"] == 0
    assert_same_shift(out / "shift", reference / "shift")


def test_the_handoff_round_trips_through_its_arrays_bit_for_bit():
    """An SCP switch (rule and plateau step kept) after AdamW steps: the stored state continues
    training exactly as the one in memory."""
    config = CONFIG.replace(model="shift", shift_step=0, hessian_top=0)
    single = training.Trainer(config.replace(model="single"), looped=False)
    list(single.run(until=20))
    handoff = single._snapshot("scp", 10)
    back = training.handoff_from_arrays(config, training.handoff_arrays(handoff), single.problem.max_len)
    assert (back.step, back.rule, back.plateau_step, back.seconds) == (20, "scp", 10, handoff.seconds)
    stage2 = [list(training.Trainer(config, True, single.problem, h).run()) for h in (handoff, back)]
    assert [r.metrics for r in stage2[0]] == [r.metrics for r in stage2[1]]
    for a, b in zip(stage2[0][-1].weights.values(), stage2[1][-1].weights.values()):
        np.testing.assert_array_equal(a, b)


def edit(path, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(path, **arrays)


def first(arrays, ending):
    return next(k for k in arrays if k.startswith("adam/") and k.endswith("/" + ending))


BAD = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:200]), "handoff.npz is unreadable"),
    "pickled": (lambda p: edit(p, lambda a: a.__setitem__("step", np.array([{"evil": 1}], dtype=object))),
                "handoff.npz is unreadable"),
    "missing key": (lambda p: edit(p, lambda a: a.pop("rule")), "handoff.npz lacks rule"),
    "not finite": (lambda p: edit(p, lambda a: a[first(a, "exp_avg")].__setitem__(..., np.nan)), "NaN or infinite"),
    "other step": (lambda p: edit(p, lambda a: a.__setitem__("step", np.array(20))), "training at step 20"),
    "not a record step": (lambda p: edit(p, lambda a: a.__setitem__("step", np.array(15))), "not an evaluation"),
    "other weights": (lambda p: edit(p, lambda a: a["model/head.weight"].__setitem__(..., 0.5)),
                      "is not weights.npz's"),
    "wrong shape": (lambda p: edit(p, lambda a: a.__setitem__(first(a, "exp_avg"), np.zeros(3, np.float32))),
                    "shape"),
    "other hyperparameters": (lambda p: edit(p, lambda a: a["hyper"].__setitem__(0, 1.0)), "AdamW's lr"),
}


@pytest.mark.parametrize("damage", list(BAD))
def test_a_bad_handoff_is_one_line_and_stage_one_is_trained_again(reference, tmp_path, single_steps, capsys,
                                                                  damage):
    out = stored_single(reference, tmp_path)
    corrupt, message = BAD[damage]
    corrupt(out / "single" / "handoff.npz")
    assert main(["algo", "run", "--task", "parity", "--model", "shift", "--out", str(out), *TINY]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "Stage I" in line]
    assert len(notes) == 1 and "trained again" in notes[0] and message in notes[0], notes
    assert single_steps["single"] == 10   # Stage I retrained, to the switch
    # The same numbers as from the handoff (Stage I retrained identically); its times are new.
    a, b = (rundir.read_run(d / "shift").records for d in (out, reference))
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    assert rundir.read_run(out / "shift").meta["stage_one"] == "trained"


def test_a_single_run_of_another_config_is_not_read(reference, tmp_path, single_steps, capsys):
    out = stored_single(reference, tmp_path)
    assert main(["algo", "run", "--task", "parity", "--model", "shift", "--out", str(out), *TINY,
                 "--seed", "5"]) == 0
    assert single_steps["single"] == 10
    assert "holds a Single run of another config" in capsys.readouterr().err


def test_without_handoff_npz_stage_one_is_trained_and_nothing_new_is_said(reference, tmp_path, single_steps,
                                                                          capsys):
    """Runs written before handoffs were stored (the bundled ones): the file is optional."""
    out = stored_single(reference, tmp_path)
    (out / "single" / "handoff.npz").unlink()
    assert rundir.read_handoff(out / "single", rundir.read_run(out / "single")) is None
    assert main(["algo", "run", "--task", "parity", "--model", "shift", "--out", str(out), *TINY]) == 0
    assert single_steps["single"] == 10 and "Stage I" not in capsys.readouterr().err
    a, b = (rundir.read_run(d / "shift").records for d in (out, reference))
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_bundled_runs_without_a_handoff_still_load():
    singles = sorted((BUNDLED_DIR / "algo").glob("*/single"))
    assert singles
    for directory in singles:
        run = rundir.read_run(directory)
        assert rundir.read_handoff(directory, run) is None
        records, handoff, note = job.stored_stage_one(run.config.replace(model="shift"), directory, 16)
        assert (records, handoff, note) == (None, None, "")


def test_read_handoff_rejects_a_fallback_in_an_unfinished_run(reference, tmp_path):
    out = stored_single(reference, tmp_path)
    edit(out / "single" / "handoff.npz", lambda a: a.__setitem__("rule", np.array(SHIFT_RULES.index("fallback"))))
    run = rundir.read_run(out / "single")
    run.meta["status"] = "cancelled"
    with pytest.raises(RunFormatError, match="fallback"):
        rundir.read_handoff(out / "single", run)
