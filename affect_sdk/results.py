"""Typed results: frozen dataclasses stamped in seconds on the session clock, plus a flushing JSON Lines writer."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES

Box = tuple[float, float, float, float]  # x, y, width, height in pixels


def _probs_dict(probs: tuple[float, ...] | None) -> dict[str, float] | None:
    return None if probs is None else {c: round(float(p), 6) for c, p in zip(CLASSES, probs)}


def _top(probs: tuple[float, ...] | None) -> str | None:
    if probs is None:
        return None
    return CLASSES[max(range(len(probs)), key=probs.__getitem__)]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class _Affect:
    t: float  # seconds on the session clock
    probs: tuple[float, ...] | None  # over CLASSES; None when this result carries no emotion
    valence: float
    arousal: float
    confidence: float  # 0..1

    @property
    def label(self) -> str | None:
        return _top(self.probs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "label": self.label}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = _probs_dict(value) if f.name == "probs" else _clean(value)
        return out


@dataclass(frozen=True)
class FaceAffect(_Affect):
    """One face in one frame."""

    box: Box | None = None
    face_id: int = 0
    kind = "face"


@dataclass(frozen=True)
class SpeechAffect(_Affect):
    """One analysis window of speech, stamped at the window's centre. Unvoiced windows carry no probs."""

    voiced: bool = True
    start: float = 0.0  # window start on the session clock
    end: float = 0.0
    kind = "speech"


@dataclass(frozen=True)
class FusedAffect(_Affect):
    """Face and speech merged; `sources` says which modalities contributed (empty: nothing to report)."""

    sources: tuple[str, ...] = ()
    face_age: float | None = None  # seconds between t and the face result used
    speech_age: float | None = None
    rule: str = ""
    note: str = ""
    kind = "fused"


class JsonlWriter:
    """Writes one JSON object per line and flushes each, so a crash or Ctrl-C loses nothing written so far."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[str] = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"Cannot write JSON Lines file {self.path}: {exc.strerror or exc}.") from exc

    def write(self, record: Any) -> None:
        data = record.to_dict() if hasattr(record, "to_dict") else record
        self._fh.write(json.dumps(data, allow_nan=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
