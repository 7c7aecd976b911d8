"""Train the speech-emotion CNN on a corpus split by speaker (default RAVDESS: train 01-14, validate 15-16,
test 17-20 never seen), with augmentation aimed at new speakers, rooms, microphones and telephone lines
(affect_sdk.audio.augment).

Run: `affect train audio` (also under torchrun: `torchrun ... -m affect_sdk.cli train audio`). Writes checkpoints,
log.jsonl, model.json and best.safetensors (best validation score, utterance level) into --out: the vision
recipe's run-folder layout. `--init` warm-starts from a shipped model's member (fine-tuning).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from affect_sdk.audio.augment import (CHANNELS, AugmentConfig, add_noise_and_reverb, channel_copy, mixup,
                                      noise_colours, random_eq, random_warp, spec_augment, speech_span, telephone)
from affect_sdk.audio.data import WaveCache, build_cache, load_cache, speaker_key
from affect_sdk.audio.features import (FeatureConfig, VadConfig, band_keep, is_narrowband, is_voiced, log_mel,
                                       mel_basis, model_input, normalize_level, window_bounds)
from affect_sdk.audio.nets import create_speech_cnn
from affect_sdk.errors import InputError
from affect_sdk.labels import NUM_CLASSES
from affect_sdk.metrics import classification_report
from affect_sdk.registry import get_spec, speech_windows
from affect_sdk.training import (WeightAverage, all_reduce_mean, check_ema_decay, export_weights, init_distributed,
                                 load_checkpoint, lr_at, save_checkpoint, seed_everything, unwrap, wrap_model,
                                 write_replica_digest)


SHIPPED = "speech-cnn"  # the registered model this recipe trains
SPEECH_FACTORY = "affect_sdk.audio.nets:create_speech_cnn"
# validation score a checkpoint is chosen by ("last": a refit with nothing to choose by keeps its final step)
SELECT = ("clean", "clean+telephone", "last")


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
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    init: str = ""  # warm start: a registered model, a run folder or a .safetensors (one net or an ensemble)
    init_member: int = 0  # which member of an ensemble to start from
    select: str = "clean"  # "clean": validation accuracy; "clean+telephone": its mean with telephone-band copies
    eval_every: int = 250
    ema_decay: float = 0.0  # > 0: validate, select and export a moving average of the weights (per-step decay)
    threads: int = 1
    device: str | None = None  # cpu, cuda or auto (None): affect_sdk.device.resolve_device
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig.from_dict(get_spec(SHIPPED).preprocess))


# ---------------------------------------------------------------- utterance-level evaluation
def window_inputs(wave: np.ndarray, cfg: FeatureConfig, window: int, hop: int) -> tuple[torch.Tensor, np.ndarray]:
    """Model inputs of all analysis windows of a clip (short windows zero padded) and which are voiced."""
    bounds = window_bounds(len(wave), window, hop)
    chunks = np.stack([np.pad(wave[s:e], (0, window - (e - s))) for s, e in bounds])
    voiced = np.array([is_voiced(wave[s:e], VadConfig()) for s, e in bounds])
    return torch.from_numpy(model_input(chunks, cfg)), voiced


def aggregate(probs: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Utterance probabilities: mean over voiced windows (all windows when none is voiced)."""
    chosen = probs[voiced] if voiced.any() else probs
    return chosen.mean(axis=0)


@torch.inference_mode()
def evaluate_waves(model: torch.nn.Module, waves: list[np.ndarray], labels: np.ndarray, cfg: TrainConfig) -> dict:
    """Utterance-level report of a model on waveforms at the model rate."""
    model.eval()
    rate = cfg.features.sample_rate
    window, hop = int(cfg.window_s * rate), int(cfg.hop_s * rate)
    utterance_probs = []
    device = next(model.parameters()).device
    for wave in waves:
        x, voiced = window_inputs(wave, cfg.features, window, hop)
        probs = torch.softmax(model(x.to(device))[0], dim=-1).cpu().numpy()
        utterance_probs.append(aggregate(probs, voiced))
    return classification_report(labels, np.asarray(utterance_probs).reshape(-1, NUM_CLASSES))


