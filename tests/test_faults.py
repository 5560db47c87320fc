"""The fault matrix (issue 10): bad CLI values, signals, corrupt run files × every consumer,
bad operator settings. Each case must end in one clear message (never a traceback) and lose
no finished work. Most cases call `main([...])` in-process; only the signal cases start a
real `python -m loopviz` (each costs a torch import)."""
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopviz import __main__ as cli_module
from loopviz.__main__ import main
from loopviz.config import RunConfig
from loopviz.runs.format import RunFormatError, read_run, run_data_from_log, write_run

REPO = Path(__file__).resolve().parent.parent
TINY = RunConfig(model="single", d=3, epochs=6, hessian_every=2)


def _train(config: RunConfig, directory: Path) -> Path:
    from loopviz.runs.execute import execute
    return write_run(run_data_from_log(execute(config, workers=0)), directory)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A complete Single and Looped run, and a diverged Looped run (non-finite at its last epoch)."""
    root = tmp_path_factory.mktemp("faults")
    out = {"single": _train(TINY, root / "good" / "single"),
           "looped": _train(TINY.replace(model="looped"), root / "good" / "looped"),
           "diverged": _train(RunConfig(model="looped", d=8, loops=8, init_scale=10, epochs=5, hessian_every=0),
                              root / "diverged" / "looped")}
    assert read_run(out["diverged"]).status == "diverged"
    return out


def cli(argv: list[str], capsys) -> tuple[int, str]:
    """main(argv) in-process: (exit code, stderr); argparse's SystemExit counts as an exit code."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ------------------------------------------------------------------------------ corrupt files
def _npz(path: Path, **changes) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)


def _npz_get(path: Path, key: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        return data[key]


def _records(path: Path, change) -> None:
    table = pd.read_csv(path)
    changed = change(table)
    (table if changed is None else changed).to_csv(path, index=False)


def _json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])


def _weights_fewer(d: Path) -> None:
    w = d / "weights.npz"
    _npz(w, **{k: _npz_get(w, k)[:-2] for k in ("epochs", "W_K", "W_Q", "W_V", "W_h")})


def _weights_zero(d: Path) -> None:
    w = d / "weights.npz"
    _npz(w, **{k: _npz_get(w, k)[:0] for k in ("epochs", "W_K", "W_Q", "W_V", "W_h")})


def _set(table, column, row, value):
    table[column] = table[column].astype(object) if isinstance(value, str) else table[column]
    table.loc[row, column] = value


