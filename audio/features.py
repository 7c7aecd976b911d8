"""Audio front end: read any sound/video file as mono float32, resample, level-invariant log-mel, voice activity.

One code path for files and live chunks: files are decoded block by block (`iter_audio_blocks`, so an hour-long
file never sits in memory when streamed), every block or chunk goes through `to_mono` and a stateful `Resampler`,
and the model sees `model_input(window)`: a log-mel spectrogram (numpy FFT + librosa mel filters) normalised per
window, so a recording 20 dB louder or quieter gives the same features.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from affect_sdk.errors import InputError

MODEL_RATE = 16000
BLOCK_SECONDS = 10.0  # decode files in blocks of this length
NARROWBAND_HZ = 4000  # telephone band (8 kHz sampling): no content above this
NARROWBAND_RATIO_DB = -40.0  # narrowband: power above NARROWBAND_HZ this far below the 300-3400 Hz band's
MAX_CHANNELS = 64  # more than any microphone array: a longer axis is the sample axis
SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".caf", ".w64", ".opus"}


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings; shipped models store theirs in the registry's `preprocess` dict."""

    sample_rate: int = MODEL_RATE
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 7600.0
    top_db: float = 80.0  # floor relative to the window's loudest bin
    # narrowband windows (telephone band: nothing above NARROWBAND_HZ) get their upper mel bands masked to 0 and
    # are normalised over the rest; only models trained with band-limited copies (speech-cnn v2) ask for this
    narrowband_mask: bool = False
    # each mel band's own mean over the window is subtracted (cepstral-mean-style normalisation per band), not
    # only the window's overall mean: a microphone's or room's fixed colouring, and part of a voice's timbre, go
    band_norm: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureConfig":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class VadConfig:
    """Voice-activity gate for one window: speech is loud enough in absolute terms AND modulated in level.

    Stationary noise (hum, fan, hiss) has frames of nearly equal energy; speech has syllables and pauses. A frame
    counts as active when it stands `contrast_db` above the window's quiet frames (10th percentile), with every
    frame's level counted as at least `floor_db` (dBFS RMS), so digital silence and faint hiss never pass; a window
    is voiced when at least `min_active` of its frames are active and it holds `min_speech_s` seconds of speech
    (speech_seconds; minimum evidence: a 50 ms blip, or a clip shorter than half a second, gets no emotion).

    The contrasts are set for speech in noise (session 11, chosen on the validation actors 15-16 and synthetic
    noise; speech-cnn.md): 6 dB (active) and 3 dB (evidence) above the quiet frames. Stationary noise stays far
    below them (its frame levels spread by about 1 dB), while at 10 dB SNR the earlier 12 / 6 dB gated out 82 % of
    speech windows, so most utterances in a noisy room got no emotion at all.
    """

    floor_db: float = -105.0
    contrast_db: float = 6.0
    min_active: float = 0.12
    min_speech_s: float = 0.5
    evidence_db: float = 3.0  # speech_seconds: frames this far above the quiet ones...
    range_db: float = 30.0  # ...and within this of the loudest
    frame: int = 400
    hop: int = 160
    rate: int = MODEL_RATE

    def __post_init__(self) -> None:
        from affect_sdk.checks import finite_number, probability

        finite_number("floor_db", self.floor_db, "dB")
        for name in ("contrast_db", "evidence_db", "range_db"):
            finite_number(name, getattr(self, name), "dB")
        probability("min_active", self.min_active)
        if not (isinstance(self.min_speech_s, (int, float)) and 0 <= self.min_speech_s < float("inf")):
            raise InputError(f"min_speech_s must be a finite number of seconds >= 0; got {self.min_speech_s!r}.")
        for name in ("frame", "hop", "rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number of samples of at least 1; got {value!r}.")


# ---------------------------------------------------------------- reading
def to_mono(chunk: np.ndarray) -> np.ndarray:
    """Samples [n] or [n, channels] of any numeric dtype -> float32 mono in [-1, 1] (integers scaled).

    A channels-first chunk [channels, n] (up to MAX_CHANNELS channels, more samples than channels) is read as such:
    taken as [n, channels] it would silently become a handful of samples.
    """
    x = np.asarray(chunk)
    if x.ndim not in (1, 2):
        raise InputError(f"Audio chunk must have shape [n] or [n, channels]; got shape {x.shape}.")
    if x.ndim == 2 and x.shape[1] > MAX_CHANNELS:
        if x.shape[0] > MAX_CHANNELS:
            raise InputError(f"Audio chunk of shape {x.shape} has no channel axis of at most {MAX_CHANNELS}; "
                             "expected [n] or [n, channels].")
        x = x.T  # channels-first
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        offset = (info.max + 1) / 2 if x.dtype.kind == "u" else 0.0
        x = (x.astype(np.float32) - offset) / float(max(abs(info.min), info.max + 1 - offset))
    elif x.dtype.kind == "f":
        with np.errstate(over="ignore"):  # beyond float32: becomes inf, refused just below
            x = x.astype(np.float32, copy=False)
    else:
        raise InputError(f"Audio samples must be numbers; got dtype {x.dtype}.")
    if x.ndim == 2:
        with np.errstate(over="ignore", invalid="ignore"):
            x = x.mean(axis=1, dtype=np.float32) if x.shape[1] else np.zeros(len(x), np.float32)
    if not np.isfinite(x).all():
        raise InputError("Audio contains NaN or infinite samples; expected finite numbers.")
    return x


