"""Training augmentation for the speech model, as pure functions of arrays and a random generator.

Two domains:

- **Waveforms: channels.** Telephone band (8 kHz, 300-3400 Hz, mu-law), an Opus round trip, a poor laptop
  microphone (band limits, level +-30 dB against a fixed noise floor, clipping). These are non-linear or need
  real resampling, so they run once per utterance and make *channel copies* (`channel_copy`); training draws one
  copy per crop.
- **Log-mel spectrograms: everything cheap.** Crops with tempo and pitch warps, reverberation and coloured noise
  in the power domain, a smooth spectral tilt, SpecAugment. With centre=False framing a crop on frame
  boundaries equals the features of that window, so they work on each copy's log-mel, computed once.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

CHANNELS = ("clean", "telephone", "opus", "mic")  # the copies training draws from, in this order


@dataclass(frozen=True)
class AugmentConfig:
    """What the speech recipe does to each training crop (probabilities per crop)."""

    tempo: float = 0.15  # tempo perturbation range +-
    pitch_bins: float = 2.0  # pitch perturbation range +- in mel bins
    warp_p: float = 0.6  # probability of each warp
    noise_p: float = 0.4
    snr_db: tuple[float, float] = (5.0, 35.0)
    reverb_p: float = 0.3
    rt60_s: tuple[float, float] = (0.2, 0.9)
    eq_p: float = 0.5
    eq_db: float = 6.0
    freq_masks: int = 2
    freq_mask: int = 8
    time_masks: int = 2
    time_mask: int = 25
    mixup_p: float = 0.4
    mixup_alpha: float = 0.4
    # channel copies: the chance a crop is taken from each; the rest come from the clean recording
    telephone_p: float = 0.0
    opus_p: float = 0.0
    mic_p: float = 0.0

    def channel_weights(self) -> np.ndarray:
        """Probabilities of CHANNELS for one crop."""
        other = (self.telephone_p, self.opus_p, self.mic_p)
        return np.array([max(0.0, 1.0 - sum(other)), *other])


# What each name switches off, for ablations (`affect train audio --without noise,reverb`).
ABLATIONS = {"warp": {"warp_p": 0.0}, "noise": {"noise_p": 0.0}, "reverb": {"reverb_p": 0.0}, "eq": {"eq_p": 0.0},
             "specaugment": {"freq_masks": 0, "time_masks": 0}, "mixup": {"mixup_p": 0.0},
             "telephone": {"telephone_p": 0.0}, "opus": {"opus_p": 0.0}, "mic": {"mic_p": 0.0}}


def without(cfg: AugmentConfig, names: list[str] | tuple[str, ...]) -> AugmentConfig:
    """`cfg` with the named augmentations off; an unknown name is a ValueError naming the known ones."""
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)}; known: {', '.join(ABLATIONS)}")
    for name in names:
        cfg = replace(cfg, **ABLATIONS[name])
    return cfg


# ---------------------------------------------------------------- waveform domain: channels
def band_limit(wave: np.ndarray, rate: float, low_hz: float, high_hz: float, order: int = 6) -> np.ndarray:
    """A causal Butterworth band-pass (a channel's band edges), like a telephone line or a small microphone."""
    from scipy.signal import butter, sosfilt

    nyquist = rate / 2
    high_hz = min(high_hz, 0.98 * nyquist)
    sos = butter(order, [low_hz, high_hz], btype="bandpass", fs=rate, output="sos")
    return sosfilt(sos, np.asarray(wave, np.float64)).astype(np.float32)


def mu_law(wave: np.ndarray, mu: int = 255) -> np.ndarray:
    """An 8-bit mu-law (G.711) round trip: compress, quantise to 256 levels, expand (clipping at full scale)."""
    x = np.clip(np.asarray(wave, np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    y = np.round((y + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu).astype(np.float32)


def resample(wave: np.ndarray, rate: float, to_rate: float) -> np.ndarray:
    import soxr

    if rate == to_rate:
        return np.asarray(wave, np.float32)
    return soxr.resample(np.asarray(wave, np.float32), rate, to_rate, quality="HQ").astype(np.float32)


def set_level(wave: np.ndarray, dbfs: float) -> np.ndarray:
    """The recording scaled to an RMS level of `dbfs` (dB relative to full scale); silence stays silent."""
    x = np.asarray(wave, np.float32)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return x * np.float32(10 ** (dbfs / 20) / rms) if rms > 0 else x


def telephone(wave: np.ndarray, rate: float, low_hz: float = 300.0, high_hz: float = 3400.0,
              codec: bool = True, level_dbfs: float = -26.0) -> np.ndarray:
    """A telephone call, back at `rate` and length: 8 kHz sampling, the band edges, the speech at `level_dbfs`
    (RMS) and optionally the mu-law codec (whose quantisation noise grows as the level falls)."""
    x = set_level(band_limit(resample(wave, rate, 8000), 8000, low_hz, high_hz), level_dbfs)
    out = resample(mu_law(x) if codec else x, 8000, rate)
    return np.pad(out[:len(wave)], (0, max(0, len(wave) - len(out))))


def opus(wave: np.ndarray, rate: float, bitrate: int = 16000) -> np.ndarray:
    """An Opus round trip (libopus through PyAV) at `bitrate` bit/s, back at `rate` and trimmed to the input."""
    import av

    codec_rate = 16000 if rate >= 16000 else 8000
    pcm = np.round(np.clip(resample(wave, rate, codec_rate), -1, 1) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=codec_rate, layout="mono")
        stream.bit_rate = int(bitrate)
        frame = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
        frame.sample_rate = codec_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    buffer.seek(0)
    parts, out_rate = [], codec_rate
    with av.open(buffer) as container:
        for decoded in container.decode(audio=0):
            out_rate = decoded.sample_rate
            data = decoded.to_ndarray()
            data = data.astype(np.float32) / 32768.0 if data.dtype.kind == "i" else data.astype(np.float32)
            parts.append(data[0] if decoded.format.is_planar else data.reshape(-1))
    if not parts:
        return np.zeros_like(np.asarray(wave, np.float32))
    out = resample(np.concatenate(parts), out_rate, rate)
    n = len(wave)
    return np.pad(out[:n], (0, max(0, n - len(out))))


def microphone(wave: np.ndarray, rate: float, rng: np.random.Generator, *, low_hz: float, high_hz: float,
               level_dbfs: float, noise_floor_db: float) -> np.ndarray:
    """A cheap microphone: band edges, the speech at `level_dbfs` (RMS) against a fixed self-noise floor (dBFS
    RMS, white), and clipping at full scale when too loud."""
    x = set_level(band_limit(wave, rate, low_hz, high_hz), level_dbfs)
    x = x + rng.standard_normal(len(x)).astype(np.float32) * np.float32(10 ** (noise_floor_db / 20))
    return np.clip(x, -1.0, 1.0)


def active_power(wave: np.ndarray, frame: int = 400, range_db: float = 20.0) -> float:
    """Mean power of a recording's loud frames (within `range_db` of the loudest): its speech level, pauses aside."""
    x = np.asarray(wave, np.float64)
    n = len(x) // frame
    if n == 0:
        return float(np.mean(x * x)) if x.size else 0.0
    power = np.mean(x[:n * frame].reshape(n, frame) ** 2, axis=1)
    return float(power[power >= power.max() * 10 ** (-range_db / 10)].mean())


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of pink (1/f power) noise with unit power."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x * x) + 1e-20)).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Pink noise at `snr_db` below the speech's active level (active_power)."""
    noise = pink_noise(len(wave), rng) * np.float32(np.sqrt(active_power(wave) * 10 ** (-snr_db / 10)))
    return (np.asarray(wave, np.float32) + noise).astype(np.float32)


def room_impulse_response(rate: float, rt60_s: float, rng: np.random.Generator,
                          direct_to_reverberant_db: float = 0.0) -> np.ndarray:
    """A synthetic room: a direct path, then exponentially decaying noise (60 dB down after rt60_s), the tail's
    energy `direct_to_reverberant_db` below the direct path's."""
    n = max(2, int(rt60_s * rate))
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)
    tail[: int(0.002 * rate)] = 0.0  # first reflections arrive a few ms after the direct sound
    tail *= np.sqrt(10 ** (-direct_to_reverberant_db / 10) / (np.sum(tail ** 2) + 1e-20))
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(wave: np.ndarray, rate: float, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """The recording in a synthetic room (room_impulse_response), same length."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(np.asarray(wave, np.float64), room_impulse_response(rate, rt60_s, rng))[: len(wave)]
    return wet.astype(np.float32)


def channel_copy(kind: str, wave: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """One random realisation of a channel (CHANNELS) applied to a whole utterance, at the same rate."""
    if kind == "clean":
        return np.asarray(wave, np.float32)
    if kind == "telephone":
        return telephone(wave, rate, low_hz=rng.uniform(200, 400), high_hz=rng.uniform(3000, 3600),
                         codec=bool(rng.random() < 0.75), level_dbfs=rng.uniform(-50, -16))
    if kind == "opus":
        return opus(wave, rate, bitrate=int(rng.choice([6000, 8000, 12000, 16000, 24000])))
    if kind == "mic":
        return microphone(wave, rate, rng, low_hz=rng.uniform(80, 300), high_hz=rng.uniform(4000, 7000),
                          level_dbfs=-26.0 + rng.uniform(-30, 20), noise_floor_db=rng.uniform(-90, -70))
    raise ValueError(f"Unknown channel {kind!r}; expected one of {', '.join(CHANNELS)}.")


# ---------------------------------------------------------------- log-mel domain
def speech_span(db: torch.Tensor, range_db: float = 30.0) -> tuple[int, int]:
    """First and last frame within `range_db` of the utterance's loudest frame (where the speech is)."""
    energy = torch.logsumexp(db * (math.log(10) / 10), dim=0) * (10 / math.log(10))  # frame power in dB
    active = torch.nonzero(energy > energy.max() - range_db).flatten()
    if active.numel() == 0:
        return 0, db.shape[1]
    return int(active[0]), int(active[-1]) + 1


def warp_crop(db: torch.Tensor, span: tuple[int, int], frames: int, tempo: float, shift: float,
              rng: np.random.Generator) -> torch.Tensor:
    """A crop of `frames * tempo` frames centred inside the speech span, resampled to `frames` frames and shifted
    by `shift` mel bins (tempo and pitch perturbation). Short utterances are padded with their quietest value."""
    m, t = db.shape
    length = max(2, int(round(frames * tempo)))
    if t < length:
        db = torch.nn.functional.pad(db, (0, length - t), value=float(db.min()))
        t = length
    centre = int(rng.integers(span[0], max(span[0] + 1, span[1])))
    start = int(np.clip(centre - length // 2, 0, t - length))
    crop = db[:, start:start + length]
    if length == frames and shift == 0.0:
        return crop
    xs = torch.linspace(-1, 1, frames)
    ys = torch.linspace(-1, 1, m) - 2 * shift / max(1, m - 1)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1).unsqueeze(0)
    return torch.nn.functional.grid_sample(crop[None, None], grid, mode="bilinear", padding_mode="border",
                                           align_corners=True)[0, 0]


def random_warp(db: torch.Tensor, span: tuple[int, int], frames: int, cfg: AugmentConfig,
                rng: np.random.Generator) -> torch.Tensor:
    """warp_crop with a random tempo and pitch shift, each with probability cfg.warp_p."""
    tempo = rng.uniform(1 - cfg.tempo, 1 + cfg.tempo) if rng.random() < cfg.warp_p else 1.0
    shift = rng.uniform(-cfg.pitch_bins, cfg.pitch_bins) if rng.random() < cfg.warp_p else 0.0
    return warp_crop(db, span, frames, tempo, shift, rng)


def add_noise_and_reverb(db: torch.Tensor, cfg: AugmentConfig, hop_s: float, noise_shape: torch.Tensor,
                         dof: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Reverberation (exponential smearing of power over time) and coloured noise at a random SNR, per sample."""
    power = torch.pow(10.0, db / 10.0)  # [B, M, T]
    b, m, t = power.shape
    for i in range(b):
        if rng.random() < cfg.reverb_p:
            rt60 = rng.uniform(*cfg.rt60_s)
            k = torch.arange(max(1, int(min(rt60, 0.6) / hop_s)))
            kernel = torch.exp(-6.9 * k * hop_s / rt60) * float(rng.uniform(0.2, 1.0))
            kernel[0] = 1.0
            padded = torch.nn.functional.pad(power[i:i + 1], (len(k) - 1, 0))
            power[i] = torch.nn.functional.conv1d(padded.transpose(0, 1), kernel.flip(0)[None, None]).transpose(0, 1)[0]
        if rng.random() < cfg.noise_p:
            colour = noise_shape[int(rng.integers(0, len(noise_shape)))]  # [M]
            level = power[i].mean() * 10 ** (-rng.uniform(*cfg.snr_db) / 10)
            fluctuation = torch.distributions.Gamma(dof, dof).sample((t,)).T  # per band: mean 1, chi-square-like
            power[i] = power[i] + level * colour[:, None] * fluctuation
    return 10.0 * torch.log10(power.clamp_min(1e-12))


def noise_colours(mel_basis: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mel-band power of white, pink and brown noise (each mean 1) and each band's degrees of freedom
    (how many FFT bins it averages, which sets how much noise power fluctuates frame to frame)."""
    basis = torch.from_numpy(np.asarray(mel_basis, np.float32))
    freqs = torch.arange(1, basis.shape[1] + 1, dtype=torch.float32)
    shapes = torch.stack([basis @ freqs.pow(-e) for e in (0.0, 1.0, 2.0)])
    dof = (basis.sum(1) ** 2 / (basis.square().sum(1) + 1e-12)).clamp(1.0, 50.0)
    return shapes / shapes.mean(dim=1, keepdim=True), dof


def random_eq(db: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Add a smooth random spectral tilt/colour (microphone and room) to a dB mel spectrogram [B, M, T]."""
    b, m, _ = db.shape
    pos = torch.linspace(0, math.pi, m)
    curve = torch.zeros(b, m)
    for k in (1, 2, 3):
        curve += torch.from_numpy(rng.uniform(-1, 1, (b, 1)).astype(np.float32)) * torch.cos(k * pos)
    on = torch.from_numpy((rng.random((b, 1)) < cfg.eq_p).astype(np.float32))
    return db + (curve / 3 * cfg.eq_db * on).unsqueeze(-1)


def spec_augment(x: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Frequency and time masks (set to 0, the normalised features' mean) on model inputs [B, 1, M, T]."""
    x = x.clone()
    b, _, m, t = x.shape
    for i in range(b):
        for _ in range(cfg.freq_masks):
            w = rng.integers(0, cfg.freq_mask + 1)
            f0 = rng.integers(0, m - w + 1)
            x[i, :, f0:f0 + w, :] = 0.0
        for _ in range(cfg.time_masks):
            w = rng.integers(0, cfg.time_mask + 1)
            t0 = rng.integers(0, t - w + 1)
            x[i, :, :, t0:t0 + w] = 0.0
    return x


def mixup(x: torch.Tensor, target: torch.Tensor, cfg: AugmentConfig,
          rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability cfg.mixup_p, blend the batch with a permutation of itself (inputs and soft targets)."""
    if rng.random() >= cfg.mixup_p:
        return x, target
    lam = float(rng.beta(cfg.mixup_alpha, cfg.mixup_alpha))
    perm = torch.from_numpy(rng.permutation(len(x)))
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]
