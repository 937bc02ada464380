"""The stack's clean-up guard, shared by the sandbox and the benchmark: a kill still stops the stack."""
import os
import signal

import pytest

from tests.stack.procs import stopped_however_it_ends


def test_a_sigterm_ends_the_block_like_ctrl_c_and_the_stop_still_runs_undisturbed():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def stop():
        seen.append(signal.getsignal(signal.SIGTERM))
        os.kill(os.getpid(), signal.SIGTERM)  # a second kill while stopping: ignored
        seen.append("stopped")

    with pytest.raises(KeyboardInterrupt):
        with stopped_however_it_ends(stop):
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("the SIGTERM should have ended the block")
    assert seen == [signal.SIG_IGN, "stopped"]
    assert signal.getsignal(signal.SIGTERM) == before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_block_that_ends_normally_is_stopped_too():
    seen = []
    with stopped_however_it_ends(lambda: seen.append("stopped")):
        pass
    assert seen == ["stopped"]