# kind → (the file the message must name, how to break a good run directory)
CORRUPTIONS = {
    "config not UTF-8": ("config.json", lambda d: (d / "config.json").write_bytes(b'{"d": \xff\xfe}')),
    "config empty": ("config.json", lambda d: (d / "config.json").write_bytes(b"")),
    "config not JSON": ("config.json", lambda d: (d / "config.json").write_text("{d: 3")),
    "config 100k-deep JSON": ("config.json", lambda d: (d / "config.json").write_text("[" * 100_000)),
    "config 5000-digit int": ("config.json", lambda d: _json(d / "config.json",
                                                             lambda c: c.update(seed=0)) or
                              (d / "config.json").write_text((d / "config.json").read_text()
                                                             .replace('"seed": 0', '"seed": ' + "7" * 5000))),
    "config unknown field": ("config.json", lambda d: _json(d / "config.json", lambda c: c.update(depth=2))),
    "config seed edited": ("config.json", lambda d: _json(d / "config.json", lambda c: c.update(seed=51))),
    "config data_seed edited": ("config.json", lambda d: _json(d / "config.json", lambda c: c.update(data_seed=7))),
    "config lr edited": ("config.json", lambda d: _json(d / "config.json", lambda c: c.update(lr=0.5))),
    "config epochs edited": ("config.json", lambda d: _json(d / "config.json", lambda c: c.update(epochs=9))),
    "meta not UTF-8": ("meta.json", lambda d: (d / "meta.json").write_bytes(b"\xff\xfe\x00")),
    "meta not an object": ("meta.json", lambda d: (d / "meta.json").write_text("[1, 2]")),
    "meta unknown status": ("meta.json", lambda d: _json(d / "meta.json", lambda m: m.update(status="done"))),
    "meta no status": ("meta.json", lambda d: _json(d / "meta.json", lambda m: m.pop("status"))),
    "meta diverged without NaN": ("meta.json", lambda d: _json(d / "meta.json",
                                                               lambda m: m.update(status="diverged",
                                                                                  diverged_epoch=2))),
    "records truncated": ("records.csv", lambda d: _records(d / "records.csv", lambda t: t.iloc[:-3])),
    "records cut mid-line": ("records.csv", lambda d: _truncate(d / "records.csv")),
    "records header only": ("records.csv", lambda d: _records(d / "records.csv",
                                                              lambda t: t.iloc[:0])),
    "records not UTF-8": ("records.csv", lambda d: (d / "records.csv").write_bytes(
        (d / "records.csv").read_bytes() + b"\xff\xfe,\xff\n")),
    "records column missing": ("records.csv", lambda d: _records(d / "records.csv",
                                                                 lambda t: t.drop(columns="acc_high"))),
    "records NaN loss": ("records.csv", lambda d: _records(d / "records.csv", lambda t: _set(t, "loss", 3, np.nan))),
    "records inf accuracy": ("records.csv", lambda d: _records(d / "records.csv",
                                                               lambda t: _set(t, "acc_all", 1, np.inf))),
    "records text in a number column": ("records.csv", lambda d: _records(d / "records.csv",
                                                                          lambda t: _set(t, "loss", 2, "abc"))),
    "records epochs reordered": ("records.csv", lambda d: _records(d / "records.csv",
                                                                   lambda t: _set(t, "epoch", 2, 5))),
    "records loops edited": ("records.csv", lambda d: _records(d / "records.csv", lambda t: _set(t, "loops", 3, 3))),
    "records.csv is a directory": ("records.csv", lambda d: ((d / "records.csv").unlink(),
                                                             (d / "records.csv").mkdir())),
    "weights missing": ("weights.npz", lambda d: (d / "weights.npz").unlink()),
    "weights not a zip": ("weights.npz", lambda d: (d / "weights.npz").write_bytes(b"not a zip")),
    "weights cut in half": ("weights.npz", lambda d: _truncate(d / "weights.npz")),
    "weights zero epochs": ("weights.npz", _weights_zero),
    "weights fewer than records": ("weights.npz", _weights_fewer),
    "weights NaN": ("weights.npz", lambda d: _npz(d / "weights.npz",
                                                  W_K=_npz_get(d / "weights.npz", "W_K") * np.nan)),
    "weights initialisation edited": ("weights.npz", lambda d: _npz(d / "weights.npz",
                                                                    W_Q=_npz_get(d / "weights.npz", "W_Q") + 1)),
    "weights pickled object array": ("weights.npz", lambda d: np.savez(
        d / "weights.npz", epochs=np.array([object()], dtype=object), W_K=np.zeros(1), W_Q=np.zeros(1),
        W_V=np.zeros(1), W_h=np.zeros(1))),
    "spectra NaN": ("spectra.npz", lambda d: _npz(d / "spectra.npz",
                                                  eigenvalues=_npz_get(d / "spectra.npz", "eigenvalues") * np.nan)),
    "spectra at an epoch never trained": ("spectra.npz", lambda d: _npz(
        d / "spectra.npz", epochs=_npz_get(d / "spectra.npz", "epochs") + 100)),
    "spectra one missing": ("spectra.npz", lambda d: _npz(
        d / "spectra.npz", epochs=_npz_get(d / "spectra.npz", "epochs")[:-1],
        eigenvalues=_npz_get(d / "spectra.npz", "eigenvalues")[:-1])),
    "spectra wrong width": ("spectra.npz", lambda d: _npz(
        d / "spectra.npz", eigenvalues=_npz_get(d / "spectra.npz", "eigenvalues")[:, :-1])),
    "task other transitions": ("task.npz", lambda d: _npz(
        d / "task.npz", transitions=_npz_get(d / "task.npz", "transitions")[:, ::-1])),
    "task other training inputs": ("task.npz", lambda d: _npz(
        d / "task.npz", train_inputs=(_npz_get(d / "task.npz", "train_inputs") + 1) % 3)),
    "task key missing": ("task.npz", lambda d: _npz(d / "task.npz", val_bucket=None)),
    "task not a zip": ("task.npz", lambda d: (d / "task.npz").write_text("{}")),
}
CONFIG_FILE_KINDS = [k for k in CORRUPTIONS if k.startswith("config") and "edited" not in k
                     and "unknown" not in k]


