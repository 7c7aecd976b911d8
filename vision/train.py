"""Training of the face teacher and the face student (with eq. 1-3 distillation or without), one short loop.

Data live in memory as uint8 (FER+ through a npz cache); augmentation runs batched on the training device.
Checkpoints every epoch under `out/last/`, best-on-FER+-Valid weights in `out/best.safetensors`; resumable
(same command again) and deterministic for a seed. Runs as one process or under torchrun (DDP).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affect_sdk.errors import InputError
from affect_sdk.registry import get_spec
from affect_sdk.training import (WeightAverage, all_reduce_mean, check_ema_decay, init_distributed, load_checkpoint,
                                 lr_at, save_checkpoint, seed_everything, shard_indices, unwrap, wrap_model,
                                 write_replica_digest)
from affect_sdk.vision.augment import MIX_MODES, AugmentConfig, augment_batch, mix_batch, webcam_augment
from affect_sdk.vision.data import cached_ferplus, read_ferplus, to_input
from affect_sdk.vision.distill import DistillConfig, soft_cross_entropy, student_loss
from affect_sdk.vision.teachers import TeacherFn, load_teacher_ensemble

TEACHER_FACTORY = "affect_sdk.vision.nets:create_teacher"
STUDENT_FACTORY = "affect_sdk.vision.nets:create_student"
# Either net can fill either role: on a CPU the ResNet trains about 3x faster than the depthwise MobileNetV2.
NET_FACTORIES = {"resnet": TEACHER_FACTORY, "mobilenetv2": STUDENT_FACTORY}
# Without --net and --arch a role builds what its shipped model is (its registry entry, the one place it is
# written): CPU-sized, what fits a shared 2-core machine; the model cards give the GPU settings.
SHIPPED_BY_ROLE = {"teacher": "face-teacher", "student": "face-student"}


@dataclass
class TrainConfig:
    role: str = "student"  # "teacher" or "student"
    data: str = "../shared/data/ferplus"
    out: str = "runs/vision-student"
    cache_dir: str | None = ".cache"
    net: str = ""  # "resnet" or "mobilenetv2"; empty: the role's (teacher: resnet, student: mobilenetv2)
    arch: dict[str, Any] = field(default_factory=dict)  # factory kwargs; empty -> the role's default
    input_size: int = 48
    epochs: int = 8
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    seed: int = 0
    device: str | None = None
    threads: int | None = 1  # torch CPU threads; None leaves torch's default
    precision: str = "fp32"  # "bf16": autocast (about 2x for the ResNet teachers on AVX-512 BF16 CPUs; not for
    # the depthwise student, which it slows down)
    init: str | None = None  # warm start: a run dir, a registered model or a .safetensors of the same architecture
    teacher: str | None = None  # None: no KD. Comma-separated for an ensemble (logits and V/A averaged); each a
    # run dir, a registry name, .pt/.ts (TorchScript), .onnx, .pt2 or module:factory
    teacher_input_size: int = 48
    kd_targets: str = "cached"  # "cached": teacher outputs of each image (and its mirror), once; "online": every batch
    kd_mirrors: bool = True  # cached mode: also run the teacher on mirrored images (else mirrors reuse the plain view)
    distill: DistillConfig = field(default_factory=DistillConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    augment_preset: str = "fer"  # "fer": FER2013-style jitter only; "webcam": plus blur, noise, JPEG, gamma, low-res
    mix: str = "none"  # "mixup" or "cutmix" between images of a batch, targets mixed alike (vision.augment.mix_batch)
    mix_p: float = 0.5  # share of the images that are mixed
    mix_alpha: float = 1.0  # lambda ~ Beta(alpha, alpha)
    occlude_p: float = 0.0  # > 0: share of faces with the mouth or the eyes covered (vision.augment.occlude_half)
    lowres_p: float | None = None  # share of faces shrunk to 14-32 px and back (None: the preset's, webcam 0.15)
    ema_decay: float = 0.0  # > 0: validate, select and export a moving average of the weights (per-step decay)
    limit: int | None = None  # use only the first N training images (smoke tests)
    log_every: int = 50

    @property
    def factory(self) -> str:
        if not self.net:
            return get_spec(SHIPPED_BY_ROLE.get(self.role, "face-student")).factory
        if self.net not in NET_FACTORIES:
            raise InputError(f"Unknown net {self.net!r}; expected one of {', '.join(NET_FACTORIES)}.")
        return NET_FACTORIES[self.net]

    @property
    def resolved_augment(self) -> AugmentConfig:
        if self.augment_preset not in ("fer", "webcam"):
            raise InputError(f"Unknown augmentation preset {self.augment_preset!r}; expected 'fer' or 'webcam'.")
        augment = webcam_augment() if self.augment_preset == "webcam" else self.augment
        from dataclasses import replace

        if self.occlude_p:
            augment = replace(augment, half_occlusion_prob=self.occlude_p)
        if self.lowres_p is not None:
            augment = replace(augment, lowres_prob=self.lowres_p)
        return augment

    @property
    def resolved_arch(self) -> dict[str, Any]:
        """--arch; else the arch of the role's shipped model when it is this net, else of a shipped model that
        is (the factory's own defaults when none is)."""
        if self.arch:
            return dict(self.arch)
        from affect_sdk.registry import list_models

        shipped = [get_spec(SHIPPED_BY_ROLE.get(self.role, "face-student"))] + list_models("face")
        return dict(next((spec.arch for spec in shipped if spec.factory == self.factory), {}))


# ---------------------------------------------------------------- teachers
def warm_start(model: torch.nn.Module, ref: str) -> str:
    """Load the weights of a run dir, a registered model or a .safetensors file into `model`: the same
    architecture, or a ResNet of the same widths with fewer blocks per stage (deepened: vision.nets.deepen_teacher).
    Returns how it was loaded, for the log."""
    from safetensors.torch import load_file

    from affect_sdk.registry import _REGISTRY, get_spec, verified_path
    from affect_sdk.vision.nets import Teacher, deepen_teacher

    path, arch = Path(ref), {}
    if path.is_dir():
        path, meta = path / "best.safetensors", path / "model.json"
        arch = json.loads(meta.read_text()).get("arch", {}) if meta.is_file() else {}
    elif ref in _REGISTRY:
        path, arch = verified_path(ref), get_spec(ref).arch
    if not path.is_file():
        raise InputError(f"--init {ref}: no such run folder, registered model or .safetensors file.")
    state = load_file(str(path))
    try:
        model.load_state_dict(state)
        return f"warm start from {ref}"
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0]
    depths = tuple(arch.get("depths", ()))
    if isinstance(model, Teacher) and depths and depths != model.depths:
        try:
            added = deepen_teacher(model, state, depths)
            return f"warm start from {ref}, deepened from blocks per stage {list(depths)}: {len(added)} identity " \
                   f"blocks added ({', '.join(added)})"
        except (ValueError, RuntimeError) as exc:
            reason = str(exc).splitlines()[0]
    raise InputError(f"--init {ref} does not fit this architecture: {reason}")


