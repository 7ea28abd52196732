"""How the node's process stops: on SIGINT and SIGTERM alike, and with its launcher.

A signal only asks the node to stop (see ``stop_request``); the main loop sees the request
between callbacks and cleans up in order. rclpy's own handler is not used: it invalidates
the context at once, while the worker may still be publishing a frame. ``ros2 launch``
leaves its processes running when it gets SIGTERM or SIGKILL itself (launch_service: "can
result in orphaned processes"), so a node started by the launch file (which sets
BISENET_EXIT_WITH_PARENT=1) asks the kernel for SIGTERM when its parent dies. A
`segment_node` started from a shell does not: `nohup segment_node &` must outlive the shell.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

from ..stop_request import stop_on_signals as _stop_request

EXIT_WITH_PARENT = "BISENET_EXIT_WITH_PARENT"
PR_SET_PDEATHSIG = 1
# How long the main loop waits for work before it looks at the stop request again.
POLL_S = 0.2


def stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM set the returned event; with the launcher, its death is SIGTERM."""
    stop = _stop_request(second_interrupts=False)
    if os.environ.get(EXIT_WITH_PARENT) == "1" and sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return stop
