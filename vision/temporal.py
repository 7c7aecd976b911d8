"""Reading a face over time: the expression a clip shows, from per-frame probabilities. Pure numpy.

A frame mean lets neutral win almost every clip: people talk, blink and rest between expressions, and an
expression that lasts a second in a four-second clip is outvoted by the frames around it. Human raters instead
name the expression that was *held*. `sustained_expression` does the same: it slides a window of `min_seconds`
over the frames, and the clip's label is the non-neutral class that tops a whole window's mean (so it was the
dominant reading for at least that long) with the strongest such window; with no such window the clip reads
neutral. One flickering frame never decides; a held expression always can.

    label, probs, (start, end) = sustained_expression(frame_probs, frame_times, min_seconds=0.5)
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

NEUTRAL = 0  # affect_sdk.labels.CLASSES[0]
SUSTAIN_SECONDS = 0.5  # how long an expression must dominate to name a clip; fixed a priori, not tuned on clips


def window_frames(times: np.ndarray, min_seconds: float) -> int:
    """Frames spanning `min_seconds` at the clip's own frame rate (at least 3, so one odd frame cannot decide)."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2 or times[-1] <= times[0]:
        return 3
    fps = (len(times) - 1) / (times[-1] - times[0])
    return max(3, int(math.ceil(min_seconds * fps)))


class SustainedReading:
    """The streaming form: push one frame's probabilities at a time; `result()` is the reading so far.

    State is explicit and bounded whatever the length of the stream: the last `window` frames, their running sum,
    the sum over all frames and the strongest expressive window seen so far.

        reading = SustainedReading(window=window_frames(times))
        for t, p in zip(times, probs):
            reading.push(t, p)
        label, pooled, (start, end) = reading.result()
    """

    def __init__(self, window: int, *, neutral: int = NEUTRAL) -> None:
        if window < 1:
            raise ValueError("window must be at least one frame")
        self.window, self.neutral = int(window), neutral
        self._recent: deque[tuple[float, np.ndarray]] = deque()
        self._recent_sum: np.ndarray | None = None
        self._total: np.ndarray | None = None
        self._count = 0
        self._first_t = self._last_t = 0.0
        self._best: tuple[float, int, np.ndarray, float, float] | None = None  # (strength, label, mean, start, end)

    def push(self, t: float, probs: np.ndarray) -> None:
        p = np.asarray(probs, dtype=np.float64)
        if self._count == 0:
            self._recent_sum, self._total, self._first_t = np.zeros_like(p), np.zeros_like(p), float(t)
        self._count += 1
        self._last_t = float(t)
        self._total += p
        self._recent.append((float(t), p))
        self._recent_sum += p
        if len(self._recent) > self.window:
            self._recent_sum -= self._recent.popleft()[1]
        if len(self._recent) == self.window:
            mean = self._recent_sum / self.window
            top = int(mean.argmax())
            if top != self.neutral and (self._best is None or mean[top] > self._best[0]):
                self._best = (float(mean[top]), top, mean.copy(), self._recent[0][0], self._recent[-1][0])

    def result(self) -> tuple[int, np.ndarray, tuple[float, float]]:
        if self._count == 0:
            raise ValueError("no frames were pushed")
        if self._best is not None:
            _, label, mean, start, end = self._best
            return label, mean, (start, end)
        mean = self._total / self._count
        # too short for one window: the plain mean decides; long enough and nothing held: neutral
        label = int(mean.argmax()) if self._count < self.window else self.neutral
        return label, mean, (self._first_t, self._last_t)


def sustained_expression(probs: np.ndarray, times: np.ndarray, *, min_seconds: float = SUSTAIN_SECONDS,
                         neutral: int = NEUTRAL) -> tuple[int, np.ndarray, tuple[float, float]]:
    """The clip's label index, its probabilities and the (start, end) times of the window that decided.

    `probs` [N, C] are per-frame probabilities of one face in time order, `times` [N] their times in seconds.
    """
    probs = np.asarray(probs, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0 or len(times) != len(probs):
        raise ValueError("probs must be [N, classes] with N >= 1 and times [N]")
    reading = SustainedReading(window_frames(times, min_seconds), neutral=neutral)
    for t, p in zip(times, probs):
        reading.push(t, p)
    return reading.result()
