"""Spectrum worker processes, fed over pipes with .npz frames (no pickle anywhere).

Why not multiprocessing: its 'spawn' start re-runs the parent's __main__ module in
the child, and under Streamlit that module is whichever page script happens to be
running, so a worker would execute a page. A plain `python -m loopviz.runs.spectrum_worker`
subprocess starts clean, whoever starts it.

Protocol: every frame is an 8-byte little-endian length and a payload. The parent
sends the RunConfig as JSON, then one .npz per chunk (epochs, thetas, loops); the
worker answers each chunk with one .npz (epochs, eigenvalues), in order.
"""
from __future__ import annotations

import io
import os
import queue
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

HEADER = struct.Struct("<Q")
REPO = Path(__file__).resolve().parent.parent.parent


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


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_npz(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


class SpectrumWorker:
    """One worker subprocess; results of its chunks arrive in order on `results`."""

    def __init__(self, config_json: str):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        # Its own session: a terminal's Ctrl-C goes to the whole foreground process group, and
        # must reach only the parent, which then stops cleanly and keeps the spectra computed.
        self.process = subprocess.Popen([sys.executable, "-m", "loopviz.runs.spectrum_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                        start_new_session=True)
        self.results: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        write_frame(self.process.stdin, config_json.encode())

    def submit(self, jobs: list[tuple[int, np.ndarray, int]]) -> None:
        epochs, thetas, loops = zip(*jobs)
        write_frame(self.process.stdin, npz_bytes(epochs=np.array(epochs), thetas=np.stack(thetas),
                                                  loops=np.array(loops)))

    def _read(self) -> None:
        while True:
            frame = read_frame(self.process.stdout)
            if frame is None:
                error = self.process.stderr.read().decode(errors="replace").strip().splitlines()
                self.results.put(RuntimeError("spectrum worker stopped: " + (error[-1] if error else "no message")))
                return
            data = load_npz(frame)
            self.results.put(list(zip(data["epochs"].tolist(), data["eigenvalues"])))

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


def main() -> None:
    import torch

    from ..config import RunConfig
    from ..toy.training import prepare

    torch.set_num_threads(1)  # one core per worker; more threads only contend (docs/background.md §4)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    first = read_frame(stdin)
    if first is None:
        return
    problem = prepare(RunConfig.from_json(first.decode()).replace(device="cpu"))
    frames: queue.Queue = queue.Queue()

    def read() -> None:
        # End of input means the parent closed the pipe or died (SIGTERM, kill -9): stop at
        # once, even mid-chunk, instead of computing spectra nobody will read.
        while (frame := read_frame(stdin)) is not None:
            frames.put(frame)
        os._exit(0)

    threading.Thread(target=read, daemon=True).start()
    while True:
        job = load_npz(frames.get())
        eigenvalues = np.stack([problem.hessian_spectrum(theta, int(loops))
                                for theta, loops in zip(job["thetas"], job["loops"])])
        write_frame(stdout, npz_bytes(epochs=job["epochs"], eigenvalues=eigenvalues))


if __name__ == "__main__":
    main()
