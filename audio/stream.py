"""Streaming speech affect: push chunks of any size, get one SpeechAffect per hop, stamped at the window centre.

The stream keeps explicit state (resampler, sample buffer, next window start) and computes every window's
features from its raw samples, so pushing a recording in any chunking gives the same results as pushing it at once
(the windows are exactly `features.window_bounds(n, window, hop)`). Windows the voice-activity gate rejects are
reported as unvoiced with no emotion and never reach the model; so are windows with less than half a second of
speech in them (VadConfig.min_speech_s: too little evidence for a label). Every window reports its effective
`bandwidth` (Hz): input below 16 kHz is resampled and flagged, and so is telephone-band content at 16 kHz.
Raw logits become probabilities through the model's calibration (prior, temperature, personal baseline).
"""
from __future__ import annotations

import math

import numpy as np

from affect_sdk.audio.calibrate import SpeechCalibration, speech_calibration
from affect_sdk.audio.features import (FeatureConfig, Resampler, VadConfig, bandwidth_hz, is_voiced, to_mono,
                                       voice_activity, window_bounds, window_features)
from affect_sdk.checks import finite_time
from affect_sdk.errors import InputError
from affect_sdk.labels import NUM_CLASSES
from affect_sdk.registry import get_spec_for, speech_windows
from affect_sdk.results import SpeechAffect
from affect_sdk.runtime import Runner, create_runner


MAX_BATCH_WINDOWS = 32  # windows per model call: 32 windows of 2 s keep features and activations to a few MB



class SpeechStream:
    """Chunks in (mono [n] or multi-channel [n, ch], any rate) -> SpeechAffect per hop on the session clock.

        stream = SpeechStream(input_rate=48000)          # windows and hop from the registry entry (2 s / 0.5 s)
        for chunk in microphone_chunks:                  # float32 or int16, any length
            for result in stream.push(chunk):            # one result per completed window
                print(f"{result.t:.2f}s", result.label if result.voiced else "(no voice)")
        tail = stream.flush()                            # the last window at the end of input

    `window_s` / `hop_s` override the model's registered windows (affect_sdk.registry.speech_windows). `prior`:
    the output prior ("train", "blend" or "balanced"; None: the model's default), or a ready `calibration`
    (SpeechAnalyzer hands its own, personal baseline included). `set_baseline(resting_speech)` calibrates the
    stream to one speaker's calm voice.
    """

    def __init__(self, model: str = "speech-cnn", window_s: float | None = None, hop_s: float | None = None,
                 input_rate: float = 16000, t0: float = 0.0, backend: str | None = None, device: str | None = None,
                 *, vad: VadConfig = VadConfig(), gate: bool = True, runner: Runner | None = None,
                 prior: str | None = None, calibration: SpeechCalibration | None = None) -> None:
        registered = speech_windows(model)  # a face model here is one ModelError
        window_s = registered.window_s if window_s is None else window_s
        hop_s = registered.hop_s if hop_s is None else hop_s
        if not (window_s > 0 and hop_s > 0 and math.isfinite(window_s) and math.isfinite(hop_s)):
            raise InputError(f"window_s and hop_s must be positive seconds; got {window_s!r} and {hop_s!r}.")
        self.features = FeatureConfig.from_dict(get_spec_for(model, "speech").preprocess)
        self.rate = self.features.sample_rate
        self.window = max(self.features.n_fft, int(round(window_s * self.rate)))
        self.hop = max(1, int(round(hop_s * self.rate)))
        self.t0, self.vad, self.gate = finite_time("t0", t0), vad, gate
        self.calibration = calibration if calibration is not None else speech_calibration(model, prior)
        self.runner = runner if runner is not None else create_runner(model, backend, device)
        self.input_rate = float(input_rate)
        self._resample = Resampler(input_rate, self.rate)
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # absolute index (at the model rate) of _buffer[0]
        self._total = 0  # samples received so far, at the model rate
        self._next = 0  # start of the next regular window
        self._closed = False
        self._piece = self.hop * MAX_BATCH_WINDOWS  # samples appended at once: at most MAX_BATCH_WINDOWS new windows

    def set_baseline(self, resting: np.ndarray, sample_rate: float = 16000) -> np.ndarray:
        """Calibrate to one speaker: `resting` is their calm or neutral speech ([n] or [n, channels], at least
        half a second voiced). From now on it reads as the model's typical neutral voice; returns the offset."""
        self.calibration = self.calibration.with_baseline(
            voiced_logits(self.runner, resample_all(resting, sample_rate, self.rate), self.features, self.window,
                          self.hop, self.vad))
        return self.calibration.offset

    @property
    def samples_seen(self) -> int:
        """Samples received so far at the model rate (after resampling)."""
        return self._total

    def push(self, chunk: np.ndarray) -> list[SpeechAffect]:
        """Add samples; return results for every window completed by them (possibly none)."""
        if self._closed:
            raise InputError("This SpeechStream was flushed; start a new SpeechStream for more audio.")
        samples = self._resample(to_mono(chunk))
        results: list[SpeechAffect] = []
        # a long chunk (a whole recording) goes through in pieces, so the buffer and the model batch stay bounded
        for start in range(0, max(len(samples), 1), self._piece):
            self._append(samples[start:start + self._piece])
            results += self._analyze(self._regular_windows())
        return results

    def flush(self) -> list[SpeechAffect]:
        """End of input: drain the resampler, emit the remaining windows (a last one ending at the final sample)."""
        if self._closed:
            return []
        self._append(self._resample(np.zeros(0, np.float32), last=True))
        self._closed = True
        bounds = self._regular_windows()
        if self._total > 0 and self._total < self.window:
            bounds.append((0, self._total))
        elif self._next > 0 and self._total - (self._next - self.hop + self.window) >= max(1, self.hop // 2):
            bounds.append((self._total - self.window, self._total))
        return self._analyze(bounds)

    # ------------------------------------------------------------ internals
    def _append(self, samples: np.ndarray) -> None:
        if samples.size:
            self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
            self._total += samples.size

    def _regular_windows(self) -> list[tuple[int, int]]:
        bounds = []
        while self._next + self.window <= self._total:
            bounds.append((self._next, self._next + self.window))
            self._next += self.hop
        return bounds

    def _analyze(self, bounds: list[tuple[int, int]]) -> list[SpeechAffect]:
        windows = [self._buffer[s - self._buffer_start:e - self._buffer_start] for s, e in bounds]
        activity = [voice_activity(w, self.vad) for w in windows]  # one pass each: verdict and evidence
        voiced = [a.voiced for a in activity]
        run = [i for i, v in enumerate(voiced) if v or not self.gate]
        logits, va, narrow = run_windows(self.runner, windows, self.window, self.features, run)
        probs = np.full_like(logits, np.nan)
        if run:
            probs[run] = self.calibration.probs(logits[run])
        # keep only what the next regular window or a final tail window can still need
        keep_from = max(0, min(self._next, self._total - self.window))
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start:]
            self._buffer_start = keep_from
        results = []
        run_set = set(run)
        for i, (s, e) in enumerate(bounds):
            start, end = self.t0 + s / self.rate, self.t0 + e / self.rate
            common = dict(t=(start + end) / 2, voiced=voiced[i], start=start, end=end,
                          bandwidth=bandwidth_hz(bool(narrow[i]), self.input_rate, self.features),
                          speech_s=round(activity[i].speech_s, 2))
            if i in run_set:
                p = probs[i]
                results.append(SpeechAffect(probs=tuple(float(v) for v in p), valence=float(va[i][0]),
                                            arousal=float(va[i][1]), confidence=float(p.max()), **common))
            else:
                results.append(SpeechAffect(probs=None, valence=math.nan, arousal=math.nan, confidence=0.0,
                                            **{**common, "voiced": False}))
        return results


