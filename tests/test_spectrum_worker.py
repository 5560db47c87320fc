"""Warm spectrum workers (runs/spectrum_worker.WorkerPool): reused across jobs and configs,
never polluted by a cancelled job's answers, replaced when they die, never leaked."""
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from loopviz.config import RunConfig
from loopviz.runs import execute as execute_mod
from loopviz.runs.execute import SpectrumPool, execute
from loopviz.runs.spectrum_worker import SpectrumWorker, WorkerPool, array_frame, read_arrays
from loopviz.toy import hessian
from loopviz.toy.embedding import param_count
from loopviz.toy.training import prepare


def chunk(config: RunConfig, first: int, n: int = 3) -> list[tuple[int, np.ndarray, int]]:
    rng = np.random.default_rng(first)
    return [(first + i, rng.standard_normal(param_count(config.d)) * 0.3, config.loops) for i in range(n)]


def expected(config: RunConfig, jobs) -> dict[int, np.ndarray]:
    _, thetas, loops = zip(*jobs)
    values = hessian.spectra(np.stack(thetas), list(loops), *hessian.training_arrays(config))
    return {epoch: v for (epoch, _, _), v in zip(jobs, values)}


def answer(worker: SpectrumWorker, timeout: float = 60) -> dict[int, np.ndarray]:
    who, result = worker.results.get(timeout=timeout)
    assert who is worker
    if isinstance(result, Exception):
        raise result
    return dict(result)


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text().lower()


