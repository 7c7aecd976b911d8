"""Time alignment of face and speech results on the session clock: pairing, missing-modality fallback, smoothing.

Face results are stamped at frame times, speech results at window centres; a speech window is only *known* once
its end has been heard, so at time t the usable speech result is the latest one with `end <= t`. Each fused result
at time t pairs the latest known result of each modality if it is at most its configured age old; otherwise that
modality is left out and the result says why in `note`. The rule only looks at result times, so it is the
same live and for files read as fast as possible (there the session holds frames until the audio has caught up).

Smoothing is exponential with a time constant (alpha = 1 - exp(-dt / tau)), so it behaves the same at 10 or
60 fps, and a long gap resets it by itself.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.fusion import rules
from affect_sdk.labels import NUM_CLASSES
from affect_sdk.results import FaceAffect, FusedAffect, SpeechAffect

_TIME_SLACK = 1e-6  # float noise when comparing stamps


@dataclass(frozen=True)
class SyncConfig:
    """How results are paired, fused and smoothed. The defaults suit 30 fps video and 2 s / 0.5 s speech windows."""

    max_face_age_s: float = 0.5  # a face result older than this is "no face"
    # A 2 s window is known 1 s after its centre, and a new one comes every 0.5 s: ages run 1.0..1.5 s live.
    max_speech_age_s: float = 2.0
    rule: str = "entropy_weighted"  # one of affect_sdk.fusion.rules.RULE_NAMES
    fitted: rules.FittedWeights | None = None  # needed for rule "fitted"
    smoothing_tau_s: float | None = 0.3  # None or 0: no smoothing

    def __post_init__(self) -> None:
        if not (self.max_face_age_s >= 0 and self.max_speech_age_s >= 0):
            raise InputError("Maximum result ages must be zero or more seconds.")
        if self.rule not in rules.RULE_NAMES:
            raise InputError(f"Unknown fusion rule {self.rule!r}; expected one of {', '.join(rules.RULE_NAMES)}.")
        if self.rule == "fitted" and self.fitted is None:
            raise InputError("Fusion rule 'fitted' needs fitted weights (affect_sdk.fusion.fit).")
        if self.smoothing_tau_s is not None and not self.smoothing_tau_s >= 0:  # NaN too
            raise InputError(f"The smoothing time constant must be zero or more seconds; got {self.smoothing_tau_s}.")


# ---------------------------------------------------------------- pure functions
def primary_face(faces: Sequence[FaceAffect]) -> FaceAffect | None:
    """The face fused with the voice: the largest one (closest to the camera), the most confident if no boxes."""
    if not faces:
        return None
    return max(faces, key=lambda f: ((f.box[2] * f.box[3]) if f.box else 0.0, f.confidence))


def modality_weights(face: FaceAffect | None, speech: SpeechAffect | None, config: SyncConfig = SyncConfig()
                     ) -> tuple[tuple[str, float], ...]:
    """Each present modality's share of the fused probabilities, summing to 1: the rule's base weights (1, 1, or
    the fitted per-class weights averaged), times each result's confidence for `entropy_weighted`."""
    present = [(name, r) for name, r in (("face", face), ("speech", speech)) if r is not None and r.probs is not None]
    if not present:
        return ()
    base = {"face": 1.0, "speech": 1.0}
    if config.rule == "fitted" and config.fitted is not None:
        base = {"face": float(np.mean(config.fitted.face)), "speech": float(np.mean(config.fitted.speech))}
    raw = {name: base[name] * (float(rules.confidence(np.asarray(r.probs))) + 1e-3
                               if config.rule == "entropy_weighted" else 1.0) for name, r in present}
    total = sum(raw.values()) or 1.0
    return tuple((name, raw[name] / total) for name, _ in present)


def latest_known_speech(history: Iterable[SpeechAffect], t: float) -> SpeechAffect | None:
    """The most recent speech window fully heard by time t (end <= t), or None."""
    best = None
    for result in history:
        if result.end <= t + _TIME_SLACK and (best is None or result.t > best.t):
            best = result
    return best


