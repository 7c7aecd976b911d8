"""`affect train vision-teacher|vision-student|vision-calibration|audio|audio-calibration`: the command line of
the training recipes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from affect_sdk.cli.common import BackendOption, DeviceOption, friendly, print_json_line, train_app


def _vision_train_config(role: str, **options):
    """Build a vision TrainConfig from CLI options (arch given as JSON, distillation knobs as floats)."""
    from affect_sdk.errors import InputError
    from affect_sdk.vision.distill import DistillConfig
    from affect_sdk.vision.train import TrainConfig

    arch = options.pop("arch")
    try:
        arch_dict = json.loads(arch) if arch else {}
    except json.JSONDecodeError as exc:
        raise InputError(f"--arch must be a JSON object such as '{{\"width\": 1.0}}': {exc}.") from None
    distill = DistillConfig(**{k: options.pop(k) for k in ("alpha", "temperature", "margin", "nu")
                               if k in options})
    data, out = options.pop("data"), options.pop("out")
    return TrainConfig(role=role, data=str(data), out=str(out), arch=arch_dict, distill=distill,
                       threads=options.pop("threads") or None, cache_dir=options.pop("cache_dir") or None, **options)


def _vision_train_run(cfg, quiet: bool = False) -> None:
    from affect_sdk.progress import wanted
    from affect_sdk.training import is_main_process
    from affect_sdk.vision.train import train

    state = train(cfg, progress=wanted(quiet))  # bars only on a terminal: logs and CI get the epoch lines alone
    if not is_main_process():  # under torchrun rank 0 alone reports (other ranks never saw a best epoch)
        return
    print_json_line({"out": state["out"], "best_valid_accuracy": round(state["best_valid"], 4),
                     "best_epoch": state.get("best_epoch"), "epochs": state["epoch"]})


# The options both vision recipes take, declared once (typer reads them from the annotations).
Data = Annotated[Path, typer.Option("--data", help="FER+ folder (FER2013Train/Valid).")]
Out = Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, best weights.")]
Epochs = Annotated[int, typer.Option("--epochs")]
BatchSize = Annotated[int, typer.Option("--batch-size")]
LearningRate = Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate (warm-up then cosine).")]
WeightDecay = Annotated[float, typer.Option("--weight-decay")]
InputSize = Annotated[int, typer.Option("--input-size", help="Square input side the crops are resized to.")]
Arch = Annotated[str, typer.Option("--arch", help="Architecture kwargs as JSON, e.g. '{\"widths\": [64,128,256,512], "
                                   "\"depths\": [2,2,2,2], \"stem_stride\": 1}' (resnet) or '{\"width\": 1.0, "
                                   "\"last_channels\": 1280}' (mobilenetv2).")]
Seed = Annotated[int, typer.Option("--seed")]
Threads = Annotated[int, typer.Option("--threads", help="CPU threads for torch (0: torch's default).")]
CacheDir = Annotated[Optional[str], typer.Option("--cache-dir", help="Where the FER+ uint8 cache goes.")]
Precision = Annotated[str, typer.Option("--precision", help="fp32, or bf16 autocast (about 2x faster for the "
                                        "ResNets on CPUs with AVX-512 BF16; slower for the depthwise MobileNetV2).")]
Augment = Annotated[str, typer.Option("--augment", help="fer: FER2013-style jitter; webcam: plus blur, noise, JPEG, "
                                      "gamma and low-resolution faces, for live cameras and other corpora.")]
Mix = Annotated[str, typer.Option("--mix", help="none, mixup or cutmix: blend or paste a partner image of the "
                                  "batch into each image (with probability --mix-p), mixing the targets alike.")]
MixP = Annotated[float, typer.Option("--mix-p", help="Share of the images --mix mixes.")]
Occlude = Annotated[float, typer.Option("--occlude", help="Share of the faces with the mouth and jaw (mostly) or "
                                        "the eyes covered, so both halves of the face learn to carry the "
                                        "expression; 0: off.")]
LowRes = Annotated[Optional[float], typer.Option("--lowres", help="Share of the faces shrunk to 14-32 px (at 48 px; "
                                                "scaled with --input-size) and back, like a face far from the "
                                                "camera (default: the --augment preset's, webcam 0.15, fer 0).")]
Ema = Annotated[float, typer.Option("--ema", help="Per-step decay of a moving average of the weights, which is "
                                    "then validated, selected and exported (e.g. 0.998: about the last 500 "
                                    "steps); 0: off.")]
Init = Annotated[Optional[str], typer.Option("--init", help="Warm start from a run folder, a registered model or a "
                                             ".safetensors of the same architecture (ignored when resuming).")]
Net = Annotated[str, typer.Option("--net", help="resnet or mobilenetv2 (default: the net of the role's shipped "
                                  "model, face-teacher or face-student); --arch gives its keyword arguments.")]
Limit = Annotated[Optional[int], typer.Option("--limit", help="Use only the first N images (smoke tests).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
FERPLUS = Path("../shared/data/ferplus")


@train_app.command("vision-teacher")
@friendly
def train_vision_teacher(
    data: Data = FERPLUS, out: Out = Path("runs/vision-teacher"), epochs: Epochs = 8, batch_size: BatchSize = 128,
    lr: LearningRate = 3e-3, weight_decay: WeightDecay = 0.05, input_size: InputSize = 48, arch: Arch = "",
    seed: Seed = 0, device: DeviceOption = None, threads: Threads = 1, cache_dir: CacheDir = ".cache",
    precision: Precision = "fp32", augment: Augment = "fer", mix: Mix = "none", mix_p: MixP = 0.5,
    occlude_p: Occlude = 0.0, lowres_p: LowRes = None, ema_decay: Ema = 0.0, init: Init = None,
    net: Net = "", limit: Limit = None, quiet: Quiet = False,
) -> None:
    """Train the face teacher on FER+ (resumes from --out/last when present)."""
    _vision_train_run(_vision_train_config(
        "teacher", data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        input_size=input_size, arch=arch, seed=seed, device=device, threads=threads, cache_dir=cache_dir,
        limit=limit, precision=precision, augment_preset=augment, mix=mix, mix_p=mix_p, occlude_p=occlude_p,
        lowres_p=lowres_p, ema_decay=ema_decay, init=init, net=net), quiet)


@train_app.command("vision-student")
@friendly
def train_vision_student(
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher(s) to distil from, comma-separated "
                                          "for an ensemble, each optionally weighted as REF@W (log-probabilities "
                                          "and V/A averaged; a member abstains on classes it never learned): a "
                                          "run folder, a "
                                          "registered model (face-teacher), a TorchScript .pt, a torch.export "
                                          ".pt2, an .onnx or module:factory giving (logits [B,8], va [B,2]) "
                                          "for [B,1,H,W] pixels in 0..1 (module:factory imports and runs your own "
                                          "Python code: name only code you trust); leave out to train without KD."),
    alpha: float = typer.Option(0.5, "--alpha", help="Eq. 1 weight of the teacher term."),
    temperature: float = typer.Option(4.0, "--temperature", help="Eq. 1 temperature T."),
    margin: float = typer.Option(0.02, "--margin", help="Eq. 2 margin m."),
    nu: float = typer.Option(0.5, "--nu", help="Eq. 3 weight of the teacher bound."),
    teacher_input_size: int = typer.Option(48, "--teacher-input-size"),
    kd_targets: str = typer.Option("cached", "--kd-targets", help="cached: teacher outputs of each image and its "
                                   "mirror once; online: a teacher forward on every augmented batch."),
    kd_mirrors: bool = typer.Option(True, "--kd-mirrors/--no-kd-mirrors", help="cached: also run the teacher on "
                                    "mirrored images (else mirrored batches reuse the plain view's outputs)."),
    data: Data = FERPLUS, out: Out = Path("runs/vision-student"), epochs: Epochs = 8, batch_size: BatchSize = 128,
    lr: LearningRate = 3e-3, weight_decay: WeightDecay = 0.05, input_size: InputSize = 48, arch: Arch = "",
    seed: Seed = 0, device: DeviceOption = None, threads: Threads = 1, cache_dir: CacheDir = ".cache",
    precision: Precision = "fp32", augment: Augment = "fer", mix: Mix = "none", mix_p: MixP = 0.5,
    occlude_p: Occlude = 0.0, lowres_p: LowRes = None, ema_decay: Ema = 0.0, init: Init = None,
    net: Net = "", limit: Limit = None, quiet: Quiet = False,
) -> None:
    """Distil the face student from a teacher (eq. 1-3), or train it without KD (resumes from --out/last)."""
    _vision_train_run(_vision_train_config(
        "student", data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        input_size=input_size, arch=arch, alpha=alpha, temperature=temperature, margin=margin, nu=nu,
        teacher=teacher, teacher_input_size=teacher_input_size, kd_targets=kd_targets, kd_mirrors=kd_mirrors,
        seed=seed, device=device, threads=threads, cache_dir=cache_dir, limit=limit, precision=precision,
        augment_preset=augment, mix=mix, mix_p=mix_p, occlude_p=occlude_p, lowres_p=lowres_p,
        ema_decay=ema_decay, init=init, net=net), quiet)


@train_app.command("vision-calibration")
@friendly
def train_vision_calibration(
    model: str = typer.Option(..., "--model", help="Registered face model or a training run folder."),
    data: Path = typer.Option(Path("../shared/data/ferplus"), "--data", help="FER+ folder (Train and Valid)."),
    cache_dir: Optional[str] = typer.Option(".cache", "--cache-dir", help="Where the FER+ uint8 cache goes."),
) -> None:
    """Fit a face model's class prior (FER+ Train), temperatures and neutral reference (FER+ Valid; Test is never
    read). A run folder gets them in its model.json; for a registered model, copy them into the registry."""
    from affect_sdk.vision.evaluate import fit_face_calibration

    print_json_line(fit_face_calibration(model, data, cache_dir=cache_dir))


@train_app.command("audio-calibration")
@friendly
def train_audio_calibration(
    model: str = typer.Option(..., "--model", help="Registered speech model or a training run folder."),
    data: Path = typer.Option(Path("../shared/data/ravdess_speech"), "--data", help="Corpus folder."),
    train_speakers: str = typer.Option(",".join(f"{a:02d}" for a in range(1, 15)), "--train-speakers",
                                       help="Speakers whose labels give the class prior."),
    val_speakers: str = typer.Option("15,16", "--val-speakers", help="Speakers the temperatures and the neutral "
                                     "reference are fitted on (never the test speakers)."),
    backend: BackendOption = None,
) -> None:
    """Fit a speech model's class prior (training speakers), temperatures and neutral reference (validation
    speakers). A run folder gets them in its model.json; for a registered model, copy them into the registry."""
    from affect_sdk.audio.calibrate import fit_speech_calibration

    def ids(text: str) -> list[str]:
        return [s.strip() for s in text.split(",") if s.strip()]

    print_json_line(fit_speech_calibration(model, data, train_speakers=ids(train_speakers),
                                           val_speakers=ids(val_speakers), backend=backend))


@train_app.command("audio")
@friendly
def train_audio(
    data: Path = typer.Option(Path("../shared/data/ravdess_speech"), "--data", help="Training corpus folder "
                              "(RAVDESS or EmoDB names, or labels.csv with a speaker column)."),
    out: Path = typer.Option(Path("runs/speech-cnn"), "--out", help="Folder for checkpoints, log and weights."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Decoded-waveform cache, built on first use "
                                         "(default: .cache/<data folder name>_16k.npz)."),
    val_speakers: str = typer.Option("15,16", "--val-speakers", help="Speakers held out for model selection "
                                     "('' for none)."),
    test_speakers: str = typer.Option("17,18,19,20", "--test-speakers", help="Speakers never used in training."),
    steps: int = typer.Option(4000, "--steps", min=1),
    eval_every: int = typer.Option(250, "--eval-every", min=1, help="Validate (and checkpoint) every N steps."),
    batch: int = typer.Option(32, "--batch", min=2),
    lr: float = typer.Option(3e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    init: Optional[str] = typer.Option(None, "--init", help="Warm start (fine-tune) from a registered model, a run "
                                       "folder or a .safetensors; an ensemble's member --init-member."),
    init_member: int = typer.Option(0, "--init-member", min=0),
    telephone_p: float = typer.Option(0.0, "--telephone-p", help="Share of crops from telephone-band copies "
                                      "(8 kHz, 200-400 to 3000-3600 Hz, mostly mu-law)."),
    opus_p: float = typer.Option(0.0, "--opus-p", help="Share of crops from Opus round trips (6-24 kbit/s)."),
    mic_p: float = typer.Option(0.0, "--mic-p", help="Share of crops from poor-microphone copies (band limits, "
                                "level -56..-6 dBFS against a noise floor, clipping)."),
    narrowband_mask: Optional[bool] = typer.Option(None, "--narrowband-mask/--no-narrowband-mask", help="Mask the "
                                                   "bands above 4 kHz of telephone-band windows (default: as the "
                                                   "shipped model's registry entry)."),
    ema_decay: Ema = 0.0,
    band_norm: Optional[bool] = typer.Option(None, "--band-norm/--no-band-norm", help="Normalise each mel band "
                                             "by its own mean over the window (default: as the shipped model's "
                                             "registry entry)."),
    select: str = typer.Option("clean", "--select", help="Validation score for the best checkpoint: clean, "
                               "clean+telephone (mean with telephone-band copies of the validation speakers), or "
                               "last (a refit: keep the final step; pass --val-speakers '' to train on them too)."),
    without: str = typer.Option("", "--without", help="Augmentations to switch off, for ablations (comma list of "
                                "warp, noise, reverb, eq, specaugment, mixup, telephone, opus, mic)."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads."),
    device: DeviceOption = None,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the speech-emotion model (speaker-independent split); writes OUT/speech-cnn.safetensors."""
    import dataclasses

    from affect_sdk.audio.augment import AugmentConfig
    from affect_sdk.audio.augment import without as switch_off
    from affect_sdk.audio.train import TrainConfig, export_best, train
    from affect_sdk.checks import probability
    from affect_sdk.errors import InputError
    from affect_sdk.progress import progress_bars

    def ids(text: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in text.split(",") if s.strip())

    augment = AugmentConfig(telephone_p=probability("telephone_p", telephone_p), opus_p=probability("opus_p", opus_p),
                            mic_p=probability("mic_p", mic_p))
    try:
        augment = switch_off(augment, ids(without))
    except ValueError as exc:
        raise InputError(f"--without: {exc}.") from None
    cfg = TrainConfig(data=str(data), cache=str(cache or ""), out=str(out), val_speakers=ids(val_speakers),
                      test_speakers=ids(test_speakers), steps=steps, eval_every=eval_every, batch=batch, lr=lr,
                      seed=seed, threads=threads, device=device, augment=augment, init=init or "",
                      init_member=init_member, select=select, ema_decay=ema_decay)
    if narrowband_mask is not None:
        cfg.features = dataclasses.replace(cfg.features, narrowband_mask=narrowband_mask)
    if band_norm is not None:
        cfg.features = dataclasses.replace(cfg.features, band_norm=band_norm)
    with progress_bars(quiet) as bars:
        task = bars.add("steps", total=steps)
        state = train(cfg, progress=lambda step, total: bars.set(task, completed=step))
    from affect_sdk.training import is_main_process

    if not is_main_process():  # under torchrun rank 0 alone exports and reports
        return
    path, sha256 = export_best(cfg)
    print_json_line({"weights": str(path), "sha256": sha256, "best_step": state["best_step"],
                     "val_score": None if select == "last" else state["best"], "select": select,
                     "steps": state["step"]})
