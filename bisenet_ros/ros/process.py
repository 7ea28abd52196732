"""How the node's process stops: on SIGINT and SIGTERM alike, and with its launcher.

A signal only asks the node to stop; the main loop sees the request between callbacks and
cleans up in order. Neither rclpy's handler (it invalidates the context at once, while the
worker may still be publishing a frame) nor a raised KeyboardInterrupt will do: Python raises
it wherever the main thread happens to be, and inside a ``__del__`` (rclpy's Future, during
garbage collection) it is printed and dropped, so Ctrl-C was lost and launch had to escalate.
``ros2 launch`` leaves its processes running when it gets SIGTERM or SIGKILL itself
(launch_service: "can result in orphaned processes"), so a node started by the launch file
(which sets BISENET_EXIT_WITH_PARENT=1) asks the kernel for SIGTERM when its parent dies. A
`segment_node` started from a shell does not: `nohup segment_node &` must outlive the shell.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

EXIT_WITH_PARENT = "BISENET_EXIT_WITH_PARENT"
PR_SET_PDEATHSIG = 1
# How long the main loop waits for work before it looks at the stop request again.
POLL_S = 0.2


def stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM set the returned event; with the launcher, its death is SIGTERM."""
    stop = threading.Event()

    def request_stop(signum: int, frame) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, request_stop)  # launch's escalation, systemd, docker stop
    if os.environ.get(EXIT_WITH_PARENT) == "1" and sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return stop
