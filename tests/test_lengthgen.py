from pathlib import Path
"""Length generalisation (App. E.1.3, Table 1): evaluation, threshold rule, CLI."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from loopviz import __main__ as entry
from loopviz.toy import lengthgen, models
from loopviz.config import RunConfig
from loopviz.runs.format import RunData, read_run, task_arrays
from tests import reference

DEFAULT_RUNS = "assets/default"


def tiny_run(model: str = "looped", **changes) -> RunData:
    """A run with random (large enough to disagree with Bayes) final weights and the real task arrays."""
    config = RunConfig(**{"model": model, "d": 3, "epochs": 5, **changes})
    theta = np.random.default_rng(4).standard_normal(models.param_count(config.d)) * 0.7
    return RunData(config, {"status": "complete"}, pd.DataFrame(), np.zeros(0), np.zeros((0, theta.size)),
                   np.array([config.epochs]), theta[None, :], task_arrays(config))


@pytest.fixture(scope="module")
def default_runs():
    return [read_run(f"{DEFAULT_RUNS}/single"), read_run(f"{DEFAULT_RUNS}/looped")]


@pytest.mark.parametrize("last_step", ["cyclic", "T3"])
def test_evaluation_matches_an_independent_per_sample_computation(last_step):
    run = tiny_run()
    lengths, n = (5, 9), 400
    table = lengthgen.accuracy_table([run], lengths, n, seed=3, include_training=False, last_step=last_step)
    W = reference.unflatten(run.thetas[-1], run.config.d)
    T = run.task["transitions"]
    threshold = run.task["train_ic"].max()
    for L in lengths:
        test = lengthgen.draw_test_set(T, run.config.alpha, run.config.data_seed, L, n, 3, last_step)
        o = (4 - L) % 3 if last_step == "T3" else 0   # step j uses T[(j - 1 + o) % 3]; T3: the last is T[2]
        assert (L - 2 + o) % 3 == (2 if last_step == "T3" else (L - 2) % 3)
        token, position = models.make_embedding("random", run.config.d, L - 1, run.config.data_seed)
        np.testing.assert_array_equal(position[:3], run.task["position_embedding"])
        hits, simple, bayes = [], [], []
        for seq in test.sequences:
            x, y = seq[:-1], seq[-1]
            out = reference.looped_logits(*W, (token[x] + position[:len(x)]).T, run.config.loops)
            hits.append(np.argmax(out) == y)
            p = 1 / 3 * np.prod([T[(j - 1 + o) % 3][seq[j - 1], seq[j]] for j in range(1, L)])
            assert -np.log(p) == pytest.approx(test.ic[len(hits) - 1])
            simple.append(-np.log(p) <= threshold)
            bayes.append(np.argmax(T[(L - 2 + o) % 3][seq[-2]]) == y)
        hits, simple, bayes = map(np.array, (hits, simple, bayes))
        row = table[table["length"] == L].iloc[0]
        assert row["n"] == n and row["data"] == "test" and row["model"] == "looped"
        assert row["acc_total"] == pytest.approx(hits.mean())
        assert row["share_simple"] == pytest.approx(simple.mean())
        assert row["acc_simple"] == pytest.approx(hits[simple].mean())
        assert row["bayes_total"] == pytest.approx(bayes.mean())
        assert 0.05 < hits.mean() < 0.95  # the case actually discriminates


def test_threshold_is_the_max_training_ic_and_inclusive():
    task = {"train_ic": np.array([1.0, 2.5, 2.0])}
    assert lengthgen.simple_threshold(task) == 2.5
    np.testing.assert_array_equal(lengthgen.is_simple(np.array([2.4, 2.5, 2.6]), 2.5), [True, True, False])


def test_nothing_simple_gives_nan_not_zero():
    run = tiny_run()
    task = dict(run.task, train_ic=np.full_like(run.task["train_ic"], 0.1))  # below any sequence's IC
    table = lengthgen.accuracy_table([dataclasses.replace(run, task=task)], (8,), 200, include_training=False)
    assert table["share_simple"].iloc[0] == 0.0
    assert np.isnan(table["acc_simple"].iloc[0]) and np.isnan(table["bayes_simple"].iloc[0])


def test_training_row_reproduces_the_run_s_final_training_accuracy(default_runs):
    table = lengthgen.accuracy_table(default_runs, (8,), 100)
    for run in default_runs:
        row = table[(table["model"] == run.config.model) & (table["data"] == "train")].iloc[0]
        assert row["length"] == 4 and row["share_simple"] == 1.0
        assert row["acc_total"] == pytest.approx(run.records["acc_all"].iloc[-1])


def test_both_models_meet_the_same_test_set_and_the_seed_changes_it(default_runs):
    single, looped = (lengthgen.test_sets(r, (11,), 300, seed=0)[11] for r in default_runs)
    np.testing.assert_array_equal(single.sequences, looped.sequences)
    other = lengthgen.test_sets(default_runs[0], (11,), 300, seed=1)[11]
    assert not np.array_equal(single.sequences, other.sequences)
    # A length's draw does not depend on which other lengths are asked for.
    alone = lengthgen.test_sets(default_runs[0], (8, 11), 300, seed=0)[11]
    np.testing.assert_array_equal(alone.sequences, single.sequences)


def test_an_embedding_without_vectors_for_long_positions_is_refused():
    run = tiny_run(embedding="onehot", d=6)  # one-hot positions 0..2 only
    with pytest.raises(lengthgen.LengthGenError, match="length 8"):
        lengthgen.accuracy_table([run], (8,), 50)


def test_comparison_table_puts_the_paper_beside_ours(default_runs):
    table = lengthgen.accuracy_table(default_runs, lengthgen.PAPER_LENGTHS, 300)
    compare = lengthgen.comparison_table(table)
    assert list(compare["length"]) == [4, 8, 11, 14, 17]
    row = compare[compare["length"] == 11].iloc[0]
    assert row["paper_share_simple"] == 0.645 and row["paper_looped_acc_simple"] == 0.7028
    assert {"single_acc_simple", "looped_acc_simple", "bayes_simple"} <= set(compare.columns)


# ------------------------------------------------------------------------------------------------ CLI
def cli(argv):
    return entry.main(argv)


@pytest.mark.parametrize("argv, message", [
    (["--lengths", "8,x"], "comma-separated integers"),
    (["--lengths", "1"], "between 2 and"),
    (["--n", "0"], "--n must be >= 1"),
    (["--seed", "abc"], "--seed must be an integer"),
    (["--runs", "/nonexistent/runs"], "no run directories"),
])
def test_cli_bad_input_is_one_error_line_and_exit_2(argv, message, capsys, tmp_path):
    assert cli(["length-gen", *argv, "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "t.csv").exists()


def test_cli_writes_the_table_and_refuses_to_overwrite(capsys, tmp_path):
    out = tmp_path / "table.csv"
    assert cli(["length-gen", "--runs", DEFAULT_RUNS, "--lengths", "8,11", "--n", "200", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == list(lengthgen.COLUMNS)
    models = sorted(p.name for p in Path(DEFAULT_RUNS).iterdir() if (p / "config.json").exists())
    assert {"single", "looped"} <= set(models)
    assert len(table) == 3 * len(models) and set(table["model"]) == set(models)
    runs = [read_run(f"{DEFAULT_RUNS}/{m}") for m in models]
    order = ["model", "data", "length"]
    expected = lengthgen.accuracy_table(runs, (8, 11), 200)
    pd.testing.assert_frame_equal(table.sort_values(order).reset_index(drop=True),
                                  expected.sort_values(order).reset_index(drop=True), check_dtype=False)
    assert "paper_looped_acc_simple" in capsys.readouterr().out
    assert cli(["length-gen", "--runs", DEFAULT_RUNS, "--n", "50", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err



def test_last_step_t3_ends_every_length_with_t3_and_cyclic_follows_the_cycle():
    T = np.arange(3)[:, None, None] * np.ones((3, 3, 3))   # T[k] filled with k: which matrix is used
    for L in range(2, 20):
        t3 = lengthgen.phased_transitions(T, L, "T3")
        assert t3[(L - 2) % 3][0, 0] == 2                      # the last step (j = L - 1) uses T3
        assert lengthgen.phased_transitions(T, L, "cyclic")[(L - 2) % 3][0, 0] == (L - 2) % 3
    np.testing.assert_array_equal(lengthgen.phased_transitions(T, 4, "T3"), T)  # training: unchanged
    with pytest.raises(lengthgen.LengthGenError, match="last step"):
        lengthgen.phased_transitions(T, 8, "T1")


def test_chance_bayes_and_intervals_stand_beside_every_accuracy():
    run = tiny_run()
    table = lengthgen.accuracy_table([run], (8,), 300, include_training=True)
    for row in table.itertuples():
        assert row.chance == pytest.approx(1 / 3)
        assert row.acc_total_low <= row.acc_total <= row.acc_total_high
        assert row.acc_simple_low <= row.acc_simple <= row.acc_simple_high
        assert 0 <= row.bayes_total <= 1 and row.n_simple == round(row.share_simple * row.n)
    assert list(table.columns) == list(lengthgen.COLUMNS)
    compared = lengthgen.comparison_table(table)
    assert {"chance", "bayes_simple", "last_step"} <= set(compared.columns)


def test_reading_and_threshold_sentences_follow_the_numbers():
    def table(values):
        return pd.DataFrame({"data": "test", "model": ["single", "looped"] * 2, "length": [8, 8, 11, 11],
                             "acc_simple": values, "share_simple": 0.9, "n_simple": 9, "n": 10})
    below, above = table([0.1, 0.2, 0.05, 0.3]), table([0.6, 0.7, 0.5, 0.65])
    assert "most plausibly tested like with like" in lengthgen.reading_sentence(above, below)
    assert "do not decide" in lengthgen.reading_sentence(above, above)
    text = lengthgen.threshold_sentence(9.84, above)
    assert "9.84" in text and "14.57" in text and "L = 8: 90.0 % (9 of 10)" in text


def test_cli_last_step_option(tmp_path, capsys):
    assert entry.main(["length-gen", "--runs", DEFAULT_RUNS, "--lengths", "8", "--n", "200", "--last-step", "T1"]) == 2
    assert "--last-step must be one of" in capsys.readouterr().err
    out = tmp_path / "t.csv"
    assert entry.main(["length-gen", "--runs", DEFAULT_RUNS, "--lengths", "8", "--n", "200", "--last-step", "cyclic",
                       "--out", str(out)]) == 0
    written = pd.read_csv(out)
    assert set(written.loc[written["data"] == "test", "last_step"]) == {"cyclic"} and "chance" in written.columns


@pytest.mark.parametrize("model", ["single", "looped", "shift"])
def test_final_predictions_are_the_torch_models_argmax(model, monkeypatch):
    """The numpy forward pass (toy/gradient.py) against the torch model (models.logits), the
    peer, at a length past training (L = 11), on contexts in slices and at once."""
    import torch

    run = tiny_run(model, shift_epoch=2)
    contexts = np.random.default_rng(7).integers(0, 3, size=(301, 10))
    token, position = lengthgen.embedding_for(run, contexts.shape[1])
    E0 = models.embed(torch.from_numpy(contexts), torch.from_numpy(token), torch.from_numpy(position))
    with torch.no_grad():
        want = models.logits(torch.from_numpy(run.thetas[-1]), E0, run.config.loops_at(run.config.epochs))
    assert np.array_equal(lengthgen.final_predictions(run, contexts), want.argmax(-1).numpy())
    monkeypatch.setattr(lengthgen, "PREDICT_CHUNK", 7)
    assert np.array_equal(lengthgen.final_predictions(run, contexts), want.argmax(-1).numpy())
