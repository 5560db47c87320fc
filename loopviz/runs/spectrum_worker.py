"""Spectrum worker processes, fed over pipes with array frames (no pickle anywhere).

Why not multiprocessing: its 'spawn' start re-runs the parent's __main__ module in
the child, and under Streamlit that module is whichever page script happens to be
running, so a worker would execute a page. A plain `python -m loopviz.runs.spectrum_worker`
subprocess starts clean, whoever starts it.

Protocol: every frame is an 8-byte little-endian length and a payload. A config frame
(a RunConfig as JSON, first byte "{") sets the data for the chunks after it; a chunk frame
holds arrays (epochs, thetas, loops; see array_frame), answered with arrays (epochs,
eigenvalues), in order; an empty frame says the worker is idle now (it returns its free heap to the OS).
So one worker serves job after job, of any config: the app server keeps its workers warm
(WorkerPool) and pays their start-up (~0.4 s: numpy + scipy) once.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import traceback
from collections import deque
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np

HEADER = struct.Struct("<Q")
LENGTH = struct.Struct("<I")
REPO = Path(__file__).resolve().parent.parent.parent
# One BLAS/OpenMP thread per worker: torch.set_num_threads does not reach numpy's or scipy's
# OpenBLAS, and two workers with several threads each on two cores ran 4× slower (DESIGN.md).
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


ARRAYS = b"\x93ARR"   # an array frame's first bytes (a config frame starts with "{")


def array_frame(**arrays: np.ndarray) -> bytes:
    """Named arrays as one frame: ARRAYS, a JSON list of [name, dtype, shape] behind its 4-byte
    length, then each array's bytes in C order. Not .npz: np.load parses a header with
    ast.literal_eval, which CPython 3.11 can fail with "SystemError: AST constructor recursion
    depth mismatch" when threads parse at once (python/cpython#106905), and a server reads
    its workers' answers on several threads while Streamlit compiles page scripts."""
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    header = json.dumps([[name, a.dtype.str, a.shape] for name, a in arrays.items()]).encode()
    return b"".join([ARRAYS, LENGTH.pack(len(header)), header, *(a.tobytes() for a in arrays.values())])


def read_arrays(payload: bytes) -> dict[str, np.ndarray]:
    """array_frame's arrays (copies, writable); ValueError for a frame that is not one."""
    if payload[:len(ARRAYS)] != ARRAYS:
        raise ValueError("not an array frame")
    (header_size,) = LENGTH.unpack_from(payload, len(ARRAYS))
    header_start = len(ARRAYS) + LENGTH.size
    position = header_start + header_size          # where the next array's bytes begin
    arrays = {}
    for name, dtype, shape in json.loads(payload[header_start:position]):
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise ValueError("object arrays are not sent")
        count = int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(payload, dtype, count, position).reshape(shape).copy()
        position += count * dtype.itemsize
    if position != len(payload):
        raise ValueError("an array frame's length does not match its header")
    return arrays


class SpectrumWorker:
    """One worker subprocess. It answers its chunks in order: each answer, a list of
    (epoch, eigenvalues) or the exception that ended the worker, is put on `results`
    as (worker, answer); a SpectrumPool points `results` at its own queue."""

    def __init__(self, config_json: str | None = None):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        env.update(THREAD_ENV)  # BLAS/OpenMP read these at load: workers × threads ≤ cores
        # Its own session: a terminal's Ctrl-C goes to the whole foreground process group, and
        # must reach only the parent, which then stops cleanly and keeps the spectra computed.
        self.process = subprocess.Popen([sys.executable, "-m", "loopviz.runs.spectrum_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
                                        start_new_session=True)
        self.results: queue.Queue = queue.Queue()
        self.config_json: str | None = None
        self.sent = self.answered = 0      # chunks; sent - answered are in the pipe or computing
        self.failed = False
        self.error = ""                    # why it stopped, once it has
        # stderr is read as it comes (its last lines kept for the message): a warm worker lives
        # for many jobs, and a full stderr pipe would block it, and its job, for good.
        self.stderr: deque[str] = deque(maxlen=20)
        self.stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.stderr_reader.start()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if config_json is not None:
            self.configure(config_json)

    @property
    def outstanding(self) -> int:
        return self.sent - self.answered

    @property
    def alive(self) -> bool:
        return not self.failed and self.process.poll() is None

    def configure(self, config_json: str) -> None:
        """Make the following chunks use `config_json`'s data (sent only when it changes)."""
        if config_json != self.config_json:
            self._write(config_json.encode())
            self.config_json = config_json

    def rest(self) -> None:
        """Tell the worker it is idle: it hands its job's freed heap back to the OS."""
        self._write(b"")

    def submit(self, jobs: list[tuple[int, np.ndarray, int]]) -> None:
        epochs, thetas, loops = zip(*jobs)
        self.sent += 1
        self._write(array_frame(epochs=np.array(epochs), thetas=np.stack(thetas), loops=np.array(loops)))

    def _write(self, payload: bytes) -> None:
        """One frame to the worker; a dead worker raises the reader's one-line reason, not EPIPE."""
        try:
            write_frame(self.process.stdin, payload)
        except (OSError, ValueError):   # a broken pipe, or a pipe already closed
            self.failed = True
            self.reader.join(timeout=5)
            raise RuntimeError(self.error or "spectrum worker stopped: its input closed") from None

    def _read(self) -> None:
        while True:
            frame = read_frame(self.process.stdout)
            if frame is None:
                self.failed = True
                self.stderr_reader.join(timeout=5)
                lines = [line for line in self.stderr if line]
                self.error = "spectrum worker stopped: " + (lines[-1] if lines else "no message")
                self.results.put((self, RuntimeError(self.error)))
                return
            try:
                data = read_arrays(frame)
            except Exception as exc:    # a thread that died here would leave its job waiting for good
                self.failed = True
                self.error = f"spectrum worker stopped: its answer was unreadable ({type(exc).__name__}: {exc})"
                self.process.kill()
                self.results.put((self, RuntimeError(self.error)))
                return
            self.answered += 1
            self.results.put((self, list(zip(data["epochs"].tolist(), data["eigenvalues"]))))

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line.decode(errors="replace").strip())

    def close(self) -> None:
        try:
            self.process.stdin.close()
        except OSError:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