@torch.no_grad()
def teacher_outputs(teacher: TeacherFn, images: np.ndarray, size: int, device: torch.device,
                    mirrors: bool = True, batch: int = 256) -> np.ndarray:
    """Teacher (logits, va) of each image and of its mirror: float32 [N, 2 (plain, mirrored), 10].

    With mirrors=False the mirrored slot repeats the plain view (emotion is mirror-invariant), halving the cost.
    """
    out = np.zeros((len(images), 2, 10), dtype=np.float32)
    for start in range(0, len(images), batch):
        x = to_input(images[start:start + batch], size, device)
        views = (x, torch.flip(x, dims=[3])) if mirrors else (x,)
        for k, view in enumerate(views):
            logits, va = teacher(view)
            out[start:start + batch, k] = torch.cat([logits, va], 1).cpu().numpy()
        if not mirrors:
            out[start:start + batch, 1] = out[start:start + batch, 0]
    return out


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_images(model: torch.nn.Module, images: np.ndarray, size: int, device: torch.device,
                   batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities [N, 8] and V/A [N, 2] of a grayscale uint8 batch."""
    model.eval()
    probs, vas = [], []
    for start in range(0, len(images), batch):
        logits, va = model(to_input(images[start:start + batch], size, device))
        probs.append(torch.softmax(logits.float(), 1).cpu().numpy())
        vas.append(va.float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(vas)


# ---------------------------------------------------------------- training
def _clock(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _log(ctx, message: str) -> None:
    if ctx.is_main:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def train(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) one run; returns the final state (best FER+ Valid accuracy, history, paths)."""
    from affect_sdk.device import resolve_device
    from affect_sdk.registry import resolve_factory

    if cfg.role not in ("teacher", "student"):
        raise InputError(f"Unknown role {cfg.role!r}; expected 'teacher' or 'student'.")
    if cfg.mix not in MIX_MODES:
        raise InputError(f"Unknown --mix {cfg.mix!r}; expected one of {', '.join(MIX_MODES)}.")
    for option, share in (("--occlude", cfg.occlude_p), ("--lowres", cfg.lowres_p), ("--mix-p", cfg.mix_p)):
        if share is not None and not 0.0 <= share <= 1.0:
            raise InputError(f"{option} must be a share of the faces between 0 and 1, not {share}.")
    check_ema_decay(cfg.ema_decay)
    if cfg.kd_targets not in ("cached", "online"):
        raise InputError(f"Unknown --kd-targets {cfg.kd_targets!r}; expected 'cached' or 'online'.")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx = init_distributed(resolve_device(cfg.device))
    device = ctx.device
    out = Path(cfg.out)
    seed_everything(cfg.seed)

    if cfg.limit:  # smoke runs: decode only the first images, no cache
        train_set = read_ferplus(cfg.data, "train", limit=cfg.limit)
        valid_set = read_ferplus(cfg.data, "valid", limit=cfg.limit)
    else:
        train_set = cached_ferplus(cfg.data, "train", cfg.cache_dir)
        valid_set = cached_ferplus(cfg.data, "valid", cfg.cache_dir)
    images = torch.from_numpy(train_set.images)  # uint8 [N, 48, 48]
    soft = torch.from_numpy(train_set.soft)
    va_target = torch.from_numpy(train_set.va_targets.astype(np.float32))

    arch = cfg.resolved_arch
    model = resolve_factory(cfg.factory)(**arch)
    if cfg.precision not in ("fp32", "bf16"):
        raise InputError(f"Unknown precision {cfg.precision!r}; expected 'fp32' or 'bf16'.")
    augment = cfg.resolved_augment
    if cfg.init and not (out / "last" / "state.json").is_file():
        _log(ctx, warm_start(model, cfg.init))
    meta = {"factory": cfg.factory, "arch": arch, "input_size": cfg.input_size, "role": cfg.role,
            "va_targets": "derived from FER+ vote distributions via affect_sdk.labels.CLASS_VA"
            if train_set.va_derived else "dataset labels"}
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.json").write_text(json.dumps(meta, indent=2))
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
    # channels_last roughly doubles CPU training throughput of these small convnets (oneDNN's NHWC kernels).
    model = wrap_model(model.to(memory_format=torch.channels_last), ctx)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)

    teacher: TeacherFn | None = None
    cached_kd: torch.Tensor | None = None
    if cfg.role == "student" and cfg.teacher:
        teacher = load_teacher_ensemble(cfg.teacher, device)
        if cfg.kd_targets == "cached":
            cache = out / "teacher_outputs.npy"
            if cache.is_file():
                cached_kd = torch.from_numpy(np.load(cache))
            else:
                views = "images and their mirrors" if cfg.kd_mirrors else "images (mirrors reuse them)"
                _log(ctx, f"teacher outputs for {len(train_set)} {views} ...")
                arr = teacher_outputs(teacher, train_set.images, cfg.teacher_input_size, device, cfg.kd_mirrors)
                if ctx.is_main:
                    np.save(cache, arr)
                cached_kd = torch.from_numpy(arr)
            teacher_acc = float((cached_kd[:, 0, :8].argmax(1).numpy() == train_set.labels).mean())
            _log(ctx, f"teacher train accuracy (plain views) {teacher_acc:.4f}")

    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    state = load_checkpoint(out / "last", model, optimizer, average) or {"epoch": 0, "step": 0, "best_valid": -1.0,
                                                                 "history": []}
    if state["epoch"]:
        _log(ctx, f"resuming after epoch {state['epoch']} (best valid {state['best_valid']:.4f})")
    steps_per_epoch = len(shard_indices(len(train_set), 0, cfg.seed, ctx)) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    _log(ctx, f"{cfg.role}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, "
              f"{len(train_set)} train / {len(valid_set)} valid images, {cfg.epochs} epochs x {steps_per_epoch} "
              f"steps, batch {cfg.batch_size} x {ctx.world_size}, device {device}, kd={'yes' if teacher else 'no'}")

    bar = None
    if progress and ctx.is_main:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        # on stderr, as every progress bar of the CLI: stdout carries the run's JSON result
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       TextColumn("{task.fields[info]}"), transient=True, console=Console(stderr=True))
        bar.start()
    try:
        for epoch in range(state["epoch"], cfg.epochs):
            model.train()
            torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout: a resumed run repeats an uninterrupted one
            generator = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            order = torch.from_numpy(shard_indices(len(train_set), epoch, cfg.seed, ctx))
            task = bar.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps_per_epoch, info="") if bar else None
            started, running = time.time(), 0.0
            for i in range(steps_per_epoch):
                idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                x = to_input(images[idx], 48, device)
                x, flips = augment_batch(x, augment, generator, size=cfg.input_size)
                y, y_va = soft[idx].to(device), va_target[idx].to(device)
                # cached teacher outputs are per image (and mirror), so they are picked before any mixing
                t_cached = cached_kd[idx, flips.cpu().long()].to(device) if cached_kd is not None else None
                if cfg.mix != "none":
                    targets = [y, y_va] + ([t_cached] if t_cached is not None else [])
                    x, targets = mix_batch(x, targets, generator, cfg.mix, cfg.mix_p, cfg.mix_alpha)
                    y, y_va, t_cached = targets[0], targets[1], (targets[2] if t_cached is not None else None)
                x = x.contiguous(memory_format=torch.channels_last)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(state["step"], total, cfg.lr, cfg.warmup_frac)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    outputs = model(x)
                outputs = (outputs[0].float(), outputs[1].float())
                if cfg.role == "teacher" or teacher is None:
                    loss = student_loss(outputs, None, y, y_va, cfg.distill)
                else:
                    if t_cached is not None:
                        t_out = (t_cached[:, :8], t_cached[:, 8:])
                    else:
                        t_in = x if cfg.teacher_input_size == cfg.input_size else torch.nn.functional.interpolate(
                            x, size=(cfg.teacher_input_size,) * 2, mode="bilinear", align_corners=False)
                        t_out = teacher(t_in)
                    loss = student_loss(outputs, t_out, y, y_va, cfg.distill)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                if average is not None:
                    average.update(model)
                state["step"] += 1
                running = 0.98 * running + 0.02 * loss.item() if i else loss.item()
                if bar:
                    bar.update(task, advance=1, info=f"loss {running:.3f}")
                if (i + 1) % cfg.log_every == 0:
                    elapsed = time.time() - started
                    rate = (i + 1) * cfg.batch_size * ctx.world_size / elapsed
                    left = (total - state["step"]) * elapsed / (i + 1)
                    _log(ctx, f"epoch {epoch + 1} step {i + 1}/{steps_per_epoch} loss {running:.4f} "
                              f"lr {optimizer.param_groups[0]['lr']:.2e} {rate:.0f} img/s, ETA {_clock(left)}")
            if bar:
                bar.remove_task(task)
            scored = average.model if average is not None else unwrap(model)
            probs, va = predict_images(scored, valid_set.images, cfg.input_size, device)
            valid_acc = float((probs.argmax(1) == valid_set.labels).mean())
            raw_note = ""
            if average is not None:  # the raw weights too, to see what the average adds
                raw_probs, _ = predict_images(unwrap(model), valid_set.images, cfg.input_size, device)
                raw_acc = float((raw_probs.argmax(1) == valid_set.labels).mean())
                raw_note = f", raw weights {raw_acc:.4f}"
            valid_ce = float(soft_cross_entropy(torch.from_numpy(np.log(probs + 1e-8)),
                                                torch.from_numpy(valid_set.soft)))
            valid_acc = all_reduce_mean(valid_acc, ctx)
            state["epoch"] = epoch + 1
            state["history"].append({"epoch": epoch + 1, "loss": running, "valid_accuracy": valid_acc,
                                     "valid_ce": valid_ce, "seconds": round(time.time() - started, 1)})
            if average is not None:
                state["history"][-1]["valid_accuracy_raw"] = raw_acc
            if ctx.is_main:
                if valid_acc > state["best_valid"]:
                    state["best_valid"], state["best_epoch"] = valid_acc, epoch + 1
                    from affect_sdk.training import export_weights

                    export_weights(scored, out / "best.safetensors")
                save_checkpoint(out / "last", model, optimizer, state, average)
            _log(ctx, f"epoch {epoch + 1}/{cfg.epochs} done in {time.time() - started:.0f}s: loss {running:.4f} "
                      f"FER+ valid accuracy {valid_acc:.4f}{raw_note} (best {state['best_valid']:.4f})")
    finally:
        if bar:
            bar.stop()
    write_replica_digest(model, ctx, out)
    state["out"] = str(out)
    return state