class Resampler:
    """Stateful mono resampler (soxr streaming, HQ): chunked output is identical to one-shot output."""

    def __init__(self, in_rate: float, out_rate: int = MODEL_RATE) -> None:
        if not in_rate or in_rate <= 0 or not np.isfinite(in_rate):
            raise InputError(f"Input sample rate must be a positive number of Hz; got {in_rate!r}.")
        self.in_rate, self.out_rate = float(in_rate), int(out_rate)
        self._stream = None
        if self.in_rate != self.out_rate:
            import soxr

            self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=last)


def _decode_error(path: Path, exc: Exception | str) -> InputError:
    return InputError(f"Cannot read {path} as audio ({exc}); expected a wav/flac/ogg/mp3 file or a video with sound.")


def _soundfile_blocks(path: Path, block_s: float) -> tuple[float, Iterator[np.ndarray]]:
    import soundfile as sf

    info = sf.info(str(path))
    rate = float(info.samplerate)

    def blocks() -> Iterator[np.ndarray]:
        try:
            for block in sf.blocks(str(path), blocksize=max(1, int(rate * block_s)), dtype="float32",
                                   always_2d=True):
                yield block
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise _decode_error(path, exc) from exc

    return rate, blocks()


def _pyav_blocks(path: Path) -> tuple[float, Iterator[np.ndarray]]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise _decode_error(path, exc) from exc
    streams = container.streams.audio
    if not streams:
        container.close()
        raise InputError(f"{path} has no audio stream; expected a sound file or a video with sound.")
    stream = streams[0]
    try:
        rate = float(stream.rate or stream.codec_context.sample_rate or 0)
    except (AttributeError, TypeError, ValueError):  # PyAV raises AttributeError for a stream without a codec
        rate = 0.0
    if not rate > 0:  # junk bytes FFmpeg half-recognised: name the file here, not "sample rate 0.0" downstream
        container.close()
        raise _decode_error(path, "no valid sample rate")

    def blocks() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                data = frame.to_ndarray()
                # planar [channels, n] or packed [1, n * channels]
                if frame.format.is_planar:
                    block = data.T
                else:
                    block = data.reshape(-1, len(frame.layout.channels))
                yield to_mono(block)[:, None]
        except (av.error.FFmpegError, ValueError) as exc:
            raise _decode_error(path, exc) from exc
        finally:
            container.close()

    return rate, blocks()


def iter_audio_blocks(path: str | Path, block_s: float = BLOCK_SECONDS) -> tuple[float, Iterator[np.ndarray]]:
    """(native sample rate, iterator of float32 [n, channels] blocks) of a sound or video file, decoded lazily."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Audio file {path} does not exist.")
    if path.stat().st_size == 0:
        raise InputError(f"Audio file {path} is empty (0 bytes).")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            return _soundfile_blocks(path, block_s)
        except (sf.LibsndfileError, RuntimeError) as exc:
            sf_error = exc
    else:
        sf_error = None
    try:
        return _pyav_blocks(path)
    except InputError:
        if sf_error is not None:
            raise _decode_error(path, sf_error) from None
        raise


def load_audio(path: str | Path, sample_rate: int = MODEL_RATE) -> np.ndarray:
    """A whole file as float32 mono at `sample_rate` (any rate/channels; wav/flac/mp3/mp4/m4a...). InputError if bad.

    For long recordings prefer SpeechAnalyzer.analyze_file, which streams blocks instead of loading everything.
    """
    rate, blocks = iter_audio_blocks(path)
    resample = Resampler(rate, sample_rate)
    parts = [resample(to_mono_checked(block, path)) for block in blocks]
    parts.append(resample(np.zeros(0, np.float32), last=True))
    wave = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if wave.size == 0:
        raise InputError(f"Audio file {path} contains no samples.")
    return wave.astype(np.float32, copy=False)


def to_mono_checked(block: np.ndarray, path: str | Path) -> np.ndarray:
    """to_mono, with the file named in the error message."""
    try:
        return to_mono(block)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- features
# numpy only: the inference paths (onnxruntime) never import torch; training wraps the arrays in tensors.
@lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def mel_basis(cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """The [n_mels, n_fft // 2 + 1] mel filter bank of a feature config (float32)."""
    return _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)


