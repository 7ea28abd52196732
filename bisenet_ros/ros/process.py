"""How the node's process stops: on SIGINT and SIGTERM alike, and with its launcher.

rclpy's own signal handler invalidates the context at once, while the worker may still be
publishing a frame; the node turns both signals into KeyboardInterrupt instead and cleans up
in order. ``ros2 launch`` leaves its processes running when it gets SIGTERM or SIGKILL itself
(launch_service: "can result in orphaned processes"), so a node started by the launch file
(which sets BISENET_EXIT_WITH_PARENT=1) asks the kernel for SIGTERM when its parent dies. A
`segment_node` started from a shell does not: `nohup segment_node &` must outlive the shell.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

EXIT_WITH_PARENT = "BISENET_EXIT_WITH_PARENT"
PR_SET_PDEATHSIG = 1


def _interrupt(signum: int, frame) -> None:
    """SIGTERM (launch's escalation, systemd, docker stop) stops the node like Ctrl-C."""
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt; with the launcher, its death is SIGTERM."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _interrupt)
    if os.environ.get(EXIT_WITH_PARENT) == "1" and sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def ignore_signals() -> None:
    """During clean-up: Ctrl-C in a terminal reaches the node twice (from the terminal and
    from launch), and the second must not cut the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
