"""Log every distinct (camera, reason) at once, then at most once per period with a count
(or never again).

rclpy's ``throttle_duration_sec`` throttles per call site: one line would then speak for
every camera and every reason, and the others would never be seen.
"""

from __future__ import annotations

import threading
import time


class ReasonLog:
    """Per-key throttled logging that says how many were not logged in between."""

    def __init__(self, logger, period_s: float = 5.0) -> None:
        self._logger = logger
        self._period_s = period_s
        self._lock = threading.Lock()  # the executor and the worker both report
        self._last: dict[tuple, float] = {}
        self._unlogged: dict[tuple, int] = {}

    def report(self, key: tuple, message: str, level: str = "warning", once: bool = False) -> None:
        """Log ``message`` unless ``key`` was logged within the period (``once``: ever)."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and (once or now - last < self._period_s):
                self._unlogged[key] = self._unlogged.get(key, 0) + 1
                return
            skipped = self._unlogged.pop(key, 0)
            self._last[key] = now
        if skipped:
            message += f" ({skipped} more since the last such message)"
        # one call site per severity: rclpy refuses a severity change at the same call site
        if level == "error":
            self._logger.error(message)
        elif level == "warning":
            self._logger.warning(message)
        else:
            self._logger.info(message)
