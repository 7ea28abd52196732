"""Ctrl-C and SIGTERM as a request to stop at the next safe point, not as an exception.

Python raises KeyboardInterrupt wherever the main thread happens to be: half-way through an
optimiser step, or inside a ``__del__`` during garbage collection, where it is printed and
dropped (rclpy's Future did that to the node's Ctrl-C, and launch had to escalate to
SIGTERM). The node and ``bisenet train`` install this instead and look at the request
where stopping loses nothing: between callbacks, between training steps. Processes forked
afterwards (DataLoader workers) inherit it, so a terminal's Ctrl-C, which reaches the whole
process group, does not kill them under the main process either.
"""

from __future__ import annotations

import signal
import threading


def stop_on_signals(*, second_interrupts: bool) -> threading.Event:
    """SIGINT and SIGTERM set the returned event. With ``second_interrupts`` a second one
    raises KeyboardInterrupt (a user who presses Ctrl-C again means now); without, it only
    repeats the request (a launched node gets a terminal's Ctrl-C twice: from the terminal
    and from launch)."""
    stop = threading.Event()

    def request_stop(signum: int, frame) -> None:
        if stop.is_set() and second_interrupts:
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, request_stop)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, request_stop)  # launch's escalation, systemd, docker stop
    return stop
