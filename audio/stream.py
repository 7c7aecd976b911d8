"""Streaming speech affect: push chunks of any size, get one SpeechAffect per hop, stamped at the window centre.

The stream keeps explicit state (resampler, sample buffer, next window start) and computes every window's
features from its raw samples, so pushing a recording in any chunking gives the same results as pushing it at once
(the windows are exactly `features.window_bounds(n, window, hop)`). Windows the voice-activity gate rejects are
reported as unvoiced with no emotion and never reach the model.
"""
from __future__ import annotations

import math

import numpy as np

from affect_sdk.audio.features import FeatureConfig, Resampler, VadConfig, is_voiced, model_input, to_mono
from affect_sdk.checks import finite_time
from affect_sdk.errors import InputError
from affect_sdk.probs import softmax
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

    `window_s` / `hop_s` override the model's registered windows (affect_sdk.registry.speech_windows).
    """

    def __init__(self, model: str = "speech-cnn", window_s: float | None = None, hop_s: float | None = None,
                 input_rate: float = 16000, t0: float = 0.0, backend: str | None = None, device: str | None = None,
                 *, vad: VadConfig = VadConfig(), gate: bool = True, runner: Runner | None = None) -> None:
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
        self.runner = runner if runner is not None else create_runner(model, backend, device)
        self._resample = Resampler(input_rate, self.rate)
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # absolute index (at the model rate) of _buffer[0]
        self._total = 0  # samples received so far, at the model rate
        self._next = 0  # start of the next regular window
        self._closed = False
        self._piece = self.hop * MAX_BATCH_WINDOWS  # samples appended at once: at most MAX_BATCH_WINDOWS new windows

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
        voiced = [is_voiced(w, self.vad) for w in windows]
        run = [i for i, v in enumerate(voiced) if v or not self.gate]
        probs, va = {}, {}
        for first in range(0, len(run), MAX_BATCH_WINDOWS):  # bounded model batches, whatever the chunk length
            part = run[first:first + MAX_BATCH_WINDOWS]
            batch = np.stack([np.pad(windows[i], (0, self.window - len(windows[i]))) for i in part])
            outputs = self.runner(model_input(batch, self.features))
            for k, i in enumerate(part):
                probs[i], va[i] = softmax(outputs[0][k].astype(np.float64)), outputs[1][k]
        # keep only what the next regular window or a final tail window can still need
        keep_from = max(0, min(self._next, self._total - self.window))
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start:]
            self._buffer_start = keep_from
        results = []
        for i, (s, e) in enumerate(bounds):
            start, end = self.t0 + s / self.rate, self.t0 + e / self.rate
            if i in probs:
                p = probs[i]
                results.append(SpeechAffect(
                    t=(start + end) / 2, probs=tuple(float(v) for v in p), valence=float(va[i][0]),
                    arousal=float(va[i][1]), confidence=float(p.max()), voiced=voiced[i], start=start, end=end))
            else:
                results.append(SpeechAffect(t=(start + end) / 2, probs=None, valence=math.nan, arousal=math.nan,
                                            confidence=0.0, voiced=False, start=start, end=end))
        return results
