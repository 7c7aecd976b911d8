"""Speech affect of files: a window timeline (streamed block by block, so hour-long files are fine) and an
utterance-level class distribution (mean over the voiced windows)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from affect_sdk.audio.calibrate import speech_calibration
from affect_sdk.audio.features import MODEL_RATE, VadConfig, iter_audio_blocks, load_audio, to_mono_checked
from affect_sdk.audio.stream import SpeechStream, resample_all, voiced_logits
from affect_sdk.errors import InputError
from affect_sdk.labels import NUM_CLASSES, va_from_probs
from affect_sdk.registry import default_model, get_spec_for
from affect_sdk.results import SpeechAffect, UtteranceAffect
from affect_sdk.runtime import create_runner


class SpeechAnalyzer:
    """One loaded speech model applied to files or whole waveforms, with the same windows as live streaming.

        analyzer = SpeechAnalyzer()                      # speech-cnn; onnxruntime when installed
        utterance = analyzer.classify_file("hello.wav")  # one reading of the whole utterance
        print(utterance.label, utterance.probs["happy"], utterance.valence)
        for window in analyzer.analyze_file("talk.flac"):  # or a timeline: one SpeechAffect per hop
            print(f"{window.t:.1f}s", window.label)

    `window_s` / `hop_s`: None takes the model's registered windows (affect_sdk.registry.speech_windows).
    `prior`: "train" keeps the training speakers' class frequencies, "balanced" divides them out (every emotion
    equally likely a priori), "blend" goes halfway; None takes the model's default. Probabilities are
    temperature-scaled as fitted on the validation speakers (affect_sdk.audio.calibrate).
    `set_baseline(resting)` calibrates to one speaker's calm voice, as FaceAnalyzer.set_baseline does for a face.
    """

    def __init__(self, model: str | None = None, window_s: float | None = None, hop_s: float | None = None,
                 backend: str | None = None, device: str | None = None, prior: str | None = None) -> None:
        self.model = model or default_model("speech")
        get_spec_for(self.model, "speech")  # a face model here is one clear ModelError, before anything loads
        self.window_s, self.hop_s = window_s, hop_s
        self.calibration = speech_calibration(self.model, prior)
        self.runner = create_runner(self.model, backend, device)

    @property
    def prior_mode(self) -> str:
        return self.calibration.mode

    @property
    def baseline(self) -> np.ndarray | None:
        """The per-class logit offset of the speaker's resting voice (None: no personal baseline)."""
        return self.calibration.offset

    def stream(self, input_rate: float = MODEL_RATE, t0: float = 0.0, gate: bool = True) -> SpeechStream:
        """A new SpeechStream sharing this analyzer's loaded model and calibration (personal baseline included)."""
        return SpeechStream(self.model, self.window_s, self.hop_s, input_rate, t0, gate=gate, runner=self.runner,
                            calibration=self.calibration)

    def voiced_logits(self, wave: np.ndarray, sample_rate: float = MODEL_RATE) -> np.ndarray:
        """Raw (uncalibrated) logits [N, 8] of the voiced windows of an in-memory recording."""
        stream = self.stream()
        return voiced_logits(self.runner, resample_all(wave, sample_rate, stream.rate), stream.features,
                             stream.window, stream.hop, VadConfig())

    def set_baseline(self, resting: np.ndarray | str | Path, sample_rate: float = MODEL_RATE) -> np.ndarray:
        """Calibrate to one speaker: `resting` is their calm or neutral speech (a file, or samples at
        `sample_rate`; at least half a second voiced). It then reads as the model's typical neutral voice, and
        emotions are read against it (affect_sdk.vision.calibrate has the math). Returns the per-class offset;
        `clear_baseline()` undoes it. Streams made after this call carry it."""
        if isinstance(resting, (str, Path)):
            resting, sample_rate = load_audio(resting), MODEL_RATE
        self.calibration = self.calibration.with_baseline(self.voiced_logits(resting, sample_rate))
        return self.calibration.offset

    def clear_baseline(self) -> None:
        self.calibration = speech_calibration(self.model, self.calibration.mode)

    def iter_file(self, path: str | Path, t0: float = 0.0, gate: bool = True) -> Iterator[SpeechAffect]:
        """Window results of a sound or video file as they are computed (t = t0 + media time)."""
        rate, blocks = iter_audio_blocks(path)
        stream = self.stream(rate, t0, gate)
        for block in blocks:
            yield from stream.push(to_mono_checked(block, path))
        tail = stream.flush()
        if stream.samples_seen == 0:
            raise InputError(f"Audio file {path} contains no audio samples.")
        yield from tail

    def analyze_file(self, path: str | Path, t0: float = 0.0) -> list[SpeechAffect]:
        """The window timeline of a file."""
        return list(self.iter_file(path, t0))

    def analyze_wave(self, wave: np.ndarray, sample_rate: float = MODEL_RATE, gate: bool = True) -> list[SpeechAffect]:
        """The window timeline of an in-memory recording ([n] or [n, channels])."""
        stream = self.stream(sample_rate, gate=gate)
        return stream.push(wave) + stream.flush()

    def classify_file(self, path: str | Path) -> UtteranceAffect:
        """The utterance's reading: mean over voiced windows; if none is voiced (less than 0.5 s of speech in
        every window), the mean over all windows, marked `low_evidence`.
        `result.label`, `result.probs["happy"]`; `probs, va = result` still gives the two arrays."""
        windows = self.analyze_file(path)
        if utterance_probs(windows) is None:
            return _utterance(list(self.iter_file(path, gate=False)), voiced_only=False)
        return _utterance(windows)

    def classify_wave(self, wave: np.ndarray, sample_rate: float = MODEL_RATE) -> UtteranceAffect:
        """classify_file for an in-memory recording."""
        windows = self.analyze_wave(wave, sample_rate)
        if utterance_probs(windows) is None:
            return _utterance(self.analyze_wave(wave, sample_rate, gate=False), voiced_only=False)
        return _utterance(windows)


def _utterance(windows: list[SpeechAffect], voiced_only: bool = True) -> UtteranceAffect:
    probs = utterance_probs(windows, voiced_only=voiced_only)
    va = va_from_probs(probs)
    return UtteranceAffect(t=0.0, probs=tuple(float(p) for p in probs), valence=float(va[0]), arousal=float(va[1]),
                           confidence=float(probs.max()), windows=len(windows),
                           voiced_windows=sum(1 for w in windows if w.voiced and w.probs is not None),
                           low_evidence=not voiced_only, bandwidth=min((w.bandwidth for w in windows), default=8000))


def utterance_probs(results: list[SpeechAffect], voiced_only: bool = True) -> np.ndarray | None:
    """Mean class distribution over the (voiced) windows that carry probabilities; None when there are none."""
    rows = [r.probs for r in results if r.probs is not None and (r.voiced or not voiced_only)]
    if not rows:
        return None
    return np.asarray(rows, dtype=np.float64).reshape(-1, NUM_CLASSES).mean(axis=0).astype(np.float32)