def corrupt_copy(source: Path, directory: Path, kind: str) -> Path:
    shutil.copytree(source, directory)
    CORRUPTIONS[kind][1](directory)
    return directory


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_read_run_refuses_with_one_line_naming_the_file(runs, tmp_path, kind):
    broken = corrupt_copy(runs["single"], tmp_path / "single", kind)
    with pytest.raises(RunFormatError) as info:
        read_run(broken)
    message = str(info.value)
    assert "\n" not in message and CORRUPTIONS[kind][0] in message, message


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_the_store_sets_a_corrupt_run_aside_and_keeps_the_others(runs, tmp_path, kind):
    from loopviz.runs.store import RunStore
    store = RunStore(tmp_path / "store", bundled=None)
    config = RunConfig.from_json((runs["single"] / "config.json").read_text())
    corrupt_copy(runs["single"], store.root / config.key(), kind)
    looped = RunConfig.from_json((runs["looped"] / "config.json").read_text())
    shutil.copytree(runs["looped"], store.root / looped.key())
    assert store.load(config) is None
    assert len(store.problems) == 1 and CORRUPTIONS[kind][0] in store.problems[0]
    names = sorted(p.name for p in store.root.iterdir())
    assert not (store.root / config.key()).exists()
    assert any(n.startswith(f".corrupt-{config.key()}") for n in names)
    assert store.load(config) is None and len(store.problems) == 1  # the next visit is quiet: nothing to re-read
    assert store.load(looped).status == "complete"


def test_a_corrupt_bundled_run_is_reported_never_moved(runs, tmp_path):
    from loopviz.runs.store import RunStore
    bundled = tmp_path / "assets"
    broken = corrupt_copy(runs["single"], bundled / "default" / "single", "records truncated")
    store = RunStore(tmp_path / "store", bundled=bundled)
    assert store.load(TINY) is None
    assert broken.is_dir() and "records.csv" in store.problems[0]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_length_gen_refuses_a_corrupt_run_with_one_line(runs, tmp_path, kind, capsys):
    corrupt_copy(runs["single"], tmp_path / "runs" / "single", kind)
    shutil.copytree(runs["looped"], tmp_path / "runs" / "looped")
    out = tmp_path / "t.csv"
    code, err = cli(["length-gen", "--runs", str(tmp_path / "runs"), "--lengths", "5", "--n", "20",
                     "--out", str(out)], capsys)
    assert code == 2 and CORRUPTIONS[kind][0] in one_error_line(err)
    assert not out.exists()


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_shift_never_reuses_a_corrupt_single_run(runs, tmp_path, kind, capsys):
    corrupt_copy(runs["single"], tmp_path / "out" / "single", kind)
    assert cli_module._single_prior(TINY.replace(model="shift", shift_epoch=3), {}, tmp_path / "out") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: ") and "Traceback" not in err[0]


def test_shift_reuses_a_good_single_run(runs, tmp_path):
    shutil.copytree(runs["single"], tmp_path / "out" / "single")
    prior = cli_module._single_prior(TINY.replace(model="shift", shift_epoch=3), {}, tmp_path / "out")
    assert prior is not None and prior.status == "complete"


