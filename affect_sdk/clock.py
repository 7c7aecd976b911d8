"""One monotonic session clock: every result is stamped in seconds since the session started."""
from __future__ import annotations

import time


class SessionClock:
    """Seconds since construction on time.monotonic(); never jumps with wall-clock changes."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def start(self) -> float:
        """The monotonic time (time.monotonic()) at which the session began."""
        return self._start

    def now(self) -> float:
        return time.monotonic() - self._start

    def at(self, monotonic_time: float) -> float:
        """Session time of an instant measured with time.monotonic() (e.g. a capture timestamp)."""
        return monotonic_time - self._start
