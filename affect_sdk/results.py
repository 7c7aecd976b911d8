"""Typed results: frozen dataclasses stamped in seconds on the session clock (JsonlWriter: affect_sdk.output)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from affect_sdk.labels import CLASSES
from affect_sdk.output import JsonlWriter  # noqa: F401 (its home was here; still importable)

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


class Probs(tuple):
    """Class probabilities in CLASSES order: an ordinary tuple (numpy, indexing, unpacking) that also answers to
    class names, `probs["happy"]`, so apps need not know the class order."""

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, CLASSES.index(key))
            except ValueError:
                raise KeyError(f"{key!r} is not a class; classes are {', '.join(CLASSES)}") from None
        return tuple.__getitem__(self, key)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(CLASSES, self))


@dataclass(frozen=True)
class _Affect:
    t: float  # seconds on the session clock
    probs: tuple[float, ...] | None  # over CLASSES (a Probs: by index or by class name); None: no emotion here
    valence: float
    arousal: float
    confidence: float  # 0..1

    def __post_init__(self) -> None:
        if self.probs is not None and not isinstance(self.probs, Probs):
            object.__setattr__(self, "probs", Probs(float(p) for p in self.probs))

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
    face_id: int = 0  # size rank within this frame (0: largest)
    track_id: int | None = None  # the same person across frames (affect_sdk.vision.track); None: not tracked
    kind = "face"


@dataclass(frozen=True)
class SpeechAffect(_Affect):
    """One analysis window of speech, stamped at the window's centre. Unvoiced windows carry no probs; neither do
    windows with less than half a second of speech in them (`speech_s`: too little evidence for a label)."""

    voiced: bool = True
    start: float = 0.0  # window start on the session clock
    end: float = 0.0
    bandwidth: int = 8000  # effective audio bandwidth in Hz: below 8000 the input was narrowband (4000: telephone)
    speech_s: float | None = None  # seconds of speech-like frames in the window (the evidence; None: not measured)
    kind = "speech"

    @property
    def narrowband(self) -> bool:
        """Telephone band (or less): the input had nothing above 4 kHz, resampled from below 16 kHz or not."""
        return self.bandwidth <= 4000


@dataclass(frozen=True)
class FusedAffect(_Affect):
    """Face and speech merged; `sources` says which modalities contributed (empty: nothing to report)."""

    sources: tuple[str, ...] = ()
    face_age: float | None = None  # seconds between t and the face result used
    speech_age: float | None = None
    rule: str = ""
    note: str = ""
    track_id: int | None = None  # the face track fused (None: no face in it)
    weights: tuple[tuple[str, float], ...] = ()  # each modality's share of the fused probabilities, summing to 1
    kind = "fused"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["weights"] = {name: round(float(w), 6) for name, w in self.weights}
        return out


@dataclass(frozen=True)
class UtteranceAffect(_Affect):
    """A whole recording's speech reading: the mean over its voiced windows (over all windows if none is voiced).

    It still unpacks as the (probs [8], va [2]) arrays classify_file used to return: `probs, va = result`."""

    windows: int = 0
    voiced_windows: int = 0
    low_evidence: bool = False  # no window had 0.5 s of voiced speech: the reading is the mean of all windows
    bandwidth: int = 8000  # the narrowest effective bandwidth among the windows, in Hz
    kind = "utterance"

    def _arrays(self) -> tuple:
        import numpy as np

        return np.asarray(self.probs, dtype=np.float32), np.array([self.valence, self.arousal], dtype=np.float32)

    def __iter__(self):
        return iter(self._arrays())

    def __getitem__(self, index: int):
        return self._arrays()[index]