def close_enough(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for epoch in want:   # the same code in another process (its BLAS may thread differently)
        np.testing.assert_allclose(got[epoch], want[epoch], rtol=0, atol=1e-13 * np.abs(want[epoch]).max())


@pytest.fixture
def new_pool():
    """WorkerPool(per_job=1, capacity=n) for n given; every pool made is closed after the test, pass or fail."""
    made = []

    def make(capacity: int = 1) -> WorkerPool:
        made.append(WorkerPool(per_job=1, capacity=capacity))
        return made[-1]
    yield make
    for pool in made:
        pool.close()


def configured(pool: WorkerPool, config: RunConfig) -> SpectrumWorker:
    """One worker leased from `pool` and configured for `config`."""
    [worker] = pool.lease(1)
    worker.configure(config.to_json())
    return worker


def serves(worker: SpectrumWorker, config: RunConfig, first: int) -> None:
    """The worker answers a chunk of `config` with the spectra computed here, and nothing else."""
    jobs = chunk(config, first)
    worker.submit(jobs)
    close_enough(answer(worker), expected(config, jobs))


def test_one_worker_serves_jobs_of_different_configs_with_each_configs_numbers(new_pool):
    pool = new_pool()
    a, b = RunConfig(d=4), RunConfig(d=3, loops=2, data_seed=7)
    [worker] = pool.lease(1)
    pid = worker.process.pid
    for config in (a, b, a):
        worker.configure(config.to_json())
        serves(worker, config, 10 * config.d)
    pool.give_back([worker])
    [again] = pool.lease(1)
    assert again is worker and again.process.pid == pid   # warm: no second start-up
    pool.give_back([again])
    pool.close()
    assert not alive(pid)


def test_the_first_lease_warms_the_whole_capacity_so_a_lone_job_finds_a_second_worker_idle(new_pool):
    """A server whose jobs run one at a time (SHIFT slider moves) still has the other core's
    worker warm when a job's training ends (execute.SpectrumPool.training_ended borrows idle
    workers, and starts none)."""
    pool = new_pool(2)
    [leased] = pool.lease(1)
    assert len(pool.idle) == 1 and pool.every == {leased, *pool.idle}
    [borrowed] = pool.lease(1, start=False)       # what training_ended asks for
    assert borrowed is not leased and borrowed.alive and not pool.idle
    config = RunConfig(d=4, model="looped")
    borrowed.configure(config.to_json())
    serves(borrowed, config, 0)
    pool.give_back([leased, borrowed])
    assert len(pool.idle) == 2 and len(pool.every) == 2


def test_a_returned_worker_with_chunks_in_flight_is_drained_and_its_answers_never_reach_the_next_job(new_pool):
    config = RunConfig(d=8)
    pool = new_pool()
    worker = configured(pool, config)
    for first in (0, 100, 200):
        worker.submit(chunk(config, first, 4))
    pool.give_back([worker])          # a cancelled job: nobody will read these answers
    deadline = time.time() + 60
    while not pool.idle and time.time() < deadline:
        time.sleep(0.02)
    [again] = pool.lease(1)
    assert again is worker and again.outstanding == 0
    serves(again, config, 300)        # its own answer, not a stale one
    assert again.results.empty()
    pool.give_back([again])


def test_a_killed_worker_fails_the_job_with_one_line_and_is_replaced(new_pool):
    config = RunConfig(d=24)
    pool = new_pool()
    worker = configured(pool, config)
    worker.submit(chunk(config, 0, 30))
    os.kill(worker.process.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="^spectrum worker stopped"):
        answer(worker, timeout=30)    # an answer, never a hang
    with pytest.raises(RuntimeError, match="^spectrum worker stopped"):
        worker.submit(chunk(config, 50))   # one clear line, not EPIPE
    pool.give_back([worker])
    [fresh] = pool.lease(1)
    assert fresh is not worker and fresh.alive
    fresh.configure(RunConfig(d=3).to_json())
    serves(fresh, RunConfig(d=3), 0)
    pool.give_back([fresh])


def test_close_stops_every_worker_leased_or_idle_and_a_later_lease_starts_anew(new_pool):
    pool = new_pool(2)
    leased = pool.lease(2)
    pool.give_back(leased[:1])
    pids = [w.process.pid for w in leased]
    pool.close()
    assert not any(alive(pid) for pid in pids)
    [worker] = pool.lease(1)
    assert worker.alive and worker.process.pid not in pids


def test_a_small_run_borrows_the_idle_worker_once_training_ends_and_keeps_the_numbers(new_pool, monkeypatch):
    """At d = 4 with a shared pool of two: one worker while training; once training has ended
    the idle one takes part of the backlog; every spectrum equals the inline one, and both
    workers go back idle."""
    config = RunConfig(d=4, model="looped")
    served: dict[int, int] = {}
    submit = SpectrumWorker.submit

    def counting(self, jobs):
        served[self.process.pid] = served.get(self.process.pid, 0) + 1
        submit(self, jobs)
    monkeypatch.setattr(SpectrumWorker, "submit", counting)
    problem = prepare(config)
    pool = new_pool(2)
    pool.give_back(pool.lease(2))   # both warm and idle, as in a server
    spectra = SpectrumPool(config, problem, pool, spectra=execute_mod.WORKER_MIN_SPECTRA)
    assert len(spectra.workers) == 1 and len(pool.idle) == 1
    jobs = [chunk(config, 10 * i, 5) for i in range(12)]
    for part in jobs:
        spectra.submit(part)
    assert len(spectra.backlog) == 12 - execute_mod.IN_FLIGHT
    spectra.training_ended()
    assert len(spectra.workers) == 2 and not pool.idle
    got = dict(spectra.harvest(wait=True))
    spectra.close()
    assert len(pool.idle) == 2 and len(served) == 2 and sum(served.values()) == 12
    close_enough(got, expected(config, [job for part in jobs for job in part]))


def test_a_small_cli_run_computes_part_of_the_backlog_in_its_own_thread_once_training_ends():
    """Without a server's pool (the CLI): one worker of its own, and once training has ended
    the training thread takes chunks from the back of the backlog; the numbers are the same."""
    config = RunConfig(d=4, model="looped")
    problem = prepare(config)
    inline_chunks = []
    compute = problem.hessian_spectra

    def counting(thetas, loops):
        inline_chunks.append(len(thetas))
        return compute(thetas, loops)
    problem.hessian_spectra = counting
    spectra = SpectrumPool(config, problem, 2, spectra=execute_mod.WORKER_MIN_SPECTRA)
    try:
        assert len(spectra.workers) == 1
        jobs = [chunk(config, 10 * i, 5) for i in range(12)]
        for part in jobs:
            spectra.submit(part)
        assert not inline_chunks       # while training runs, its thread computes nothing
        spectra.training_ended()
        got = dict(spectra.harvest(wait=True))
    finally:
        spectra.close()
    assert 0 < len(inline_chunks) < 12
    close_enough(got, expected(config, [job for part in jobs for job in part]))


def test_a_run_on_a_shared_pool_equals_the_inline_run(new_pool):
    config = RunConfig(d=4, epochs=30, hessian_every=1, model="looped")
    problem = prepare(config)
    pool = new_pool(2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(execute_mod, "WORKER_MIN_SPECTRA", 10)
        log = execute(config, workers=pool, problem=problem, chunk=4)
    assert log.status == "complete" and pool.every and len(pool.idle) == len(pool.every)
    inline = execute(config, workers=0, problem=problem)
    assert [r.metrics for r in log.records] == [r.metrics for r in inline.records]
    close_enough(log.spectra, inline.spectra)


def test_a_cancelled_run_on_a_shared_pool_keeps_its_spectra_and_returns_its_workers(new_pool):
    config = RunConfig(d=8, epochs=400, hessian_every=1, model="looped")
    pool = new_pool()
    cancel = threading.Event()

    class CancelAt(execute_mod.RunLog):
        def add_spectrum(self, epoch, eigenvalues):
            super().add_spectrum(epoch, eigenvalues)
            if len(self.spectra) >= 20:
                cancel.set()
    log = execute(config, CancelAt(config), cancel, workers=pool)
    assert log.status == "cancelled" and len(log.spectra) >= 20
    deadline = time.time() + 60
    while not pool.idle and time.time() < deadline:
        time.sleep(0.02)
    [worker] = pool.idle
    assert worker.alive and worker.outstanding == 0


def test_the_pool_of_a_registry_is_closed_by_clear(tmp_path):
    from loopviz.runs.store import JobRegistry, RunStore
    reg = JobRegistry(RunStore(tmp_path, bundled=None), max_running=2, spectrum_workers=1)
    assert reg.workers.capacity == 2 and reg.workers.per_job == 1
    pids = [w.process.pid for w in reg.workers.lease(2)]
    reg.clear()
    assert not any(alive(pid) for pid in pids)
    assert JobRegistry(RunStore(tmp_path, bundled=None), spectrum_workers=0).workers is None


def test_a_pool_of_spectrum_pools_never_starts_a_worker_for_a_short_small_run(new_pool):
    config = RunConfig(d=4, epochs=20)
    pool = new_pool()
    spectra = SpectrumPool(config, prepare(config), pool, spectra=21)
    assert spectra.workers == [] and not pool.every
    spectra.close()


def test_a_registry_runs_job_after_job_of_different_configs_on_the_same_warm_workers(tmp_path, monkeypatch):
    from loopviz.runs.store import JobRegistry, RunStore
    monkeypatch.setattr(execute_mod, "WORKER_MIN_SPECTRA", 10)
    reg = JobRegistry(RunStore(tmp_path, bundled=None), max_running=1, spectrum_workers=1)
    try:
        pids = []
        for config in (RunConfig(d=4, epochs=30, model="looped"), RunConfig(d=3, epochs=30, model="single")):
            job = reg.start(config)
            job.thread.join(timeout=120)
            assert job.log.status == "complete" and job.saved
            pids.append({w.process.pid for w in reg.workers.every})
            inline = execute(config, workers=0)
            close_enough(job.log.spectra, inline.spectra)
        assert pids[0] == pids[1] and len(pids[0]) == 1   # started once, reused for the next config
    finally:
        reg.clear()
    assert not any(alive(pid) for pid in pids[0])


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmRSS"))) / 1024


def test_an_idle_warm_worker_hands_a_large_jobs_heap_back(new_pool):
    config = RunConfig(d=16)
    pool = new_pool()
    worker = configured(pool, config)
    worker.submit(chunk(config, 0, 4))
    answer(worker)
    busy = rss_mb(worker.process.pid)
    pool.give_back([worker])
    deadline = time.time() + 10
    while rss_mb(worker.process.pid) > busy - 30 and time.time() < deadline:
        time.sleep(0.05)
    assert rss_mb(worker.process.pid) <= busy - 30, (busy, rss_mb(worker.process.pid))
    assert pool.idle == [worker]


def test_a_warm_worker_that_died_while_idle_is_replaced_at_the_next_lease(new_pool):
    config = RunConfig(d=4, model="looped")
    pool = new_pool()
    [dead] = pool.lease(1)
    pool.give_back([dead])
    os.kill(dead.process.pid, signal.SIGKILL)
    dead.process.wait(timeout=10)
    spectra = SpectrumPool(config, prepare(config), pool, spectra=execute_mod.WORKER_MIN_SPECTRA)
    [fresh] = spectra.workers
    assert fresh is not dead and fresh.alive and pool.every == {fresh}
    jobs = chunk(config, 0)
    spectra.submit(jobs)
    close_enough(dict(spectra.harvest(wait=True)), expected(config, jobs))
    spectra.close()


def test_a_warm_worker_lost_between_lease_and_first_frame_is_handed_back_and_the_run_goes_on(new_pool, monkeypatch):
    config = RunConfig(d=4, model="looped")
    pool = new_pool()
    pool.give_back(pool.lease(1))

    def lost(self, config_json):
        raise RuntimeError("spectrum worker stopped: lost")
    monkeypatch.setattr(SpectrumWorker, "configure", lost)
    spectra = SpectrumPool(config, prepare(config), pool, spectra=execute_mod.WORKER_MIN_SPECTRA)
    assert spectra.workers == [] and len(pool.idle) == 1   # handed back, not leaked
    jobs = chunk(config, 0)
    spectra.submit(jobs)                                   # no worker left: computed inline
    close_enough(dict(spectra.harvest(wait=True)), expected(config, jobs))
    spectra.close()


def test_a_worker_that_writes_much_to_stderr_never_blocks_and_its_last_line_is_the_message(monkeypatch):
    """A warm worker lives for many jobs: its stderr is read as it comes, so a full pipe never
    blocks it (200 kB here, three pipe buffers), and its last line names why it stopped."""
    import subprocess

    from loopviz.runs import spectrum_worker
    popen = subprocess.Popen
    script = "import sys\nfor i in range(2000): print('warning', i, 'x' * 90, file=sys.stderr)\nsys.exit('boom')\n"
    monkeypatch.setattr(spectrum_worker.subprocess, "Popen",
                        lambda args, **kwargs: popen([args[0], "-c", script], **kwargs))
    worker = SpectrumWorker()
    try:
        with pytest.raises(RuntimeError, match="^spectrum worker stopped: boom$"):
            answer(worker, timeout=30)
    finally:
        worker.close()


def test_a_chunk_before_any_config_stops_the_worker_with_that_reason():
    worker = SpectrumWorker()
    try:
        worker.submit(chunk(RunConfig(), 0))
        with pytest.raises(RuntimeError, match="a chunk came before any config"):
            answer(worker, timeout=60)
    finally:
        worker.close()


def test_array_frames_round_trip_and_refuse_what_they_are_not():
    arrays = {"epochs": np.arange(5), "thetas": np.random.default_rng(0).standard_normal((5, 60)),
              "loops": np.array([1, 3, 3, 3, 3], dtype=np.int32), "empty": np.zeros((0, 4)),
              "strided": np.arange(12.0).reshape(3, 4)[:, ::2]}
    back = read_arrays(array_frame(**arrays))
    assert list(back) == list(arrays)
    for name, a in arrays.items():
        assert back[name].dtype == a.dtype and back[name].shape == a.shape and back[name].flags.writeable
        np.testing.assert_array_equal(back[name], a)
    frame = array_frame(**arrays)
    for bad in (b"", b"{}", frame[:-1], frame + b"\0", RunConfig().to_json().encode()):
        with pytest.raises(ValueError):
            read_arrays(bad)


def test_an_unreadable_answer_fails_the_job_with_one_line_instead_of_a_hang(new_pool, monkeypatch):
    from loopviz.runs import spectrum_worker

    def unreadable(payload):
        raise SystemError("AST constructor recursion depth mismatch")

    config = RunConfig()
    pool = new_pool()
    worker = configured(pool, config)
    monkeypatch.setattr(spectrum_worker, "read_arrays", unreadable)
    worker.submit(chunk(config, 0))
    with pytest.raises(RuntimeError, match="^spectrum worker stopped: its answer was unreadable .SystemError"):
        answer(worker, timeout=30)
    assert not worker.alive
    pool.give_back([worker])
    monkeypatch.undo()
    [fresh] = pool.lease(1)
    assert fresh is not worker
    fresh.configure(config.to_json())
    serves(fresh, config, 0)
    pool.give_back([fresh])