@pytest.mark.parametrize("kind", CONFIG_FILE_KINDS)
def test_run_config_file_that_is_corrupt_is_bad_input(runs, tmp_path, kind, capsys):
    broken = corrupt_copy(runs["single"], tmp_path / "single", kind)
    code, err = cli(["run", "--config", str(broken / "config.json"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "config.json" in one_error_line(err)
    assert not (tmp_path / "o").exists()


def test_the_good_runs_pass_every_check(runs):
    for path in runs.values():
        read_run(path)
    for model in ("single", "looped", "shift"):
        assert read_run(REPO / "assets" / "default" / model).status == "complete"


def test_a_diverged_run_may_end_non_finite_but_length_gen_says_so(runs, tmp_path, capsys):
    run = read_run(runs["diverged"])
    assert not np.isfinite(run.records["loss"].iloc[-1]) or not np.isfinite(run.thetas[-1]).all()
    shutil.copytree(runs["diverged"], tmp_path / "runs" / "looped")
    code, err = cli(["length-gen", "--runs", str(tmp_path / "runs"), "--lengths", "5", "--n", "20"], capsys)
    if np.isfinite(run.thetas[-1]).all():
        assert code == 0 and "diverged" in err
    else:
        assert code == 2 and "diverged" in one_error_line(err)


def test_length_gen_evaluates_the_shortest_documented_length(capsys):
    code = main(["length-gen", "--runs", str(REPO / "assets" / "default"), "--lengths", "2", "--n", "50"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    table = pd.read_csv(io.StringIO(captured.out))
    assert 2 in set(table["length"])


# ------------------------------------------------------------------------------ CLI values
def _existing_file(tmp_path: Path) -> str:
    path = tmp_path / "a-file"
    path.write_text("keep me")
    return str(path)


def _config_file(content: bytes):
    def make(tmp_path: Path) -> str:
        path = tmp_path / "config.json"
        path.write_bytes(content)
        return str(path)
    return make


OUT = "{out}"   # replaced by a fresh path under tmp_path
RUN = ["run", "--d", "2", "--epochs", "2", "--workers", "0"]
SWEEP = ["sweep-seeds", "--d", "2", "--epochs", "2", "--workers", "1"]
SHIFT = ["sweep-shift", "--d", "2", "--epochs", "2", "--workers", "1"]
BAD_VALUES = {
    "no command": ([], "required"),
    "unknown option": (["run", "--out", OUT, "--bogus", "1"], "unrecognized"),
    "workers not a number": (["run", "--out", OUT, "--workers", "abc"], "invalid int"),
    "workers negative": ([*RUN, "--out", OUT, "--workers", "-1"], "--workers"),
    "model twice": ([*RUN, "--model", "single,single", "--out", OUT], "twice"),
    "model empty": ([*RUN, "--model", ",", "--out", OUT], "unknown model"),
    "n_train 1e23": ([*RUN, "--n-train", "1e23", "--out", OUT], "n_train"),
    "n_train 10^23": ([*RUN, "--n-train", "1" + "0" * 23, "--out", OUT], "n_train"),
    "epochs 1e9": ([*RUN, "--epochs", "1000000000", "--out", OUT], "epochs"),
    "d 1000": ([*RUN, "--d", "1000", "--out", OUT], "d must be"),
    "lr nan": ([*RUN, "--lr", "nan", "--out", OUT], "lr"),
    "lr inf": ([*RUN, "--lr", "inf", "--out", OUT], "lr"),
    "seed negative": ([*RUN, "--seed", "-1", "--out", OUT], "seed"),
    "seed 2^40": ([*RUN, "--seed", str(2 ** 40), "--out", OUT], "seed"),
    "seed 5000 digits": ([*RUN, "--seed", "7" * 5000, "--out", OUT], "seed"),
    "batch larger than data": ([*RUN, "--batch-size", "10000", "--out", OUT], "batch_size"),
    "shift epoch past the end": ([*RUN, "--model", "shift", "--shift-epoch", "100", "--out", OUT], "shift_epoch"),
    "config not UTF-8": ([*RUN, "--config", _config_file(b'{"d": "\xff"}'), "--out", OUT], "UTF-8"),
    "config deep JSON": ([*RUN, "--config", _config_file(b"[" * 100_000), "--out", OUT], "JSON"),
    "config 5000-digit int": ([*RUN, "--config", _config_file(b'{"seed": ' + b"7" * 5000 + b"}"), "--out", OUT],
                              "JSON"),
    "config a list": ([*RUN, "--config", _config_file(b"[1]"), "--out", OUT], "JSON object"),
    "config over 1 MB": ([*RUN, "--config", _config_file(b" " * 2_000_000 + b"{}"), "--out", OUT], "bytes"),
    "config a directory": ([*RUN, "--config", lambda tmp: str(tmp), "--out", OUT], "cannot read"),
    "config missing": ([*RUN, "--config", "/nonexistent/c.json", "--out", OUT], "cannot read"),
    "out empty": ([*RUN, "--out", ""], "--out is empty"),
    "out a file": ([*RUN, "--out", _existing_file], "is a file"),
    "out under /proc": ([*RUN, "--out", "/proc/loopviz-x"], "cannot write"),
    "out/model a file": ([*RUN, "--model", "single", "--out", lambda tmp: (
        (tmp / "o").mkdir(), (tmp / "o" / "single").write_text("x"), str(tmp / "o"))[-1]], "is a file"),
    "seeds 10^9": ([*SWEEP, "--seeds", "1000000000", "--out", OUT], f"at most|between 1 and {cli_module.MAX_SEEDS}"),
    "seeds 0": ([*SWEEP, "--seeds", "0", "--out", OUT], "--seeds"),
    "first seed negative": ([*SWEEP, "--first-seed", "-1", "--out", OUT], "--first-seed"),
    "sweep out a directory": ([*SWEEP, "--seeds", "1", "--out", lambda tmp: str(tmp)], "is a directory"),
    "sweep out empty": ([*SWEEP, "--seeds", "1", "--out", ""], "--out is empty"),
    "sweep out under /proc": ([*SWEEP, "--seeds", "1", "--out", "/proc/loopviz-x/s.csv"], "cannot write"),
    "sweep summary exists": ([*SWEEP, "--seeds", "1", "--out", lambda tmp: (
        (tmp / "s.csv.summary.txt").write_text("keep"), str(tmp / "s.csv"))[-1]], "summary.txt already exists"),
    "shift epochs not numbers": ([*SHIFT, "--shift-epochs", "a,b", "--out", OUT], "comma-separated"),
    "repeats 0": ([*SHIFT, "--shift-epochs", "1", "--repeats", "0", "--out", OUT], "--repeats"),
    "shift raw exists": ([*SHIFT, "--shift-epochs", "1", "--out", lambda tmp: (
        (tmp / "s.csv.raw.csv").write_text("keep"), str(tmp / "s.csv"))[-1]], "not a loopviz sweep file"),
    "shift out under /proc": ([*SHIFT, "--shift-epochs", "1", "--out", "/proc/loopviz-x/s.csv"], "cannot write"),
    "length n 1e9": (["length-gen", "--n", "1000000000", "--out", OUT], "at most"),
    "length n 1e9 text": (["length-gen", "--n", "1e9", "--out", OUT], "integer"),
    "length 1": (["length-gen", "--lengths", "1", "--out", OUT], "between 2 and"),
    "length out under /proc": (["length-gen", "--out", "/proc/loopviz-x/t.csv"], "cannot write"),
    "length out a directory": (["length-gen", "--out", lambda tmp: str(tmp)], "is a directory"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_cli_value_is_one_error_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    argv, message = BAD_VALUES[case]
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    argv = [str(out) if a == OUT else a(work) if callable(a) else a for a in argv]
    before = sorted((str(p), p.stat().st_mtime_ns) for p in work.rglob("*"))
    code, err = cli(argv, capsys)
    assert code == 2
    assert re.search(message, one_error_line(err)), err
    assert sorted((str(p), p.stat().st_mtime_ns) for p in work.rglob("*")) == before  # nothing written


def test_device_cuda_without_cuda_is_bad_input(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, err = cli([*RUN, "--device", "cuda", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "CUDA" in one_error_line(err) and not (tmp_path / "o").exists()


def test_help_is_fast_and_teaches_every_option():
    """--help never imports torch or pandas, and every option shows a meaning and its default."""
    code = ("import sys, contextlib, io\nfrom loopviz.__main__ import main\n"
            "for cmd in ('run', 'sweep-seeds', 'sweep-shift', 'length-gen'):\n"
            "    buf = io.StringIO()\n"
            "    with contextlib.redirect_stdout(buf):\n"
            "        try: main([cmd, '--help'])\n"
            "        except SystemExit: pass\n"
            "    print(buf.getvalue())\n"
            "print('LOADED', 'torch' in sys.modules, 'pandas' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "LOADED False False" in result.stdout
    text = re.sub(r"\s+", " ", result.stdout)
    for f in cli_module.fields(RunConfig):
        assert f.name in cli_module.OPTION_HELP, f"add a line of help for --{f.name} to OPTION_HELP"
        assert f"--{f.name.replace('_', '-')}" in text
    for choice in ("random, onehot", "dirichlet, uniform", "auto, cpu, cuda", "single, looped, shift"):
        assert choice in text
    assert text.count("default:") >= 3 * len(cli_module.fields(RunConfig))


def test_length_gen_defaults_in_the_parser_are_the_papers():
    from loopviz.toy import lengthgen
    d = cli_module.LENGTHGEN_DEFAULTS
    assert d["lengths"] == ",".join(map(str, lengthgen.PAPER_LENGTHS)) and int(d["n"]) == lengthgen.PAPER_N_TEST
    assert d["max_length"] == lengthgen.MAX_LENGTH and d["max_n"] == lengthgen.MAX_N


def test_run_summary_prints_accuracies_by_bucket_and_the_bayes_ceiling(tmp_path, capsys):
    assert main([*RUN, "--model", "looped", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "low IC" in out and "high IC" in out and "Bayes (train)" in out
    run = read_run(tmp_path / "o" / "looped")
    assert f"{run.records['acc_high'].iloc[-1]:.3f}" in out


# ------------------------------------------------------------------------------ signals
class Terminal:
    """A real `python -m loopviz` in its own process group with stderr on a pseudo-terminal,
    as a user's shell runs it: the live progress bar shows how far it got."""

    def __init__(self, args: list[str]):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "loopviz", *args], cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=slave, text=True, start_new_session=True)
        os.close(slave)
        self.seen = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed the terminal
            return False
        self.seen += chunk.decode(errors="replace")
        return bool(chunk)

    def wait_for(self, pattern: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while not re.search(pattern, self.seen):
            assert time.time() < deadline and self.proc.poll() is None, self.seen[-2000:]
            self._read(0.1)

    def finish(self, timeout: float = 60) -> str:
        deadline = time.time() + timeout
        while self._read(0.1) and time.time() < deadline:
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
        self.proc.wait(timeout=max(1.0, deadline - time.time()))
        os.close(self.master)
        return self.seen


# d = 8 (P = 216) puts spectra in a worker process (small P computes them in the training thread).
LONG = ["run", "--d", "8", "--epochs", "100000", "--hessian-every", "1", "--workers", "1"]
TRAINING = r"epoch \d{2,}/100000"                 # records exist
WITH_SPECTRA = r"epoch \d{2,}/100000 spectra [1-9]"  # and spectra from the worker too


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_cancels_and_keeps_records_and_spectra(tmp_path):
    term = Terminal([*LONG, "--model", "looped", "--out", str(tmp_path / "o")])
    term.wait_for(WITH_SPECTRA)
    os.killpg(term.proc.pid, signal.SIGINT)
    err = term.finish()
    assert term.proc.returncode == 130, err
    assert "Traceback" not in err and "100%" not in err and err.count("cancelled at epoch") == 1
    run = read_run(tmp_path / "o" / "looped")  # passes every consistency check
    assert run.status == "cancelled" and len(run.records) >= 10 and len(run.spectrum_epochs) >= 1


@pytest.mark.slow
def test_ctrl_c_twice_during_single_stops_everything_and_loses_nothing(tmp_path):
    term = Terminal([*LONG, "--model", "single,looped", "--out", str(tmp_path / "o")])
    term.wait_for(TRAINING)
    os.killpg(term.proc.pid, signal.SIGINT)
    time.sleep(0.05)
    os.killpg(term.proc.pid, signal.SIGINT)
    err = term.finish()
    assert term.proc.returncode == 130, err
    assert "Traceback" not in err
    run = read_run(tmp_path / "o" / "single")
    assert run.status == "cancelled" and len(run.records) >= 10
    assert not (tmp_path / "o" / "looped").exists()  # no further model trains after a Ctrl-C


@pytest.mark.slow
def test_sigterm_stops_the_run_and_its_workers_promptly(tmp_path):
    term = Terminal([*LONG, "--model", "looped", "--out", str(tmp_path / "o")])
    term.wait_for(TRAINING)
    children = [c for task in Path(f"/proc/{term.proc.pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    assert children, "a spectrum worker should be running"
    term.proc.terminate()
    err = term.finish()
    assert term.proc.returncode == 143, err
    assert read_run(tmp_path / "o" / "looped").status == "cancelled"
    assert not any(Path(f"/proc/{c}").exists() and "zombie" not in Path(f"/proc/{c}/status").read_text()
                   for c in children)


def test_a_cancel_keeps_spectra_finished_behind_an_unfinished_chunk():
    """Two workers: the first one's chunk is still computing, the second's are done. A cancel
    must keep the second's spectra (each worker answers its own chunks in order)."""
    import queue
    from collections import deque

    from loopviz.runs.execute import SpectrumPool
    from loopviz.runs.spectrum_worker import SpectrumWorker
    slow, fast = SpectrumWorker.__new__(SpectrumWorker), SpectrumWorker.__new__(SpectrumWorker)
    pool = SpectrumPool.__new__(SpectrumPool)
    pool.results, pool.backlog, pool.done = queue.Queue(), deque(), {}
    pool.workers, pool.flight, pool.open = [slow, fast], {slow: deque([0]), fast: deque([1, 2])}, 3
    pool.results.put((fast, [(20, np.ones(3))]))
    pool.results.put((fast, [(30, np.ones(3))]))
    cancel = __import__("threading").Event()
    cancel.set()
    assert [e for e, _ in pool.harvest(wait=True, cancel=cancel)] == [20, 30]
    assert pool.open == 1 and list(pool.flight[slow]) == [0]  # the unfinished chunk is left, not waited for


@pytest.mark.slow
def test_a_spectrum_worker_stops_at_once_when_its_parent_dies():
    """kill -9 of the parent (or of a server): the worker sees its input close and exits mid-chunk."""
    script = ("import numpy as np, sys, time\n"
              "from loopviz.config import RunConfig\n"
              "from loopviz.runs.spectrum_worker import SpectrumWorker\n"
              "from loopviz.toy.embedding import param_count\n"
              "w = SpectrumWorker(RunConfig(d=24).to_json())\n"
              "w.submit([(e, np.random.default_rng(e).standard_normal(param_count(24)) * .1, 3) for e in range(40)])\n"
              "print(w.process.pid, flush=True)\n"
              "time.sleep(3)\n")  # the worker is now computing the chunk (it loads torch first)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    parent.wait(timeout=30)
    parent_gone = time.time()
    parent.kill()
    while Path(f"/proc/{worker}").exists() and time.time() - parent_gone < 3:
        if "zombie" in Path(f"/proc/{worker}/status").read_text().lower():
            break
        time.sleep(0.05)
    alive = Path(f"/proc/{worker}").exists() and "zombie" not in Path(f"/proc/{worker}/status").read_text().lower()
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker kept computing after its parent was gone"


# ------------------------------------------------------------------------------ operator settings
@pytest.mark.parametrize("raw, value, warned", [
    (None, 2, False), ("", 2, False), ("3", 3, False), (" 4 ", 4, False), ("abc", 2, True), ("-1", 2, True),
    ("0", 2, True), ("1e3", 2, True), ("99999", 2, True), ("2.5", 2, True),
])
def test_operator_setting_never_raises(raw, value, warned):
    from loopviz.runs.store import operator_setting
    environ = {} if raw is None else {"LOOPVIZ_MAX_JOBS": raw}
    got, warning = operator_setting("LOOPVIZ_MAX_JOBS", 2, 1, 64, environ)
    assert got == value and bool(warning) == warned
    if warned:
        assert "LOOPVIZ_MAX_JOBS" in warning and "default 2" in warning


@pytest.mark.parametrize("name, raw", [("LOOPVIZ_MAX_JOBS", "abc"), ("LOOPVIZ_MAX_JOBS", "0"),
                                       ("LOOPVIZ_MAX_JOBS", "-1"), ("LOOPVIZ_SPECTRUM_WORKERS", "abc"),
                                       ("LOOPVIZ_SPECTRUM_WORKERS", "-3")])
def test_a_bad_setting_gives_a_working_registry_and_a_warning_on_the_page(name, raw, monkeypatch, fresh_jobs):
    from loopviz.ui import jobs
    monkeypatch.setenv(name, raw)
    jobs.registry.clear()
    reg = jobs.registry()
    assert any(name in w for w in reg.warnings)
    assert any(name in p for p in jobs.store_problems())
    jobs.registry.clear()


def test_zero_running_jobs_is_refused():
    from loopviz.runs.store import JobRegistry, RunStore
    with pytest.raises(ValueError, match="max_running"):
        JobRegistry(RunStore(bundled=None), max_running=0)


def _fake_job(config: RunConfig, status: str, owner=None, started: bool = True, finished: float = 0.0):
    from loopviz.runs.log import RunLog
    from loopviz.runs.store import Job
    job = Job(config, RunLog(config), owner=owner)
    job.started_at = time.time() if started else None
    if status != "running":
        job.log.finish(status)
        job.log.finished = finished
    return job


def test_queue_position_counts_the_jobs_that_block_it(tmp_path):
    from loopviz.runs.store import JobRegistry, RunStore
    reg = JobRegistry(RunStore(tmp_path, bundled=None), max_running=1)
    running = _fake_job(TINY.replace(seed=1), "running")
    first = _fake_job(TINY.replace(seed=2), "running", started=False)
    second = _fake_job(TINY.replace(seed=3), "running", started=False)
    second.queued_at = first.queued_at + 1
    for job in (running, first, second):
        reg.jobs[job.config.key()] = job
    assert reg.queue_position(first) == (1, 0)
    assert reg.queue_position(second) == (1, 1)
    assert reg.queue_position(running) == (0, 0)


def test_finished_jobs_are_forgotten_beyond_a_bound(tmp_path):
    from loopviz.runs.store import FINISHED_KEPT, JobRegistry, RunStore
    reg = JobRegistry(RunStore(tmp_path, bundled=None))
    for i in range(FINISHED_KEPT + 5):
        job = _fake_job(TINY.replace(seed=i), "complete", finished=float(i))
        reg.jobs[job.config.key()] = job
    live = _fake_job(TINY.replace(seed=999), "running")
    reg.jobs[live.config.key()] = live
    with reg.lock:
        reg._forget_finished()
    kept = [j.config.seed for j in reg.jobs.values() if j.log.done]
    assert sorted(kept) == list(range(5, FINISHED_KEPT + 5)) and live.config.key() in reg.jobs


def test_one_session_cannot_fill_the_queue(tmp_path):
    from loopviz.runs.store import MAX_PER_OWNER, JobRegistry, QueueFull, RunStore
    reg = JobRegistry(RunStore(tmp_path, bundled=None))
    for i in range(MAX_PER_OWNER):
        job = _fake_job(TINY.replace(seed=i), "running", owner="visitor", started=False)
        reg.jobs[job.config.key()] = job
    with pytest.raises(QueueFull, match="this session"):
        reg.start(TINY.replace(seed=500), owner="visitor")
    assert TINY.replace(seed=500).key() not in reg.jobs


def test_streamlit_binds_to_loopback_by_default():
    import tomllib
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"


# ------------------------------------------------------------------------------ pages
@pytest.fixture
def store_root():
    from loopviz.runs.store import DEFAULT_STORE
    return DEFAULT_STORE


def _store_pair(config: RunConfig, root: Path, diverged_looped: bool = False) -> None:
    """Single and Looped of `config` in the store; with diverged_looped, Looped as a run that
    diverged at its last epoch (the app's ranges hold no config that diverges in a few epochs)."""
    from loopviz.runs.execute import execute
    for model in ("single", "looped"):
        c = config.replace(model=model)
        if (root / c.key()).exists():
            continue
        run = run_data_from_log(execute(c, workers=0))
        if diverged_looped and model == "looped":
            last = int(run.records["epoch"].iloc[-1])
            run.records.loc[run.records.index[-1], "loss"] = np.inf
            run.thetas[-1] = np.nan
            run.meta.update(status="diverged", diverged_epoch=last,
                            message=f"diverged at epoch {last}: the loss or gradient is not finite")
        write_run(run, root / c.key())


def test_length_page_opens_for_a_run_shorter_than_the_shift_epoch(fresh_jobs, store_root):
    from tests.apptest_helpers import app_test
    config = RunConfig(d=2, epochs=50, hessian_every=0)
    _store_pair(config, store_root)
    at = app_test("app_pages/length_generalisation.py")
    at.query_params.update({"d": "2", "epochs": "50", "hessian_every": "0"})
    at.session_state["len_n"], at.session_state["len_lengths"] = 100, [5]
    at.run()
    assert not at.exception, at.exception
    assert len(at.dataframe) >= 1


def test_a_stored_diverged_run_says_so_in_a_fresh_process(fresh_jobs, store_root):
    from tests.apptest_helpers import app_test
    config = RunConfig(d=2, epochs=5, hessian_every=0, seed=4)
    _store_pair(config, store_root, diverged_looped=True)
    assert read_run(store_root / config.replace(model="looped").key()).status == "diverged"
    at = app_test("app_pages/spectrum.py")
    at.query_params.update({"d": "2", "epochs": "5", "hessian_every": "0", "seed": "4"})
    at.run()
    assert not at.exception, at.exception
    assert any("diverged at epoch" in e.value for e in at.error)
    # The Length page refuses to evaluate NaN weights, with a message, instead of a table of argmax(NaN).
    at = app_test("app_pages/length_generalisation.py")
    at.query_params.update({"d": "2", "epochs": "5", "hessian_every": "0", "seed": "4"})
    at.session_state["len_n"], at.session_state["len_lengths"] = 100, [5]
    at.run()
    assert not at.exception, at.exception
    assert any("not finite" in e.value for e in at.error) and len(at.dataframe) == 0


def test_a_corrupt_stored_run_is_one_warning_on_the_page_and_set_aside(fresh_jobs, store_root, runs):
    from tests.apptest_helpers import app_test
    config = RunConfig(d=2, epochs=7, hessian_every=0, seed=3)
    _store_pair(config, store_root)
    looped = store_root / config.replace(model="looped").key()
    CORRUPTIONS["weights fewer than records"][1](looped)
    at = app_test("app_pages/spectrum.py")
    at.query_params.update({"d": "2", "epochs": "7", "hessian_every": "0", "seed": "3"})
    at.run()
    assert not at.exception, at.exception
    assert any("weights.npz" in w.value for w in at.warning)
    assert not looped.exists() and any(p.name.startswith(f".corrupt-{looped.name}") for p in store_root.iterdir())