class WorkerPool:
    """Warm spectrum workers that an app server lends to its jobs (runs/store.JobRegistry).

    A job leases `per_job` workers when its spectra start and may borrow idle ones once its
    training has ended (execute.SpectrumPool); it gives them all back when it ends. A worker
    comes back idle once its last chunk is answered (a cancelled job's chunks still in
    flight are drained in the background, then dropped); a dead one is closed and a fresh
    one started in its place. At most `capacity` workers are kept; a lease beyond them
    starts extra workers that are closed on return. All of them are closed at exit; a
    killed server's workers see their input close and stop by themselves.
    """

    DRAIN_TIMEOUT = 60.0

    def __init__(self, per_job: int, capacity: int):
        self.per_job, self.capacity = per_job, capacity
        self.idle: list[SpectrumWorker] = []
        self.every: set[SpectrumWorker] = set()   # started and not closed, leased or idle
        self.lock = threading.Lock()
        atexit.register(self.close)

    def lease(self, count: int, start: bool = True) -> list[SpectrumWorker]:
        """Up to `count` workers: idle ones first, then (with `start`) new ones. A lease that
        starts workers also starts the rest of `capacity`, idle: a job that trains alone (a
        SHIFT slider move) then finds the other core's worker warm when its training ends,
        not only the one it leased: a move's last spectrum came 0.9-1.6 s after its start
        with one worker, 0.7-1.1 s with both."""
        taken: list[SpectrumWorker] = []
        with self.lock:
            while self.idle and len(taken) < count:
                worker = self.idle.pop()
                if worker.alive:
                    taken.append(worker)
                else:
                    self._close(worker)
            while start and len(taken) < count:
                taken.append(self._start())
            while start and len(self.every) < self.capacity:
                self.idle.append(self._start())
        return taken

    def give_back(self, workers: Iterable[SpectrumWorker]) -> None:
        for worker in workers:
            if worker.alive and worker.outstanding:
                threading.Thread(target=self._drain, args=(worker,), daemon=True).start()
            else:
                self._settle(worker)

    def _drain(self, worker: SpectrumWorker) -> None:
        """Wait for a returned worker's answers (nobody reads them), then settle it."""
        worker.results = drained = queue.Queue()
        for _ in range(worker.outstanding):
            try:
                _, answer = drained.get(timeout=self.DRAIN_TIMEOUT)
            except queue.Empty:
                worker.failed = True
                break
            if isinstance(answer, Exception):
                break
        self._settle(worker)

    def _settle(self, worker: SpectrumWorker) -> None:
        """Keep a healthy returned worker idle; close a dead one and start its replacement."""
        with self.lock:
            ours = worker in self.every   # not stopped by close() meanwhile
            if ours and worker.alive and not worker.outstanding and len(self.idle) < self.capacity:
                worker.results = queue.Queue()
                try:
                    worker.rest()
                except RuntimeError:   # it died just now: replaced below
                    pass
                else:
                    self.idle.append(worker)
                    return
            replace = ours and not worker.alive and len(self.idle) < self.capacity
            self._close(worker)
            if replace:
                self.idle.append(self._start())

    def _start(self) -> SpectrumWorker:
        worker = SpectrumWorker()
        self.every.add(worker)
        return worker

    def _close(self, worker: SpectrumWorker) -> None:
        self.every.discard(worker)
        worker.close()

    def close(self) -> None:
        """Stop every worker, leased or idle (server exit; tests); a later lease starts new ones."""
        with self.lock:
            workers, self.idle = list(self.every), []
            self.every.clear()
        for worker in workers:
            worker.close()


def main() -> None:
    # numpy and scipy only: no torch to import (~1.5 s, ~280 MB), so a worker is ready in ~0.4 s.
    from ..config import RunConfig
    from ..toy.hessian import release_heap, spectra, training_arrays

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    frames: queue.Queue = queue.Queue()

    def read() -> None:
        # End of input means the parent closed the pipe or died (SIGTERM, kill -9): stop at
        # once, even mid-chunk, instead of computing spectra nobody will read.
        while (frame := read_frame(stdin)) is not None:
            frames.put(frame)
        os._exit(0)

    threading.Thread(target=read, daemon=True).start()
    data = None
    try:
        while True:
            frame = frames.get()
            if not frame:             # idle: a large-d job's peak must not stay with a warm worker
                release_heap()
                continue
            if frame[:1] == b"{":
                data = training_arrays(RunConfig.from_json(frame.decode()))
                continue
            if data is None:
                raise RuntimeError("a chunk came before any config")
            job = read_arrays(frame)
            eigenvalues = spectra(job["thetas"], job["loops"], *data)
            write_frame(stdout, array_frame(epochs=job["epochs"], eigenvalues=eigenvalues))
    except Exception as exc:
        # The parent reports the last line of stderr: make it the reason, then stop at once
        # (a normal exit would wait on the reading thread and die with a fatal error instead).
        traceback.print_exc()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(1)


if __name__ == "__main__":
    main()
