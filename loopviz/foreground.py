"""A run in the foreground of a command (`run`, `algo run`): the one runner (runs/runner.py)
in a thread while the main thread shows progress, and Ctrl-C or SIGTERM as a cancel.

Light at import (the parser imports it): no torch, no pandas.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable, Self

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_CANCELLED = 1, 2, 3, 130


class Interrupts:
    """SIGINT/SIGTERM stop the run at its next epoch or step instead of raising in the middle of it.

    The handler only sets flags, so a second Ctrl-C, or one during the final write, cannot
    tear a write in half: the write finishes, then the command stops. Spectrum workers live
    in their own session (spectrum_worker.py), so a terminal's Ctrl-C reaches only us.
    """

    def __init__(self):
        self.signum: int | None = None
        self.cancel: threading.Event | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.signum is not None:
            # Interrupted: the command is on its way out with exit_code. Python's finalisation
            # resets a Python-level handler to SIG_DFL, so a second Ctrl-C landing while the
            # interpreter shuts down would kill us (exit -2) instead: ignore further ones.
            for signum in self.previous:
                signal.signal(signum, signal.SIG_IGN)
            return
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        self.signum = self.signum or signum
        if self.cancel is not None:
            self.cancel.set()

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


def run_attached(config, log, interrupts: Interrupts, show: Callable[[], None], **options):
    """runner.run(config, log, cancel, **options) in a thread; `show()` is called ten times a
    second and once at the end. A signal caught by `interrupts` cancels the run at its next
    epoch or step; one caught before it starts cancels it at once. Returns the Outcome."""
    from .runs import runner

    cancel = threading.Event()
    interrupts.cancel = cancel
    if interrupts.signum is not None:
        cancel.set()
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(config, log, cancel, **options)),
                              name=f"loopviz-{config.model}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        show()
    return outcome[0]


def report_end(model: str, log, kept_in: str = "") -> int:
    """One stderr line for a run that did not complete (diverged, failed, cancelled; `kept_in`
    names where its records were written) and the exit code it asks for (0 unless diverged
    or failed; a cancel's code comes from the signal)."""
    from .runs.status import Status

    if log.status == Status.DIVERGED:
        print(f"error: {model} {log.message}; records up to it are kept{kept_in}", file=sys.stderr)
        return EXIT_DIVERGED
    if log.status == Status.FAILED:
        print(f"error: {model} failed: {log.message}", file=sys.stderr)
        return EXIT_FAILED
    if log.status == Status.CANCELLED:
        print(f"{model}: {log.message}{kept_in if log.records else ''}", file=sys.stderr)
    return 0