def run_windows(runner: Runner, windows: list[np.ndarray], window: int, features: FeatureConfig,
                run: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw logits [N, 8] and V/A [N, 2] of windows (short ones zero padded; rows outside `run` left NaN, the
    model never sees them) and whether each window is narrowband [N], in bounded model batches."""
    n = len(windows)
    logits, va = np.full((n, NUM_CLASSES), np.nan, np.float32), np.full((n, 2), np.nan, np.float32)
    narrow = np.zeros(n, bool)
    wanted = set(range(n) if run is None else run)
    for first in range(0, n, MAX_BATCH_WINDOWS):  # bounded batches, whatever the chunk length
        part = list(range(first, min(n, first + MAX_BATCH_WINDOWS)))
        batch = np.stack([np.pad(windows[i], (0, window - len(windows[i]))) for i in part])
        x, narrow[part] = window_features(batch, features)
        chosen = [k for k, i in enumerate(part) if i in wanted]
        if chosen:
            outputs = runner(x[chosen])
            logits[[part[k] for k in chosen]] = outputs[0]
            va[[part[k] for k in chosen]] = outputs[1]
    return logits, va, narrow


def resample_all(wave: np.ndarray, sample_rate: float, rate: int) -> np.ndarray:
    """A whole in-memory recording, mixed to mono and resampled to `rate`."""
    resample = Resampler(sample_rate, rate)
    mono = to_mono(wave)
    return np.concatenate([resample(mono), resample(np.zeros(0, np.float32), last=True)])


def voiced_logits(runner: Runner, wave: np.ndarray, features: FeatureConfig, window: int, hop: int,
                  vad: VadConfig = VadConfig()) -> np.ndarray:
    """Raw logits [N, 8] of the voiced windows of a recording at the model rate (the windows a stream emits)."""
    windows = [wave[s:e] for s, e in window_bounds(len(wave), window, hop)]
    run = [i for i, w in enumerate(windows) if is_voiced(w, vad)]
    if not run:
        return np.zeros((0, NUM_CLASSES), np.float32)
    logits, _, _ = run_windows(runner, [windows[i] for i in run], window, features)
    return logits
