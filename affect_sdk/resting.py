"""The person at rest: the first seconds of a live session, collected to calibrate the face and the voice to them
(`Session(baseline_seconds=S, baseline_voice=...)`). Pure bookkeeping: the models' `set_baseline` does the math."""
from __future__ import annotations

import numpy as np

from affect_sdk.errors import InputError

# A voice baseline keeps at most this much audio, so memory stays bounded whatever S is (a minute of calm speech is
# far more than the half second of voiced speech a baseline needs).
MAX_RESTING_VOICE_S = 60.0


def check_baseline_options(seconds: float | None, voice: bool, camera: bool, mic: bool) -> None:
    """InputError for a baseline the session cannot take: a bad length, or no source to take it from."""
    if seconds is not None and not 0 < seconds < float("inf"):
        raise InputError(f"baseline_seconds must be a positive, finite number of seconds; got {seconds}.")
    if voice and (seconds is None or not mic):
        raise InputError("baseline_voice needs baseline_seconds and the microphone: the voice's baseline is the "
                         "first seconds of speech.")
    if seconds is not None and not camera and not voice:
        raise InputError("baseline_seconds needs the camera (a personal baseline is taken from the face), or "
                         "the voice baseline (baseline_voice=True, --baseline-voice) to calibrate the voice.")


def baseline_note(seconds: float, face: bool, voice: bool) -> str:
    """The note a session records when it starts taking the person at rest."""
    what = " and ".join(m for m, on in (("face", face), ("voice", voice)) if on)
    return f"baseline: the first {seconds:g} s are taken as the person at rest ({what}); results until then are " \
           "not calibrated to them"


class RestingFace:
    """Collects the largest face's crop of each frame before `seconds`; `add` returns them all once a frame at or
    after `seconds` comes (an empty array: no face at rest), and None before that or after."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._crops: list[np.ndarray] | None = []

    @property
    def collecting(self) -> bool:
        return self._crops is not None

    def add(self, crops: list[np.ndarray], t: float) -> np.ndarray | None:
        if self._crops is None:
            return None
        if t < self.seconds:
            if crops:
                self._crops.append(crops[0])
            return None
        resting, self._crops = self._crops, None
        return np.stack(resting) if resting else np.zeros((0, 0, 0), np.uint8)


class RestingVoice:
    """Collects the first `seconds` of microphone samples (at the microphone's rate, as they come); `add` returns
    the whole resting recording once it is complete, `finish` what there is when the audio ends first."""

    def __init__(self, seconds: float, rate: float) -> None:
        self.needed = max(1, int(round(min(seconds, MAX_RESTING_VOICE_S) * rate)))
        self._chunks: list[np.ndarray] | None = []
        self._have = 0

    @property
    def collecting(self) -> bool:
        return self._chunks is not None

    def add(self, chunk: np.ndarray) -> np.ndarray | None:
        if self._chunks is None:
            return None
        take = chunk[:self.needed - self._have]
        self._chunks.append(np.asarray(take, np.float32))
        self._have += len(take)
        return self.finish() if self._have >= self.needed else None

    def finish(self) -> np.ndarray | None:
        if not self._chunks:
            self._chunks = None
            return None
        resting, self._chunks = np.concatenate(self._chunks), None
        return resting


Outcome = tuple[str, str] | None  # ("note" | "warning", one sentence) for the session's record, or nothing to say


def calibrate_face(face, resting: np.ndarray | None, seconds: float) -> Outcome:
    """Hand the resting crops to a FaceAnalyzer (None: still collecting, nothing to do)."""
    if resting is None:
        return None
    if not len(resting):
        return "warning", f"Baseline not set: no face in the first {seconds:g} s."
    face.set_baseline(resting)
    return "note", (f"baseline set: the face of the first {seconds:g} s ({len(resting)} frames) now reads as this "
                    f"person at rest")


def calibrate_voice(stream, resting: np.ndarray | None, rate: float) -> Outcome:
    """Hand the resting samples (at `rate`) to a SpeechStream (None: still collecting, nothing to do)."""
    if resting is None:
        return None
    try:
        stream.set_baseline(resting, rate)
    except InputError as exc:  # no voiced speech at rest, or a model without a neutral reference
        return "warning", f"Voice baseline not set: {exc}"
    seconds = len(resting) / rate
    return "note", f"voice baseline set: the voice of the first {seconds:g} s now reads as this speaker at rest"