@lru_cache(maxsize=8)
def _window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann of win_length, zero-padded on both sides to n_fft (as torch.stft places a shorter window)."""
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(hann, (left, n_fft - win_length - left))


def log_mel(wave: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Mel power spectrogram in dB (float32): [..., n] samples -> [..., n_mels, frames]; frames = 1 + (n - n_fft)
    // hop.

    No centre padding, so a window's features depend only on its own samples (streaming == offline).
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.shape[-1] < cfg.n_fft:
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, cfg.n_fft - x.shape[-1])])
    lead = x.shape[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(x.reshape(-1, x.shape[-1]), cfg.n_fft, axis=-1)
    spec = np.fft.rfft(frames[:, ::cfg.hop_length] * _window(cfg.n_fft, cfg.win_length), axis=-1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32).transpose(0, 2, 1)  # [B, bins, frames]
    mel = _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax) @ power
    db = 10.0 * np.log10(np.maximum(mel, 1e-12))
    return db.reshape(*lead, cfg.n_mels, db.shape[-1]).astype(np.float32, copy=False)


@lru_cache(maxsize=8)
def mel_centres(sample_rate: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequency (Hz) of each mel band."""
    import librosa

    return librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)[1:-1]


def _centres(cfg: FeatureConfig) -> np.ndarray:
    return mel_centres(cfg.sample_rate, cfg.n_mels, cfg.fmin, cfg.fmax)


