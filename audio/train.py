"""Train the speech-emotion CNN on a corpus split by speaker (default RAVDESS: train 01-14, validate 15-16,
test 17-20 never seen), with augmentation aimed at new speakers, rooms and microphones.

Run: `affect train audio` (also under torchrun: `torchrun ... -m affect_sdk.cli train audio`). Writes checkpoints,
log.jsonl, model.json and best.safetensors (best validation accuracy, utterance level) into --out: the vision
recipe's run-folder layout.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from affect_sdk.audio.data import WaveCache, build_cache, load_cache, speaker_key
from affect_sdk.audio.features import (FeatureConfig, VadConfig, active_fraction, log_mel, model_input,
                                       normalize_level, window_bounds)
from affect_sdk.audio.nets import create_speech_cnn
from affect_sdk.errors import InputError
from affect_sdk.labels import NUM_CLASSES
from affect_sdk.metrics import classification_report
from affect_sdk.registry import get_spec, speech_windows
from affect_sdk.training import all_reduce_mean, export_weights, init_distributed, load_checkpoint, lr_at, \
    save_checkpoint, seed_everything, unwrap, wrap_model, write_replica_digest


SHIPPED = "speech-cnn"  # the registered model this recipe trains
SPEECH_FACTORY = "affect_sdk.audio.nets:create_speech_cnn"


@dataclass
class TrainConfig:
    data: str = "../shared/data/ravdess_speech"
    cache: str = ""  # decoded-waveform cache; default .cache/<data folder name>_16k.npz
    out: str = "runs/speech-cnn"
    val_speakers: tuple[str, ...] = ("15", "16")
    test_speakers: tuple[str, ...] = ("17", "18", "19", "20")  # never used for training or selection
    seed: int = 0
    steps: int = 4000
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup: float = 0.05
    label_smoothing: float = 0.05
    # windows, features and network of the shipped model's registry entry, the one place they are written
    window_s: float = field(default_factory=lambda: speech_windows(SHIPPED).window_s)
    hop_s: float = field(default_factory=lambda: speech_windows(SHIPPED).hop_s)
    kind: str = field(default_factory=lambda: get_spec(SHIPPED).arch["kind"])  # '1d' (temporal CNN) or '2d'
    channels: tuple[int, ...] = field(default_factory=lambda: tuple(get_spec(SHIPPED).arch["channels"]))
    dropout: float = 0.3
    tempo: float = 0.15  # tempo perturbation range +-
    pitch_bins: float = 2.0  # pitch perturbation range +- in mel bins
    noise_p: float = 0.4
    snr_db: tuple[float, float] = (5.0, 35.0)
    reverb_p: float = 0.3
    eq_p: float = 0.5
    eq_db: float = 6.0
    freq_masks: int = 2
    freq_mask: int = 8
    time_masks: int = 2
    time_mask: int = 25
    mixup_p: float = 0.4
    mixup_alpha: float = 0.4
    eval_every: int = 250
    threads: int = 1
    device: str | None = None  # cpu, cuda or auto (None): affect_sdk.device.resolve_device
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig.from_dict(get_spec(SHIPPED).preprocess))


# ---------------------------------------------------------------- augmentation (in the mel-power domain)
# Each utterance's clean log-mel is computed once; augmentation works on it directly (crop, tempo and pitch
# warps, additive noise and reverberation in the power domain, microphone colour), several times cheaper on a CPU
# than re-synthesising waveforms. With center=False, a crop on frame boundaries equals the features of that window.
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


def add_noise_and_reverb(db: torch.Tensor, cfg: TrainConfig, noise_shape: torch.Tensor, dof: torch.Tensor,
                         rng: np.random.Generator) -> torch.Tensor:
    """Reverberation (exponential smearing of power over time) and coloured noise at a random SNR, per sample."""
    power = torch.pow(10.0, db / 10.0)  # [B, M, T]
    b, m, t = power.shape
    hop_s = cfg.features.hop_length / cfg.features.sample_rate
    for i in range(b):
        if rng.random() < cfg.reverb_p:
            rt60 = rng.uniform(0.2, 0.9)
            k = torch.arange(int(min(rt60, 0.6) / hop_s))
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


def noise_colours(cfg: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Mel-band power of white, pink and brown noise (each mean 1) and each band's degrees of freedom
    (how many FFT bins it averages, which sets how much noise power fluctuates frame to frame)."""
    import librosa

    basis = torch.from_numpy(librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                                                 fmin=cfg.fmin, fmax=cfg.fmax).astype(np.float32))
    freqs = torch.arange(1, basis.shape[1] + 1, dtype=torch.float32)
    shapes = torch.stack([basis @ freqs.pow(-e) for e in (0.0, 1.0, 2.0)])
    dof = (basis.sum(1) ** 2 / (basis.square().sum(1) + 1e-12)).clamp(1.0, 50.0)
    return shapes / shapes.mean(dim=1, keepdim=True), dof