def smoothing_alpha(dt: float, tau: float | None) -> float:
    """Weight of a new value after dt seconds with time constant tau (1.0: take it as is)."""
    if not tau:
        return 1.0
    return 1.0 - math.exp(-max(dt, 0.0) / tau)


def smooth(previous: np.ndarray | None, new: np.ndarray, dt: float, tau: float | None) -> np.ndarray:
    """One exponential smoothing step; `previous` None starts from `new`."""
    if previous is None:
        return np.asarray(new, dtype=np.float64)
    alpha = smoothing_alpha(dt, tau)
    return (1.0 - alpha) * previous + alpha * np.asarray(new, dtype=np.float64)


def fuse_results(face: FaceAffect | None, speech: SpeechAffect | None, config: SyncConfig = SyncConfig()
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """(probs [8], va [2], confidence) of a face and a voiced speech result, either of which may be None.

    Probabilities by the configured rule (affect_sdk.fusion.rules), V/A weighted by each result's confidence,
    confidence = 1 - normalised entropy of the fused distribution.
    """
    face_p = None if face is None or face.probs is None else np.asarray(face.probs, dtype=np.float64)
    speech_p = None if speech is None or speech.probs is None else np.asarray(speech.probs, dtype=np.float64)
    probs = rules.fuse(config.rule, face_p, speech_p, params=config.fitted)
    face_va = None if face_p is None else np.array([face.valence, face.arousal], dtype=np.float64)
    speech_va = None if speech_p is None else np.array([speech.valence, speech.arousal], dtype=np.float64)
    va = rules.fuse_va(face_va, speech_va,
                       face_reliability=face.confidence if face_p is not None else 0.0,
                       speech_reliability=speech.confidence if speech_p is not None else 0.0)
    return probs, va, float(rules.confidence(probs))


def fuse(face: FaceAffect | None = None, speech: SpeechAffect | None = None, *, rule: str = "entropy_weighted",
         t: float | None = None) -> FusedAffect:
    """One face result and one speech result (either may be None) -> one FusedAffect, by `rule`, unsmoothed.

        faces = FaceAnalyzer().analyze("photo.png")
        speech = SpeechAnalyzer().analyze_file("voice.wav")
        fused = affect_sdk.fuse(faces[0], speech[-1])        # fused.label, fused.probs["happy"], fused.weights
        print(fused.label, fused.sources, f"V={fused.valence:+.2f} A={fused.arousal:+.2f}")

    For a stream (pairing by time, smoothing) use FusionState or Session; this is the same math for one pair.
    """
    config = SyncConfig(rule=rule, smoothing_tau_s=None)
    usable_speech = speech if speech is not None and speech.voiced and speech.probs is not None else None
    usable_face = face if face is not None and face.probs is not None else None
    times = [r.t for r in (usable_face, usable_speech) if r is not None]
    t = float(t if t is not None else max(times, default=0.0))
    if usable_face is None and usable_speech is None:
        return FusedAffect(t=t, probs=None, valence=float("nan"), arousal=float("nan"), confidence=0.0, rule=rule,
                           note="nothing to fuse")
    probs, va, conf = fuse_results(usable_face, usable_speech, config)
    return FusedAffect(t=t, probs=tuple(float(p) for p in probs), valence=float(va[0]), arousal=float(va[1]),
                       confidence=conf, sources=tuple(n for n, r in (("face", usable_face), ("speech", usable_speech))
                                                      if r is not None),
                       face_age=None if usable_face is None else t - usable_face.t,
                       speech_age=None if usable_speech is None else t - usable_speech.t, rule=rule,
                       track_id=None if usable_face is None else usable_face.track_id,
                       weights=modality_weights(usable_face, usable_speech, config))


# ---------------------------------------------------------------- state
class FusionState:
    """Explicit state of one fused stream: latest face result, recent speech windows, smoothed output.

    Feed it with `add_faces` (every analysed frame, [] when no face was found) and `add_speech`, and call
    `fuse(t)` for a fused result at session time t. Times passed to `fuse` must not go backwards.
    `audio=False` says there is no microphone at all, so notes read "no audio" rather than "no speech result yet".
    """

    def __init__(self, config: SyncConfig = SyncConfig(), *, audio: bool = True, track_id: int | None = None) -> None:
        self.config = config
        self.audio = audio
        self.track_id = track_id  # follow this face track; None: the largest face of each frame
        self.face: FaceAffect | None = None  # primary face of the latest frame that had one
        self.frame_t: float | None = None  # time of the latest analysed frame, face or not
        self.speech: deque[SpeechAffect] = deque(maxlen=32)
        self._smoothed: np.ndarray | None = None  # probs (8) + va (2)
        self._smoothed_t: float | None = None
        self.last_t: float | None = None

    def add_faces(self, faces: Sequence[FaceAffect], t: float) -> None:
        self.frame_t = t
        if self.track_id is not None:
            faces = [f for f in faces if f.track_id == self.track_id]
        face = primary_face(faces)
        if face is not None:
            self.face = face

    def add_speech(self, result: SpeechAffect) -> None:
        self.speech.append(result)

    def fuse(self, t: float) -> FusedAffect:
        cfg = self.config
        if self.last_t is not None and t < self.last_t - _TIME_SLACK:
            raise InputError(f"Fusion time went backwards: {t:.3f} s after {self.last_t:.3f} s.")
        self.last_t = t
        face, face_note = self._face_at(t)
        speech, speech_note = self._speech_at(t)
        face_age = None if face is None else t - face.t
        speech_age = None if speech is None else t - speech.t
        usable_face = face if face is not None and face.probs is not None else None
        usable_speech = speech if speech is not None and speech.voiced and speech.probs is not None else None
        if usable_speech is None and speech is not None:
            speech_note = speech_note or "speech unvoiced"
        sources = tuple(name for name, r in (("face", usable_face), ("speech", usable_speech)) if r is not None)
        if not sources:
            self._smoothed = None  # nothing to carry over a gap with nothing in it
            note = "; ".join(n for n in (face_note, speech_note) if n) or "nothing to fuse"
            return FusedAffect(t=t, probs=None, valence=float("nan"), arousal=float("nan"), confidence=0.0,
                               sources=(), face_age=face_age, speech_age=speech_age, rule=cfg.rule, note=note)
        probs, va, conf = fuse_results(usable_face, usable_speech, cfg)
        state = np.concatenate([probs, va])
        if cfg.smoothing_tau_s:
            dt = 0.0 if self._smoothed_t is None else t - self._smoothed_t
            state = smooth(self._smoothed, state, dt, cfg.smoothing_tau_s)
            self._smoothed, self._smoothed_t = state, t
            probs = state[:NUM_CLASSES] / max(state[:NUM_CLASSES].sum(), 1e-12)
            va = state[NUM_CLASSES:]
            conf = float(rules.confidence(probs))
        if len(sources) == 2:
            note = ""
        elif sources == ("face",):
            note = f"face only: {speech_note}"
        else:
            note = f"speech only: {face_note}"
        return FusedAffect(t=t, probs=tuple(float(p) for p in probs), valence=float(va[0]), arousal=float(va[1]),
                           confidence=conf, sources=sources, face_age=face_age if usable_face else None,
                           speech_age=speech_age if usable_speech else None, rule=cfg.rule, note=note,
                           track_id=usable_face.track_id if usable_face is not None else None,
                           weights=modality_weights(usable_face, usable_speech, cfg))

    def _face_at(self, t: float) -> tuple[FaceAffect | None, str]:
        face, max_age = self.face, self.config.max_face_age_s
        if face is not None and t - face.t <= max_age + _TIME_SLACK:
            return face, ""
        if self.frame_t is None:
            return None, "no video"
        if t - self.frame_t > max_age + _TIME_SLACK:
            return None, f"no video frame in the last {max_age:g} s"
        return None, "no face in view"

    def _speech_at(self, t: float) -> tuple[SpeechAffect | None, str]:
        speech = latest_known_speech(self.speech, t)
        if speech is None:
            return None, "no speech result yet" if self.audio else "no audio"
        if t - speech.t > self.config.max_speech_age_s:
            return None, f"no speech result in the last {self.config.max_speech_age_s:g} s"
        return speech, ""
