"""One camera's counters and recent times, behind one lock.

The subscription callbacks and the diagnostics timer (executor thread) and the worker all
write or read them: every change is one method call under the lock, and readers get a
``Snapshot``, a copy that nothing changes while it is read.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import NamedTuple

RATE_WINDOW_S = 5.0  # rates, "recent" problems and "nothing published" look this far back


class Problem(NamedTuple):
    """Why a frame got no answer: a counter key and a sentence that names the fix."""

    reason: str
    detail: str


class RecentProblem(NamedTuple):
    """One reason among the recent problems: how often, and its latest sentence."""

    reason: str
    detail: str
    count: int


@dataclass(frozen=True)
class Snapshot:
    """A camera's counters and rates at one moment, for diagnostics and ``~/info``."""

    received: int
    processed: int
    dropped: dict[str, int]
    rejected: dict[str, int]
    recent_problems: tuple[RecentProblem, ...]  # within RATE_WINDOW_S, most frequent first
    input_rate_hz: float
    output_rate_hz: float
    input_age_ms: float
    last_receive: float  # monotonic time of the last frame received; 0: none yet
    unanswered_since: float  # first frame received after the last one answered; 0: none
    input_publishers: frozenset  # GIDs of the input's publishers at the last check
    matched_since: float  # when one of them was first seen (a restarted driver is new)
    input_times: tuple[float, ...]
    views: tuple[str, ...]  # the topics published for the last frame answered
    points_skipped: dict[str, int]  # answered frames without ~/points, by reason

    @property
    def unanswered(self) -> int:
        return sum(self.dropped.values()) + sum(self.rejected.values())


def rate(times, now: float) -> float:
    """Events per second over the RATE_WINDOW_S that ends now: a silence lowers it at once,
    so the rate never contradicts "nothing published for N s"."""
    recent = [t for t in times if now - t < RATE_WINDOW_S]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(now - recent[0], 1e-6)


class CameraStats:
    """Every received frame ends up in exactly one counter: ``processed``, ``dropped`` (by
    reason: superseded by a newer frame, its stamp, deactivation) or ``rejected`` (by
    reason: its content), apart from the one that may be waiting for the worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received = 0
        self._processed = 0
        self._dropped: Counter = Counter()
        self._rejected: Counter = Counter()
        self._problems: deque = deque(maxlen=100)  # (monotonic time, Problem)
        self._input_times: deque = deque(maxlen=100)
        self._output_times: deque = deque(maxlen=100)
        self._input_age_ms = float("nan")
        self._last_receive = 0.0
        self._unanswered_since = 0.0
        self._input_publishers: frozenset = frozenset()
        self._matched_since = 0.0
        self._views: tuple[str, ...] = ()
        self._points_skipped: Counter = Counter()

    def received(self, now: float) -> None:
        with self._lock:
            self._received += 1
            self._last_receive = now
            self._unanswered_since = self._unanswered_since or now
            self._input_times.append(now)

    def input_age(self, age_ms: float | None) -> None:
        with self._lock:
            self._input_age_ms = float("nan") if age_ms is None else age_ms

    def unanswered(self, rejected: bool, problem: Problem, now: float, noted: bool) -> None:
        """Count a frame under its reason; ``noted``: diagnostics report it as a problem."""
        with self._lock:
            (self._rejected if rejected else self._dropped)[problem.reason] += 1
            if noted:
                self._problems.append((now, problem))

    def answered(self, now: float, views: tuple[str, ...]) -> tuple[int, int, int]:
        """Count a frame answered on ``views``; (processed, dropped, rejected) totals after it."""
        with self._lock:
            self._views = views
            self._processed += 1
            self._output_times.append(now)
            self._unanswered_since = 0.0
            return self._processed, sum(self._dropped.values()), sum(self._rejected.values())

    def points_skipped(self, reason: str) -> None:
        """An answered frame got no ~/points (no matching depth, bad depth, no camera_info)."""
        with self._lock:
            self._points_skipped[reason] += 1

    def stop_waiting(self) -> None:
        """Deactivated: no frame is owed an answer any more."""
        with self._lock:
            self._unanswered_since = 0.0

    def subscribed(self, now: float) -> None:
        """A new subscription: publishers are counted afresh from now."""
        with self._lock:
            self._input_publishers, self._matched_since = frozenset(), now

    def publishers_seen(self, publishers: frozenset, now: float) -> None:
        """The input's publishers now; one not seen before (a restarted driver) is new."""
        with self._lock:
            if publishers - self._input_publishers:
                self._matched_since = now
            self._input_publishers = publishers

    def snapshot(self, now: float) -> Snapshot:
        with self._lock:
            recent: dict[str, RecentProblem] = {}
            for when, problem in self._problems:
                if now - when < RATE_WINDOW_S:
                    count = recent[problem.reason].count + 1 if problem.reason in recent else 1
                    recent[problem.reason] = RecentProblem(problem.reason, problem.detail, count)
            return Snapshot(
                received=self._received,
                processed=self._processed,
                dropped=dict(self._dropped),
                rejected=dict(self._rejected),
                recent_problems=tuple(sorted(recent.values(), key=lambda p: -p.count)),
                input_rate_hz=rate(self._input_times, now),
                output_rate_hz=rate(self._output_times, now),
                input_age_ms=self._input_age_ms,
                last_receive=self._last_receive,
                unanswered_since=self._unanswered_since,
                input_publishers=self._input_publishers,
                matched_since=self._matched_since,
                input_times=tuple(self._input_times),
                views=self._views,
                points_skipped=dict(self._points_skipped),
            )