def random_eq(db: torch.Tensor, cfg: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Add a smooth random spectral tilt/colour (microphone and room) to a dB mel spectrogram [B, M, T]."""
    b, m, _ = db.shape
    pos = torch.linspace(0, math.pi, m)
    curve = torch.zeros(b, m)
    for k in (1, 2, 3):
        curve += torch.from_numpy(rng.uniform(-1, 1, (b, 1)).astype(np.float32)) * torch.cos(k * pos)
    on = torch.from_numpy((rng.random((b, 1)) < cfg.eq_p).astype(np.float32))
    return db + (curve / 3 * cfg.eq_db * on).unsqueeze(-1)


def spec_augment(x: torch.Tensor, cfg: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
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


# ---------------------------------------------------------------- utterance-level evaluation
def window_inputs(wave: np.ndarray, cfg: FeatureConfig, window: int, hop: int) -> tuple[torch.Tensor, np.ndarray]:
    """Model inputs of all analysis windows of a clip (short windows zero padded) and which are voiced."""
    bounds = window_bounds(len(wave), window, hop)
    chunks = np.stack([np.pad(wave[s:e], (0, window - (e - s))) for s, e in bounds])
    voiced = np.array([active_fraction(wave[s:e]) >= VadConfig().min_active for s, e in bounds])
    return torch.from_numpy(model_input(chunks, cfg)), voiced


def aggregate(probs: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Utterance probabilities: mean over voiced windows (all windows when none is voiced)."""
    chosen = probs[voiced] if voiced.any() else probs
    return chosen.mean(axis=0)


@torch.inference_mode()
def evaluate_cache(model: torch.nn.Module, cache: WaveCache, indices: np.ndarray, cfg: TrainConfig) -> dict:
    model.eval()
    rate = cfg.features.sample_rate
    window, hop = int(cfg.window_s * rate), int(cfg.hop_s * rate)
    utterance_probs = []
    device = next(model.parameters()).device
    for i in indices:
        x, voiced = window_inputs(cache.wave(i), cfg.features, window, hop)
        probs = torch.softmax(model(x.to(device))[0], dim=-1).cpu().numpy()
        utterance_probs.append(aggregate(probs, voiced))
    return classification_report(cache.labels[indices], np.asarray(utterance_probs).reshape(-1, NUM_CLASSES))


# ---------------------------------------------------------------- training loop
def _indices(cache: WaveCache, speakers) -> np.ndarray:
    keys = {speaker_key(s) for s in speakers}
    return np.array([i for i, s in enumerate(cache.speakers) if speaker_key(s) in keys], int)


def train(cfg: TrainConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    """Train (resuming from out/last); `progress(step, steps)` is called after every step."""
    from affect_sdk.device import resolve_device

    torch.set_num_threads(cfg.threads)
    ctx = init_distributed(resolve_device(cfg.device))  # DeviceError when the device asked for is not there
    seed_everything(cfg.seed + ctx.rank)
    rng = np.random.default_rng(cfg.seed * 1000 + ctx.rank)
    out = Path(cfg.out)
    cache_file = Path(cfg.cache or Path(".cache") / f"{Path(cfg.data).resolve().name}_16k.npz")
    cache = load_cache(cache_file) if cache_file.is_file() else build_cache(cfg.data, cache_file)
    all_speakers = sorted(set(cache.speakers.tolist()))
    held = {speaker_key(s) for s in (*cfg.val_speakers, *cfg.test_speakers)}
    train_speakers = [s for s in all_speakers if speaker_key(s) not in held]
    train_idx, val_idx = _indices(cache, train_speakers), _indices(cache, cfg.val_speakers)
    if len(train_idx) == 0:
        raise InputError(f"No training utterances left in {cfg.data} after holding out validation/test speakers.")
    mels = {int(i): torch.from_numpy(log_mel(cache.wave(i), cfg.features)) for i in train_idx}
    spans = {i: speech_span(db) for i, db in mels.items()}
    colours, dof = noise_colours(cfg.features)
    frames = 1 + (int(cfg.window_s * cfg.features.sample_rate) - cfg.features.n_fft) // cfg.features.hop_length
    present = sorted(set(cache.labels[train_idx].tolist()))

    model = wrap_model(create_speech_cnn(kind=cfg.kind, channels=tuple(cfg.channels), dropout=cfg.dropout), ctx)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_of(step: int) -> float:
        return lr_at(step, cfg.steps, cfg.lr, cfg.warmup)

    state = load_checkpoint(out / "last", model, optimizer) or {"step": 0, "best": -1.0, "best_step": -1}
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.json").write_text(json.dumps(run_meta(cfg), indent=2))
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        print(f"train {len(train_idx)} utterances of speakers {train_speakers}; validate {len(val_idx)} of "
              f"{list(cfg.val_speakers)}; test speakers {list(cfg.test_speakers)} unused; dropped duplicates "
              f"{cache.dropped.tolist()}", flush=True)
    smooth = torch.zeros(NUM_CLASSES)
    smooth[present] = 1.0 / len(present)
    t0, losses = time.time(), []
    while state["step"] < cfg.steps:
        model.train()
        pick = rng.choice(train_idx, cfg.batch)
        crops = []
        for i in pick:
            tempo = rng.uniform(1 - cfg.tempo, 1 + cfg.tempo) if rng.random() < 0.6 else 1.0
            shift = rng.uniform(-cfg.pitch_bins, cfg.pitch_bins) if rng.random() < 0.6 else 0.0
            crops.append(warp_crop(mels[int(i)], spans[int(i)], frames, tempo, shift, rng))
        db = random_eq(add_noise_and_reverb(torch.stack(crops), cfg, colours, dof, rng), cfg, rng)
        x = spec_augment(torch.from_numpy(normalize_level(db.numpy(), cfg.features.top_db)).unsqueeze(1), cfg, rng)
        target = F.one_hot(torch.from_numpy(cache.labels[pick]), NUM_CLASSES).float()
        target = (1 - cfg.label_smoothing) * target + cfg.label_smoothing * smooth
        if rng.random() < cfg.mixup_p:
            lam = float(rng.beta(cfg.mixup_alpha, cfg.mixup_alpha))
            perm = torch.from_numpy(rng.permutation(cfg.batch))
            x, target = lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]
        for group in optimizer.param_groups:
            group["lr"] = lr_of(state["step"])
        logits, _ = model(x.to(ctx.device))
        loss = -(target.to(ctx.device) * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["step"] += 1
        if progress is not None and ctx.is_main:
            progress(state["step"], cfg.steps)
        losses.append(loss.item())
        if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.steps:
            train_loss = all_reduce_mean(float(np.mean(losses)), ctx)
            losses = []
            if ctx.is_main:
                val = evaluate_cache(unwrap(model), cache, val_idx, cfg) if len(val_idx) else {"accuracy": 0.0,
                                                                                               "macro_f1": 0.0}
                record = {"step": state["step"], "loss": round(train_loss, 4), "val_accuracy": val["accuracy"],
                          "val_macro_f1": val["macro_f1"], "lr": round(lr_of(state["step"] - 1), 6),
                          "elapsed_s": round(time.time() - t0, 1)}
                if val["accuracy"] > state["best"]:
                    state["best"], state["best_step"] = val["accuracy"], state["step"]
                    export_weights(model, out / "best.safetensors")
                save_checkpoint(out / "last", model, optimizer, state)
                with (out / "log.jsonl").open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)
    write_replica_digest(model, ctx, out)
    return state


def run_meta(cfg: TrainConfig) -> dict:
    """The run folder's model.json (the vision recipe's layout): factory, arch, task and the preprocessing the
    weights expect, so `resolve_model(run folder)` and `affect eval audio --model RUN` read the run like a shipped
    model."""
    preprocess = {**asdict(cfg.features), "window_s": cfg.window_s, "hop_s": cfg.hop_s}
    return {"factory": SPEECH_FACTORY, "task": "speech", "preprocess": preprocess,
            "arch": {"kind": cfg.kind, "channels": list(cfg.channels), "dropout": cfg.dropout}}


def export_best(cfg: TrainConfig) -> tuple[Path, str]:
    """Copy the best-validation weights to OUT/speech-cnn.safetensors (loaded back once as a check); (path, sha256)."""
    from safetensors.torch import load_file

    from affect_sdk.registry import file_sha256

    best = Path(cfg.out) / "best.safetensors"
    if not best.is_file():
        raise InputError(f"No {best.name} in {best.parent}; train first.")
    model = create_speech_cnn(kind=cfg.kind, channels=tuple(cfg.channels), dropout=cfg.dropout)
    model.load_state_dict(load_file(str(best)))
    target = Path(cfg.out) / "speech-cnn.safetensors"
    shutil.copyfile(best, target)
    return target, file_sha256(target)


def merge_members(weights: list[Path], target: Path) -> str:
    """Combine several trained SpeechCNN weight files into one SpeechEnsemble file; returns its sha256."""
    from safetensors.torch import load_file, save_file

    from affect_sdk.registry import file_sha256

    merged = {f"members.{i}.{k}": v for i, w in enumerate(weights) for k, v in load_file(str(w)).items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(merged, str(target))
    return file_sha256(target)


if __name__ == "__main__":  # older notes run `python -m affect_sdk.audio.train`: the same as `affect train audio`
    import sys

    from affect_sdk.cli import main

    sys.argv = ["affect", "train", "audio", *sys.argv[1:]]
    main()
