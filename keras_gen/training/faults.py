"""What a run does when something goes wrong around it: a stop signal, or a second run in its directory."""

import contextlib
import fcntl
import os
import signal
import threading

from keras_gen import errors
from keras_gen.runs import layout

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(Exception):
    """Raised by the checkpointer after it saved the run because a stop signal arrived."""


class StopSignals:
    """Context manager: SIGTERM and SIGINT ask the run to stop after the current step.

    The first signal only sets `received` (the checkpointer saves and stops at the end of the
    step); the previous handlers come back at once, so a second Ctrl-C stops immediately. Outside
    the main thread (where Python allows no handlers) it does nothing.
    """

    def __init__(self):
        self.received = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame):
        self.received = signal.Signals(number).name
        self._restore()

    def _restore(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def __exit__(self, *exc_info):
        self._restore()
        return False


@contextlib.contextmanager
def run_lock(directory):
    """Holds an exclusive lock on a run directory for the duration of a run.

    The kernel releases it when the process ends, however it ends (kill -9 included), so a crashed
    run never leaves a stale lock. A second run into the same directory is refused with the first
    run's process id.
    """
    os.makedirs(directory, exist_ok=True)
    path = layout.path(directory, layout.LOCK)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise errors.UserError(
                f"--out_dir {directory} is in use by another run (process {holder}); wait for it to end "
                "or choose another --out_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
