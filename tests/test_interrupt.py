"""A Ctrl-C swallowed where Python drops exceptions (a gc callback, a __del__) still stops the
run: the flag outlives the lost KeyboardInterrupt."""

import os
import signal

import pytest

from hptransfer.sweeps import interrupt


def test_a_swallowed_sigint_is_raised_again_at_the_next_check():
    previous = signal.getsignal(signal.SIGINT)
    try:
        interrupt.install()
        assert not interrupt.requested()
        interrupt.check()  # nothing pending: no exception
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass  # what a gc callback does with it
        assert interrupt.requested()
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
        interrupt.install()  # a new command starts clean
        assert not interrupt.requested()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_deferred_sigterm_only_sets_the_flag_then_the_watchdog_fires():
    """A sweep's SIGTERM waits for the engine's next check (exit code 143), and if none comes
    within the grace period the watchdog runs."""
    import threading

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    fired = threading.Event()
    try:
        interrupt.install()
        interrupt.defer_terminate(0.2, fired.set)
        os.kill(os.getpid(), signal.SIGTERM)  # no KeyboardInterrupt here
        assert interrupt.requested() and interrupt.pending() == signal.SIGTERM
        assert interrupt.exit_code() == 143
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
        assert fired.wait(5), "the SIGTERM watchdog never fired"
        interrupt.install()
        assert interrupt.exit_code() == 130 and interrupt.pending() == 0
    finally:
        interrupt.cancel_deadline()
        for s, handler in previous.items():
            signal.signal(s, handler)