def is_narrowband(db: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Per window of a dB mel spectrogram [..., mels, frames]: is it telephone band, with the power above
    NARROWBAND_HZ (bands centred above it plus a margin) more than NARROWBAND_RATIO_DB below the 300-3400 Hz
    band's? 8 kHz input resampled to 16 kHz and band-limited 16 kHz recordings are; silence is not."""
    centres = _centres(cfg)
    high, speech = centres > NARROWBAND_HZ * 1.1, (centres >= 300) & (centres <= 3400)
    power = np.power(10.0, np.asarray(db, np.float64) / 10.0)
    high_power, speech_power = power[..., high, :].sum(axis=(-2, -1)), power[..., speech, :].sum(axis=(-2, -1))
    return (speech_power > 1e-10) & (high_power < speech_power * 10 ** (NARROWBAND_RATIO_DB / 10))


def band_keep(narrow: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """[..., mels] bool: the mel bands that carry signal (all of them; up to NARROWBAND_HZ where narrow)."""
    in_band = _centres(cfg) <= NARROWBAND_HZ
    return np.where(np.asarray(narrow)[..., None], in_band, True)


def bandwidth_hz(narrow: bool, input_rate: float, cfg: FeatureConfig = FeatureConfig()) -> int:
    """The effective audio bandwidth of a window: the input's Nyquist frequency when below the model's, and
    at most NARROWBAND_HZ when the window is telephone band."""
    nyquist = min(float(input_rate), float(cfg.sample_rate)) / 2
    return int(round(min(nyquist, NARROWBAND_HZ) if narrow else nyquist))


def normalize_level(db: np.ndarray, top_db: float = 80.0, keep: np.ndarray | None = None,
                    per_band: bool = False) -> np.ndarray:
    """Per-window level normalisation of a dB spectrogram [..., mels, frames]: floor at (max - top_db), then
    subtract the window's mean and scale to about unit range. A gain change is a constant dB offset, so it vanishes.

    `keep` ([..., mels] bool, see band_keep): only those bands set the peak and the mean; the others become 0.
    `per_band`: subtract each band's own mean over the window's frames instead (a fixed EQ vanishes too).
    """
    db = np.asarray(db, dtype=np.float32)
    mean_axes = -1 if per_band else (-2, -1)
    if keep is None or np.all(keep):
        peak = db.max(axis=(-2, -1), keepdims=True)
        db = np.maximum(db, peak - np.float32(top_db))
        return (db - db.mean(axis=mean_axes, keepdims=True)) / np.float32(20.0)
    keep = np.broadcast_to(np.asarray(keep, bool)[..., None], db.shape)
    peak = np.where(keep, db, -np.inf).max(axis=(-2, -1), keepdims=True)
    db = np.maximum(db, peak - np.float32(top_db))
    if per_band:  # a masked band's own mean would be its floor: it is zeroed below either way
        mean = db.mean(axis=-1, keepdims=True)
    else:
        mean = np.where(keep, db, 0).sum(axis=(-2, -1), keepdims=True) / keep.sum(axis=(-2, -1), keepdims=True)
    return np.where(keep, (db - mean) / np.float32(20.0), np.float32(0.0)).astype(np.float32)


def window_features(wave: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Windows [..., n] (at cfg.sample_rate) -> (model input [..., 1, n_mels, frames] float32, level-normalised
    and band-masked when cfg.narrowband_mask; whether each window is narrowband [...])."""
    db = log_mel(wave, cfg)
    narrow = is_narrowband(db, cfg)
    keep = band_keep(narrow, cfg) if cfg.narrowband_mask else None
    return np.expand_dims(normalize_level(db, cfg.top_db, keep, cfg.band_norm), -3), narrow


def model_input(wave: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Windows [..., n] (at cfg.sample_rate) -> model input [..., 1, n_mels, frames] (float32), level-normalised."""
    return window_features(wave, cfg)[0]


def _frame_levels(wave: np.ndarray, cfg: VadConfig) -> np.ndarray:
    """Level (dBFS, floored at cfg.floor_db) of each frame of a window's first difference."""
    x = np.asarray(wave, dtype=np.float64)
    if x.size < cfg.frame:
        x = np.pad(x, (0, cfg.frame - x.size))
    x = np.diff(x, prepend=x[:1]) if x.size else x  # first difference: drifting low-frequency rumble is not speech
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.frame)[:: cfg.hop]
    energy_db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-20)
    return np.maximum(energy_db, cfg.floor_db)  # digital silence counts as the floor, not as -inf


def active_fraction(wave: np.ndarray, cfg: VadConfig = VadConfig()) -> float:
    """Fraction of frames in a window that the voice-activity gate counts as speech-like (see VadConfig)."""
    return _active_fraction(_frame_levels(wave, cfg), cfg)


def speech_seconds(wave: np.ndarray, cfg: VadConfig = VadConfig()) -> float:
    """Seconds of speech in a window, the evidence a label rests on: frames `evidence_db` above the window's quiet
    frames and within `range_db` of its loudest, times the frame hop. Continuous speech counts nearly whole; a
    blip counts its own length; stationary noise between words does not count."""
    return _speech_seconds(_frame_levels(wave, cfg), cfg) if len(wave) else 0.0


class VoiceActivity(NamedTuple):
    voiced: bool  # the gate's verdict: is_voiced
    speech_s: float  # the evidence: speech_seconds


def voice_activity(wave: np.ndarray, cfg: VadConfig = VadConfig()) -> VoiceActivity:
    """is_voiced and speech_seconds of one window from a single pass over its frames (the streaming path needs
    both for every window; the frame levels are most of the gate's cost)."""
    if len(wave) == 0:
        return VoiceActivity(False, 0.0)
    levels = _frame_levels(wave, cfg)
    speech_s = _speech_seconds(levels, cfg)
    return VoiceActivity(_active_fraction(levels, cfg) >= cfg.min_active and speech_s >= cfg.min_speech_s, speech_s)


def is_voiced(wave: np.ndarray, cfg: VadConfig = VadConfig()) -> bool:
    """Speech-like enough (VadConfig.min_active) and with enough seconds of speech (VadConfig.min_speech_s)."""
    return voice_activity(wave, cfg).voiced


def _active_fraction(levels: np.ndarray, cfg: VadConfig) -> float:
    return float(np.mean(levels > np.percentile(levels, 10) + cfg.contrast_db))


def _speech_seconds(levels: np.ndarray, cfg: VadConfig) -> float:
    evident = (levels > np.percentile(levels, 10) + cfg.evidence_db) & (levels > levels.max() - cfg.range_db)
    return float(np.count_nonzero(evident) * cfg.hop / cfg.rate)


def window_bounds(n_samples: int, window: int, hop: int) -> list[tuple[int, int]]:
    """The analysis windows of a recording of n_samples: [k*hop, k*hop + window) while they fit, then one
    window ending at the last sample when at least hop/2 samples are left uncovered; one short window [0, n)
    when the recording is shorter than a window. SpeechStream emits exactly these, chunk by chunk."""
    if n_samples <= 0:
        return []
    if n_samples < window:
        return [(0, n_samples)]
    bounds = [(s, s + window) for s in range(0, n_samples - window + 1, hop)]
    if n_samples - bounds[-1][1] >= max(1, hop // 2):
        bounds.append((n_samples - window, n_samples))
    return bounds
