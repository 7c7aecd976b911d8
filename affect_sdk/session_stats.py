"""Counters of a running Session (frames, faces, speech windows, latency) and their summary."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SessionStats:
    """Counters of a running session; `summary()` gives rates and latency percentiles."""

    frames_captured: int = 0
    frames_dropped: int = 0
    frames_analysed: int = 0
    faces: int = 0
    speech_windows: int = 0
    voiced_windows: int = 0
    fused: int = 0
    audio_seconds: float = 0.0
    audio_overflows: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=100_000))  # capture -> fused, per frame
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    labels: dict[str, int] = field(default_factory=dict)  # fused top labels

    def count_frame(self, faces: list, captured: int, dropped: int) -> None:
        """An analysed frame with its faces; the camera's running capture and drop counts."""
        self.frames_analysed += 1
        self.frames_captured, self.frames_dropped = captured, dropped
        self.faces += len(faces)
        self.first_frame_at = self.first_frame_at or time.monotonic()
        self.last_frame_at = time.monotonic()

    def count_speech(self, result: Any) -> None:
        self.speech_windows += 1
        self.voiced_windows += int(result.voiced)

    def count_fused(self, fused: Any, captured: float | None) -> None:
        """A fused result; `captured`: when its frame was captured (time.monotonic()), for the latency."""
        if captured is not None:
            self.latencies_ms.append((time.monotonic() - captured) * 1000.0)
        self.fused += 1
        if fused.label is not None:
            self.labels[fused.label] = self.labels.get(fused.label, 0) + 1

    def summary(self) -> dict[str, Any]:
        wall = (self.ended_at or time.monotonic()) - self.started_at
        span = (self.last_frame_at - self.first_frame_at) if self.first_frame_at and self.last_frame_at else 0.0
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        return {
            "seconds": round(wall, 3),
            "frames_captured": self.frames_captured,
            "frames_analysed": self.frames_analysed,
            "frames_dropped": self.frames_dropped,
            "fps": round((self.frames_analysed - 1) / span, 2) if span > 0 and self.frames_analysed > 1 else 0.0,
            "faces": self.faces,
            "speech_windows": self.speech_windows,
            "voiced_windows": self.voiced_windows,
            "audio_seconds": round(self.audio_seconds, 3),
            "audio_overflows": self.audio_overflows,
            "fused": self.fused,
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2) if lat.size else None,
            "top_label": max(self.labels, key=self.labels.get) if self.labels else None,
        }
