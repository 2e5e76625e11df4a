"""A Ctrl-C swallowed where Python drops exceptions (a gc callback, a __del__) still stops the
run: the flag outlives the lost KeyboardInterrupt."""

import os
import signal

import pytest

from hptransfer import interrupt


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
