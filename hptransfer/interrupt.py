"""Ctrl-C that is never lost.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be, and an
exception raised inside a garbage-collection callback or a ``__del__`` (XLA registers such
callbacks) is printed and dropped: the sweep would then run on and exit 0. :func:`install`
makes SIGINT also set a flag; the engine checks it between segments (:func:`check`) and the CLI
after a command returns, so an interrupt that was swallowed still stops the run with code 130.
"""

from __future__ import annotations

import signal
import threading

_REQUESTED = threading.Event()


def _handler(signum, frame) -> None:
    _REQUESTED.set()
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT through the flag (main thread only; elsewhere signals cannot be set)."""
    _REQUESTED.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)


def requested() -> bool:
    """Whether SIGINT arrived since :func:`install`."""
    return _REQUESTED.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if SIGINT arrived (an earlier one may have been swallowed)."""
    if _REQUESTED.is_set():
        raise KeyboardInterrupt
