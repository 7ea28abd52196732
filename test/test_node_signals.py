"""A signal to segment_node is a request to stop that no place in the code can lose.

The Jazzy leg once saw Ctrl-C land inside rclpy's ``Future.__del__`` during garbage
collection: a raised KeyboardInterrupt is printed and dropped there, the node kept running
and ``ros2 launch`` had to escalate to SIGTERM. These tests deliver the signal at exactly
such a place, in a real process, and check the request survives.
"""

from __future__ import annotations

import gc
import os
import signal

import pytest

from bisenet_ros.ros import process


@pytest.fixture
def restore_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class SignalledWhileCollected:
    """Sends its own process a signal from its finalizer, as Ctrl-C may arrive mid-GC."""

    def __init__(self, sig: int) -> None:
        self.sig = sig
        self.cycle = self  # only the cyclic collector can free it: the finalizer runs in gc

    def __del__(self) -> None:
        os.kill(os.getpid(), self.sig)
        for _ in range(1000):  # Python runs the handler between these bytecodes
            pass


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_garbage_collection_still_stops_the_node(restore_handlers, sig):
    stop = process.stop_on_signals()
    SignalledWhileCollected(sig)
    assert not stop.is_set()
    gc.collect()
    assert stop.is_set(), f"signal {sig} delivered inside a finalizer was lost"
