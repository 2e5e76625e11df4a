"""Ctrl-C and SIGTERM that are never lost.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be, and an
exception raised inside a garbage-collection callback or a ``__del__`` (XLA registers such
callbacks) is printed and dropped: the sweep would then run on and exit 0. :func:`install`
makes SIGINT also set a flag; the engine reads it between segments (:func:`pending`, in the
agreement of every process of the run) and the CLI checks it after a command returns
(:func:`check`), so an interrupt that was swallowed still stops the run with code 130.

SIGTERM is how schedulers (SLURM, Kubernetes) stop a job, with SIGKILL after a grace period.
It ends a command like Ctrl-C (exit code 143 = 128 + 15), except that a sweep defers it
(:func:`defer_terminate`): the signal only sets the flag, the engine stops at its next check
between segments after saving a checkpoint of the chunk it is training, and if no check comes
within the grace period (a long compile), a watchdog ends the process anyway.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

_REQUESTED = threading.Event()
_AGREED = threading.Event()  # every process of the run stops at the same check
_STATE: dict[str, int | None] = {"signum": None, "process": None}
_DEADLINE: dict[str, threading.Timer | None] = {"timer": None}


def _record(signum: int) -> None:
    if _STATE["signum"] is None:
        _STATE["signum"] = signum
    _REQUESTED.set()


def _raise_now(signum, frame) -> None:
    _record(signum)
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT and SIGTERM through the flag, both raising KeyboardInterrupt at once (main
    thread only; elsewhere signals cannot be set). Clears an earlier request."""
    _REQUESTED.clear()
    _AGREED.clear()
    _STATE.update(signum=None, process=None)
    cancel_deadline()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _raise_now)
        signal.signal(signal.SIGTERM, _raise_now)


def defer_terminate(grace_seconds: float, on_deadline: Callable[[], None]) -> None:
    """Make SIGTERM only set the flag (the engine saves and stops at its next :func:`check`);
    if the process is still running ``grace_seconds`` after the signal, ``on_deadline`` runs on
    a watchdog thread (it should print what is kept and end the process)."""

    def handler(signum, frame) -> None:
        _record(signum)
        if _DEADLINE["timer"] is None:
            timer = threading.Timer(grace_seconds, on_deadline)
            timer.daemon = True
            _DEADLINE["timer"] = timer
            timer.start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def cancel_deadline() -> None:
    """Stop the SIGTERM watchdog of :func:`defer_terminate`, if one is running."""
    timer = _DEADLINE["timer"]
    if timer is not None:
        timer.cancel()
    _DEADLINE["timer"] = None


def requested() -> bool:
    """Whether SIGINT or SIGTERM arrived since :func:`install`."""
    return _REQUESTED.is_set()


def pending() -> int:
    """The number of the signal that asked this process to stop, 0 if none."""
    return int(_STATE["signum"] or 0) if _REQUESTED.is_set() else 0


def request(signum: int, process: int | None = None, *, agreed: bool = False) -> None:
    """Record a stop asked by ``signum`` (to ``process`` of a multi-process run, when another
    process got it); ``agreed``: every process stops at this same check."""
    _STATE.update(signum=signum, process=process)
    _REQUESTED.set()
    if agreed:
        _AGREED.set()


def agreed() -> bool:
    """Whether every process of the run agreed to stop at the same check (:func:`request`)."""
    return _AGREED.is_set()


def signal_number() -> int:
    """The signal that stopped the run (SIGINT when none was recorded: a raw Ctrl-C)."""
    return int(_STATE["signum"] or signal.SIGINT)


def signalled_process() -> int | None:
    """The process of a multi-process run that got the signal, when it was another one."""
    return _STATE["process"]


def exit_code() -> int:
    """128 + the signal number: 130 after Ctrl-C, 143 after SIGTERM."""
    return 128 + signal_number()


def check() -> None:
    """Raise KeyboardInterrupt if a stop was asked (an earlier one may have been swallowed)."""
    if _REQUESTED.is_set():
        raise KeyboardInterrupt