def evaluate_cache(model: torch.nn.Module, cache: WaveCache, indices: np.ndarray, cfg: TrainConfig) -> dict:
    return evaluate_waves(model, [cache.wave(i) for i in indices], cache.labels[indices], cfg)


def telephone_copy(wave: np.ndarray, rate: int) -> np.ndarray:
    """The fixed telephone condition of validation and the cross-condition checks: 8 kHz, 300-3400 Hz, mu-law."""
    return telephone(wave, rate, low_hz=300.0, high_hz=3400.0, codec=True)


# ---------------------------------------------------------------- warm start and channel copies
def initial_weights(ref: str, member: int = 0) -> dict[str, torch.Tensor]:
    """One network's weights from a registered model, a run folder or a .safetensors file (member `member` of
    an ensemble)."""
    from safetensors.torch import load_file

    from affect_sdk.registry import load_state_dict

    path = Path(ref)
    if (path / "best.safetensors").is_file():
        path = path / "best.safetensors"
    state = load_file(str(path)) if path.is_file() else load_state_dict(ref)
    prefix = f"members.{member}."
    if any(k.startswith("members.") for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise InputError(f"{ref} has no ensemble member {member}.")
    return state


def channel_mels(cache: WaveCache, indices: np.ndarray, cfg: TrainConfig, seed: int
                 ) -> dict[str, tuple[dict[int, torch.Tensor], dict[int, tuple[int, int]], dict[int, bool]]]:
    """Per channel used (CHANNELS with a non-zero chance): each training utterance's log-mel through one random
    realisation of that channel, its speech span and whether it is narrowband. Made once, before step 0."""
    weights = cfg.augment.channel_weights()
    out = {}
    for k, kind in enumerate(CHANNELS):
        if weights[k] <= 0:
            continue
        rng = np.random.default_rng([seed, k])
        mels = {int(i): torch.from_numpy(log_mel(channel_copy(kind, cache.wave(i), cfg.features.sample_rate, rng),
                                                 cfg.features)) for i in indices}
        out[kind] = (mels, {i: speech_span(db) for i, db in mels.items()},
                     {i: bool(is_narrowband(db.numpy(), cfg.features)) for i, db in mels.items()})
    return out


def training_batch(pick: np.ndarray, copies: dict, frames: int, cfg: TrainConfig, colours: torch.Tensor,
                   dof: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Model inputs [B, 1, M, T] of one augmented batch: a channel copy per utterance, a warped crop, reverb and
    noise, tilt, level normalisation (over the signal's band: narrowband crops get their upper bands masked as at
    inference), SpecAugment."""
    aug, feats = cfg.augment, cfg.features
    kinds = list(copies)
    p = np.array([aug.channel_weights()[CHANNELS.index(k)] for k in kinds])
    crops, narrow = [], []
    for i, k in zip(pick, rng.choice(len(kinds), size=len(pick), p=p / p.sum())):
        mels, spans, narrows = copies[kinds[k]]
        crops.append(random_warp(mels[int(i)], spans[int(i)], frames, aug, rng))
        narrow.append(narrows[int(i)])
    hop_s = feats.hop_length / feats.sample_rate
    db = random_eq(add_noise_and_reverb(torch.stack(crops), aug, hop_s, colours, dof, rng), aug, rng)
    keep = band_keep(np.array(narrow), feats) if feats.narrowband_mask else None
    inputs = normalize_level(db.numpy(), feats.top_db, keep, feats.band_norm)
    return spec_augment(torch.from_numpy(inputs).unsqueeze(1), aug, rng)


# ---------------------------------------------------------------- training loop
def _indices(cache: WaveCache, speakers) -> np.ndarray:
    keys = {speaker_key(s) for s in speakers}
    return np.array([i for i, s in enumerate(cache.speakers) if speaker_key(s) in keys], int)


def train(cfg: TrainConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    """Train (resuming from out/last); `progress(step, steps)` is called after every step."""
    from affect_sdk.device import resolve_device

    check_ema_decay(cfg.ema_decay)  # before minutes of decoding and channel copies
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
    if cfg.select not in SELECT:
        raise InputError(f"select must be one of {', '.join(SELECT)}; got {cfg.select!r}.")
    copies = channel_mels(cache, train_idx, cfg, cfg.seed)
    colours, dof = noise_colours(mel_basis(cfg.features))
    val_waves = [cache.wave(i) for i in val_idx]
    by_phone = cfg.select == "clean+telephone"
    val_phone = [telephone_copy(w, cfg.features.sample_rate) for w in val_waves] if by_phone else []
    frames = 1 + (int(cfg.window_s * cfg.features.sample_rate) - cfg.features.n_fft) // cfg.features.hop_length
    present = sorted(set(cache.labels[train_idx].tolist()))

    net = create_speech_cnn(kind=cfg.kind, channels=tuple(cfg.channels), dropout=cfg.dropout)
    if cfg.init:
        net.load_state_dict(initial_weights(cfg.init, cfg.init_member))
    model = wrap_model(net, ctx)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_of(step: int) -> float:
        return lr_at(step, cfg.steps, cfg.lr, cfg.warmup)

    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    state = load_checkpoint(out / "last", model, optimizer, average) or {"step": 0, "best": -1.0, "best_step": -1}
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
        x = training_batch(pick, copies, frames, cfg, colours, dof, rng)
        target = F.one_hot(torch.from_numpy(cache.labels[pick]), NUM_CLASSES).float()
        target = (1 - cfg.label_smoothing) * target + cfg.label_smoothing * smooth
        x, target = mixup(x, target, cfg.augment, rng)
        for group in optimizer.param_groups:
            group["lr"] = lr_of(state["step"])
        logits, _ = model(x.to(ctx.device))
        loss = -(target.to(ctx.device) * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if average is not None:
            average.update(model)
        state["step"] += 1
        if progress is not None and ctx.is_main:
            progress(state["step"], cfg.steps)
        losses.append(loss.item())
        if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.steps:
            train_loss = all_reduce_mean(float(np.mean(losses)), ctx)
            losses = []
            if ctx.is_main:
                scored = average.model if average is not None else unwrap(model)
                val = evaluate_waves(scored, val_waves, cache.labels[val_idx], cfg) if len(val_idx) else \
                    {"accuracy": 0.0, "macro_f1": 0.0}
                record = {"step": state["step"], "loss": round(train_loss, 4), "val_accuracy": val["accuracy"],
                          "val_macro_f1": val["macro_f1"], "lr": round(lr_of(state["step"] - 1), 6),
                          "elapsed_s": round(time.time() - t0, 1)}
                score = val["accuracy"]
                if val_phone:
                    phone = evaluate_waves(scored, val_phone, cache.labels[val_idx], cfg)
                    record["val_telephone_accuracy"] = phone["accuracy"]
                    score = (val["accuracy"] + phone["accuracy"]) / 2
                if average is not None and len(val_idx):  # the raw weights too, to see what the average adds
                    record["val_accuracy_raw"] = evaluate_waves(unwrap(model), val_waves, cache.labels[val_idx],
                                                                cfg)["accuracy"]
                if cfg.select == "last":  # a refit on every speaker but the test ones keeps its final step
                    score = float(state["step"])
                record["val_score"] = round(score, 4)
                if score > state["best"]:
                    state["best"], state["best_step"] = score, state["step"]
                    export_weights(scored, out / "best.safetensors")
                save_checkpoint(out / "last", model, optimizer, state, average)
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
