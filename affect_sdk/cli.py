"""The `affect` command line: live, predict, eval, train, export, doctor."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from affect_sdk.errors import AffectError

app = typer.Typer(
    name="affect", help="Real-time audio-visual affect: face + voice -> emotions and valence/arousal.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
eval_app = typer.Typer(help="Measure accuracy: vision-only, audio-only, fused.", no_args_is_help=True)
train_app = typer.Typer(help="Train the shipped models (vision teacher/student, audio).", no_args_is_help=True)
export_app = typer.Typer(help="Export models (ONNX).", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(export_app, name="export")

console = Console()
err_console = Console(stderr=True)


def friendly(func: Callable) -> Callable:
    """Turn AffectErrors into one red line and exit code 2; Ctrl-C into a clean exit 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AffectError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", highlight=False)
            raise typer.Exit(130) from None

    return wrapper


def _not_built(what: str) -> None:
    err_console.print(f"[yellow]{what} is not built yet in this version of affect-sdk.[/yellow]", highlight=False)
    raise typer.Exit(2)


def print_json_line(data: dict) -> None:
    """The last stdout line of machine-readable commands: one JSON object."""
    typer.echo(json.dumps(data, allow_nan=False))


# ---------------------------------------------------------------- live
def _has_display() -> bool:
    import os
    import sys

    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or value != value else f"{value:+.{digits}f}"


def _live_view(session) -> Table:
    """The terminal view: fused state, each face, the voice, and the counters."""
    view = Table(title=f"affect live  t={session.clock.now():6.1f} s", title_justify="left")
    for col in ("stream", "label", "conf", "valence", "arousal", "note"):
        view.add_column(col)
    fused = session.latest_fused
    if fused is not None:
        sources = "+".join(fused.sources) or "none"
        view.add_row(f"[bold]fused[/bold] ({sources})", f"[bold]{fused.label or '-'}[/bold]",
                     f"{fused.confidence:.2f}", _fmt(fused.valence), _fmt(fused.arousal), fused.note)
    for face in session.latest_faces:
        view.add_row(f"face {face.face_id}", face.label or "-", f"{face.confidence:.2f}", _fmt(face.valence),
                     _fmt(face.arousal), "")
    speech = session.latest_speech
    if speech is not None:
        view.add_row("speech", speech.label or "(no voice)", f"{speech.confidence:.2f}", _fmt(speech.valence),
                     _fmt(speech.arousal), "" if speech.voiced else "unvoiced")
    stats = session.stats.summary()
    view.caption = (f"{stats['fps']:.1f} fps analysed, {stats['frames_dropped']} frames dropped, latency p50 "
                    f"{stats['latency_ms_p50'] or 0:.0f} ms / p95 {stats['latency_ms_p95'] or 0:.0f} ms, "
                    f"{stats['speech_windows']} speech windows, {stats['audio_overflows']} audio overflows")
    return view


def _draw_preview(session) -> bool:
    """Draw the newest frame with boxes and labels; False when the user closed it (q or Esc)."""
    import cv2

    frame = session.latest_frame
    if frame is None:
        return True
    image = frame.image.copy()
    for face in session.latest_faces:
        if face.box is None:
            continue
        x, y, w, h = (int(round(v)) for v in face.box)
        cv2.rectangle(image, (x, y), (x + w, y + h), (0, 220, 0), 2)
        cv2.putText(image, f"{face.label} {face.confidence:.2f}", (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (0, 220, 0), 1, cv2.LINE_AA)
    fused = session.latest_fused
    if fused is not None:
        cv2.putText(image, f"fused: {fused.label or '-'} ({'+'.join(fused.sources) or 'none'})", (8, 22),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 200, 255), 2, cv2.LINE_AA)
    cv2.imshow("affect live", image)
    return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)


def _print_live_summary(summary: dict) -> None:
    table = Table(title="summary", show_header=False, title_justify="left")
    for key, value in summary.items():
        if key != "warnings":
            table.add_row(key, "-" if value is None else str(value))
    console.print(table)
    for message in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


@app.command()
@friendly
def live(
    camera: str = typer.Option("0", "--camera", help="Camera index, video file, or image sequence (frames/%04d.png)."),
    mic: str = typer.Option("default", "--mic", help="'default', a microphone index or name, or a sound/video file."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many seconds."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="Write every face, speech and fused result here."),
    preview: bool = typer.Option(False, "--preview", help="Show the camera with boxes and labels (needs a display)."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Camera only."),
    no_video: bool = typer.Option(False, "--no-video", help="Microphone only."),
    demo: bool = typer.Option(False, "--demo", help="Use the audio-visual sample shipped in the package as camera "
                              "and microphone (RAVDESS, CC BY-NC-SA 4.0)."),
    fast: bool = typer.Option(False, "--fast", help="Read files as fast as possible instead of at their own speed."),
    rule: str = typer.Option("entropy_weighted", "--rule", help="Fusion rule: weighted_mean, product_of_experts "
                             "or entropy_weighted."),
    smoothing: float = typer.Option(0.3, "--smoothing", help="Smoothing time constant in seconds (0: off)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Inference backend: torch or onnxruntime."),
    as_json: bool = typer.Option(False, "--json", help="No live view; print the summary as one JSON object."),
) -> None:
    """Camera + microphone -> a live, fused affect stream (Ctrl-C stops it with a summary)."""
    from rich.live import Live

    from affect_sdk.errors import InputError
    from affect_sdk.fusion.sync import SyncConfig
    from affect_sdk.session import Session, demo_clip

    if no_audio and no_video:
        raise InputError("--no-audio and --no-video together leave nothing to analyse; drop one of them.")
    source = demo_clip() if demo else None
    if preview and not _has_display():
        err_console.print("preview is unavailable: no display (DISPLAY/WAYLAND_DISPLAY not set); going on without it.",
                          highlight=False)
        preview = False

    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)

    session = Session(camera=None if no_video else (source or camera), mic=None if no_audio else (source or mic),
                      duration=duration, fast=fast, jsonl=jsonl, on_warning=warn, backend=backend,
                      sync=SyncConfig(rule=rule, smoothing_tau_s=smoothing or None))
    show = console.is_terminal and not as_json
    try:
        with session, Live(console=console, refresh_per_second=4, transient=False) if show else _nothing() as view:
            last_drawn = 0.0
            for _ in session:
                now = session.clock.now()
                if view is not None and now - last_drawn >= 0.25:
                    view.update(_live_view(session))
                    last_drawn = now
                if preview and not _draw_preview(session):
                    break
            if view is not None:
                view.update(_live_view(session))
    except KeyboardInterrupt:
        session.close()
    finally:
        if preview:
            import cv2

            cv2.destroyAllWindows()
    summary = session.summary()
    if as_json:
        print_json_line(summary)
    else:
        _print_live_summary(summary)


class _nothing:
    """A context manager that gives None (no live view when stdout is not a terminal)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# ---------------------------------------------------------------- predict
SOUND_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aiff", ".aif")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def _print_faces(faces: list, where: str) -> None:
    from affect_sdk.labels import CLASSES

    if not faces:
        console.print(f"{where}: no face found", highlight=False)
    for face in faces:
        x, y, w, h = face.box
        top = sorted(zip(face.probs, CLASSES), reverse=True)
        others = "  ".join(f"{c} {p:.2f}" for p, c in top[1:4])
        console.print(f"{where} face {face.face_id} box ({x:.0f}, {y:.0f}, {w:.0f}, {h:.0f})  "
                      f"[bold]{face.label}[/bold] {face.confidence:.2f}  ({others})  valence {face.valence:+.2f}  "
                      f"arousal {face.arousal:+.2f}", highlight=False)


def _predict_video(path: Path, analyzer, as_json: bool, step: int) -> bool:
    """Faces per frame of a video (every `step`-th frame, stamped with media time); False when it has no frames."""
    import cv2
    import numpy as np

    from affect_sdk.errors import InputError
    from affect_sdk.labels import CLASSES

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        return False
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    index, analysed, with_faces, total, va = 0, 0, 0, np.zeros(len(CLASSES)), np.zeros(2)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                t = index / fps
                faces = analyzer.analyze(frame, t)
                analysed += 1
                if faces:
                    with_faces += 1
                    total += np.asarray(faces[0].probs)
                    va += (faces[0].valence, faces[0].arousal)
                if as_json:
                    print_json_line({"kind": "frame", "frame": index, "t": round(t, 4),
                                     "faces": [f.to_dict() for f in faces]})
                else:
                    _print_faces(faces, f"{t:8.2f} s")
            index += 1
    finally:
        capture.release()
    if index == 0:
        return False
    if analysed and not with_faces and not as_json:
        console.print(f"{path}: no face found in {analysed} analysed frames.")
    mean = total / with_faces if with_faces else None
    summary = {"kind": "video_summary", "file": str(path), "model": analyzer.model, "frames": index,
               "analysed_frames": analysed, "frames_with_faces": with_faces,
               "label": CLASSES[int(np.argmax(mean))] if mean is not None else None,
               "probs": {c: round(float(p), 6) for c, p in zip(CLASSES, mean)} if mean is not None else None,
               "valence": round(float(va[0] / with_faces), 6) if with_faces else None,
               "arousal": round(float(va[1] / with_faces), 6) if with_faces else None}
    if as_json:
        print_json_line(summary)
    elif mean is not None:
        console.print(f"{path}: [bold]{summary['label']}[/bold] (largest face, mean over {with_faces} frames), "
                      f"valence {summary['valence']:+.2f}, arousal {summary['arousal']:+.2f}", highlight=False)
    if analysed == 0:
        raise InputError(f"Video file {path} has no frames to analyse.")
    return True


@app.command()
@friendly
def predict(
    path: Path = typer.Argument(..., help="An image, a video or a sound file."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines; the last line is the file's summary."),
    model: Optional[str] = typer.Option(None, "--model", help="Registered model (face or speech by file type)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch, onnxruntime or auto."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    step: int = typer.Option(1, "--step", min=1, help="Videos: analyse every N-th frame."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Face detector score threshold."),
) -> None:
    """Affect of every face in an image/video, or a timeline of a sound file."""
    from affect_sdk.errors import InputError

    if not path.is_file():
        raise InputError(f"File {path} does not exist; expected an image, a video or a sound file.")
    suffix = path.suffix.lower()
    predict_audio = globals().get("_predict_audio")
    if suffix in SOUND_SUFFIXES:
        if predict_audio is None:
            _not_built("affect predict for sound files")
        predict_audio(path, as_json, model)
        return
    from affect_sdk.vision.infer import FaceAnalyzer

    analyzer = FaceAnalyzer(model, backend=backend, device=device, detector_threshold=threshold)
    if suffix in VIDEO_SUFFIXES:
        if not _predict_video(path, analyzer, as_json, step):
            if predict_audio is None:  # e.g. an .mp4 that only carries sound
                raise InputError(f"Video file {path} could not be decoded or has no video frames.")
            predict_audio(path, as_json, None)
        return
    from affect_sdk.vision.data import load_image

    image = load_image(path)
    faces = analyzer.analyze(image, 0.0)
    if as_json:
        print_json_line({"kind": "image", "file": str(path), "model": analyzer.model,
                         "faces": [f.to_dict() for f in faces]})
    else:
        _print_faces(faces, str(path))


# ---------------------------------------------------------------- eval
@eval_app.command("vision")
@friendly
def eval_vision(
    data: Path = typer.Option(..., "--data", help="FER+ layout (FER2013Test/label.csv ...) or one folder per class."),
    split: str = typer.Option("test", "--split", help="FER+ split: train, valid or test."),
    crops: bool = typer.Option(False, "--crops", help="The images already are face crops: skip detection."),
    model: Optional[str] = typer.Option(None, "--model", help="Registered face model (default face-student) or "
                                        "a training run folder (model.json + best.safetensors)."),
    reference: Optional[str] = typer.Option(None, "--reference", help="A second model (e.g. face-teacher) to "
                                            "compare V/A against (CCC) and report accuracy for."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch, onnxruntime or auto."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N images."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line (the full result)."),
) -> None:
    """Face model accuracy on a FER+ layout or an image folder."""
    from affect_sdk.vision.evaluate import evaluate_vision

    def warn(message: str) -> None:
        err_console.print(f"[yellow]{message}[/yellow]", highlight=False, soft_wrap=True)

    result = evaluate_vision(data, split=split, crops=crops, model=model, reference=reference, backend=backend,
                             device=device, limit=limit, warn=warn)
    table = Table(title=f"{result['model']} on {data} ({result['n']} images)")
    for col in ("class", "accuracy"):
        table.add_column(col)
    for name, acc in result["per_class"].items():
        table.add_row(name, f"{acc:.3f}")
    if not as_json:
        console.print(table)
    summary = (f"accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  n {result['n']}  "
               f"skipped {result['skipped']}  GMAC {result['gmac']}")
    if as_json:
        err_console.print(summary, highlight=False)
        print_json_line(result)
    else:
        console.print(summary, highlight=False)


@eval_app.command("audio")
@friendly
def eval_audio(
    data: Path = typer.Option(..., "--data", help="Folder with RAVDESS or EmoDB file names, or a labels.csv "
                              "(columns path,label[,speaker])."),
    model: Optional[str] = typer.Option(None, "--model", help="Registered speech model (default: speech-cnn)."),
    speakers: Optional[str] = typer.Option(None, "--speakers", help="Only these speakers, comma-separated "
                                           "(e.g. 17,18,19,20 for the RAVDESS test actors)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score only the first N utterances."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch, onnxruntime or auto."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (last stdout line) instead of tables."),
) -> None:
    """Speech model accuracy on RAVDESS, EmoDB or a labels.csv folder (utterance level: windows aggregated)."""
    from affect_sdk.audio.evaluate import evaluate_folder

    wanted = [s.strip() for s in speakers.split(",") if s.strip()] if speakers else None
    result = evaluate_folder(data, model, speakers=wanted, limit=limit, backend=backend, device=device)
    if as_json:
        print_json_line(result)
        return
    table = Table(title=f"{result['model']} on {result['data']} ({result['layout']}, {result['n']} utterances)")
    for col in ("class", "n", "precision", "recall", "f1"):
        table.add_column(col)
    for name, row in result["per_class"].items():
        table.add_row(name, str(row["n"]), f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}")
    console.print(table)
    console.print(f"accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}")


@eval_app.command("fusion")
@friendly
def eval_fusion(
    data: Path = typer.Option(..., "--data", help="Folder of video clips with audio (RAVDESS names or labels.csv)."),
    rules: str = typer.Option("all", "--rules", help="'all' or comma-separated fusion rules."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write report.md, fusion.json and PNGs here."),
    frame_rate: float = typer.Option(5.0, "--frame-rate", help="Analysed video frames per second; 0 = all."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Fitted fusion weights JSON for rule 'fitted'."),
    clip: Optional[str] = typer.Option(None, "--clip", help="Clip file name for the V/A trajectory plot."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch, onnxruntime or auto."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line (without the per-clip rows)."),
) -> None:
    """Vision-only vs audio-only vs fused accuracy on audio-visual clips."""
    from affect_sdk.errors import InputError
    from affect_sdk.evaluate import FusionEvalConfig, evaluate_fusion
    from affect_sdk.fusion.rules import RULE_NAMES, FittedWeights

    chosen = RULE_NAMES if rules.strip() == "all" else tuple(r.strip() for r in rules.split(",") if r.strip())
    fitted = None
    if weights is not None:
        try:
            fitted = FittedWeights.from_dict(json.loads(weights.read_text()))
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read fitted fusion weights {weights}: expected a JSON file ({exc}).") from exc
    config = FusionEvalConfig(frame_rate=frame_rate, rules=chosen, fitted=fitted, backend=backend, device=device)

    def progress(result) -> None:
        note = f" ({'; '.join(result.problems)})" if result.problems else ""
        err_console.print(f"{result.path.name}: {result.label}{note}", highlight=False)

    evaluation = evaluate_fusion(data, config, progress=progress)
    summary = evaluation.summary
    table = Table(title=f"{summary['title']}: {summary['n']} clips")
    for col in ("system", "accuracy", "macro-F1"):
        table.add_column(col)
    for name, s in [("vision", summary["vision"]), ("audio", summary["audio"])] + \
            [(f"fused: {r}", s) for r, s in summary["fused"].items()]:
        table.add_row(name, f"{s['accuracy']:.3f}", f"{s['macro_f1']:.3f}")
    (err_console if as_json else console).print(table)
    counts = summary["counts"]
    (err_console if as_json else console).print(
        f"found {counts['found']}, evaluated {counts['evaluated']}, skipped {counts['skipped']}, "
        f"no face {counts['no_face']}, no audio {counts['no_audio']}", highlight=False)
    if report is not None:
        from affect_sdk.report import write_report

        paths = write_report(summary, report, evaluation.trajectory(clip))
        (err_console if as_json else console).print(f"report: {paths[0]}", highlight=False)
    if as_json:
        print_json_line({k: v for k, v in summary.items() if k != "clips"})


# ---------------------------------------------------------------- train
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


def _vision_train_run(cfg) -> None:
    from affect_sdk.training import is_main_process
    from affect_sdk.vision.train import train

    state = train(cfg)
    if not is_main_process():  # under torchrun rank 0 alone reports (other ranks never saw a best epoch)
        return
    print_json_line({"out": state["out"], "best_valid_accuracy": round(state["best_valid"], 4),
                     "best_epoch": state.get("best_epoch"), "epochs": state["epoch"]})


@train_app.command("vision-teacher")
@friendly
def train_vision_teacher(
    data: Path = typer.Option(Path("../shared/data/ferplus"), "--data", help="FER+ folder (FER2013Train/Valid)."),
    out: Path = typer.Option(Path("runs/vision-teacher"), "--out", help="Run folder: checkpoints, best weights."),
    epochs: int = typer.Option(8, "--epochs"),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float = typer.Option(3e-3, "--lr", help="Peak AdamW learning rate (warm-up then cosine)."),
    weight_decay: float = typer.Option(0.05, "--weight-decay"),
    input_size: int = typer.Option(48, "--input-size", help="Square input side the crops are resized to."),
    arch: str = typer.Option("", "--arch", help="Architecture kwargs as JSON, e.g. "
                             "'{\"widths\": [64,128,256,512], \"depths\": [2,2,2,2], \"stem_stride\": 1}'."),
    seed: int = typer.Option(0, "--seed"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for torch (0: torch's default)."),
    cache_dir: Optional[str] = typer.Option(".cache", "--cache-dir", help="Where the FER+ uint8 cache goes."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N images (smoke tests)."),
) -> None:
    """Train the face teacher on FER+ (resumes from --out/last when present)."""
    _vision_train_run(_vision_train_config(
        "teacher", data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        input_size=input_size, arch=arch, seed=seed, device=device, threads=threads, cache_dir=cache_dir,
        limit=limit))


@train_app.command("vision-student")
@friendly
def train_vision_student(
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher to distil from: a run folder, a "
                                          "registered model (face-teacher), a TorchScript .pt, a torch.export "
                                          ".pt2, an .onnx or module:factory giving (logits [B,8], va [B,2]) "
                                          "for [B,1,H,W] pixels in 0..1; leave out to train without KD."),
    data: Path = typer.Option(Path("../shared/data/ferplus"), "--data", help="FER+ folder (FER2013Train/Valid)."),
    out: Path = typer.Option(Path("runs/vision-student"), "--out", help="Run folder: checkpoints, best weights."),
    epochs: int = typer.Option(5, "--epochs"),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float = typer.Option(3e-3, "--lr", help="Peak AdamW learning rate (warm-up then cosine)."),
    weight_decay: float = typer.Option(0.05, "--weight-decay"),
    input_size: int = typer.Option(48, "--input-size", help="Square input side the crops are resized to."),
    arch: str = typer.Option("", "--arch", help="Architecture kwargs as JSON, e.g. "
                             "'{\"width\": 1.0, \"stem_stride\": 1, \"last_channels\": 1280}'."),
    alpha: float = typer.Option(0.5, "--alpha", help="Eq. 1 weight of the teacher term."),
    temperature: float = typer.Option(4.0, "--temperature", help="Eq. 1 temperature T."),
    margin: float = typer.Option(0.02, "--margin", help="Eq. 2 margin m."),
    nu: float = typer.Option(0.5, "--nu", help="Eq. 3 weight of the teacher bound."),
    teacher_input_size: int = typer.Option(48, "--teacher-input-size"),
    kd_targets: str = typer.Option("cached", "--kd-targets", help="cached: teacher outputs of each image and its "
                                   "mirror once; online: a teacher forward on every augmented batch."),
    kd_mirrors: bool = typer.Option(True, "--kd-mirrors/--no-kd-mirrors", help="cached: also run the teacher on "
                                    "mirrored images (else mirrored batches reuse the plain view's outputs)."),
    seed: int = typer.Option(0, "--seed"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for torch (0: torch's default)."),
    cache_dir: Optional[str] = typer.Option(".cache", "--cache-dir", help="Where the FER+ uint8 cache goes."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N images (smoke tests)."),
) -> None:
    """Distil the face student from a teacher (eq. 1-3), or train it without KD (resumes from --out/last)."""
    _vision_train_run(_vision_train_config(
        "student", data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        input_size=input_size, arch=arch, alpha=alpha, temperature=temperature, margin=margin, nu=nu,
        teacher=teacher, teacher_input_size=teacher_input_size, kd_targets=kd_targets, kd_mirrors=kd_mirrors, seed=seed, device=device,
        threads=threads, cache_dir=cache_dir, limit=limit))


@train_app.command("audio")
@friendly
def train_audio(
    data: Path = typer.Option(Path("../shared/data/ravdess_speech"), "--data", help="Training corpus folder "
                              "(RAVDESS or EmoDB names, or labels.csv with a speaker column)."),
    out: Path = typer.Option(Path("runs/speech-cnn"), "--out", help="Folder for checkpoints, log and weights."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Decoded-waveform cache, built on first use "
                                         "[default: .cache/<data folder name>_16k.npz]."),
    val_speakers: str = typer.Option("15,16", "--val-speakers", help="Speakers held out for model selection."),
    test_speakers: str = typer.Option("17,18,19,20", "--test-speakers", help="Speakers never used in training."),
    steps: int = typer.Option(4000, "--steps", min=1),
    eval_every: int = typer.Option(250, "--eval-every", min=1, help="Validate (and checkpoint) every N steps."),
    batch: int = typer.Option(32, "--batch", min=2),
    lr: float = typer.Option(3e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads."),
) -> None:
    """Train the speech-emotion model (speaker-independent split); writes OUT/speech-cnn.safetensors."""
    from affect_sdk.audio.train import TrainConfig, export_best, train

    def ids(text: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in text.split(",") if s.strip())

    cfg = TrainConfig(data=str(data), cache=str(cache or ""), out=str(out), val_speakers=ids(val_speakers),
                      test_speakers=ids(test_speakers), steps=steps, eval_every=eval_every, batch=batch, lr=lr,
                      seed=seed, threads=threads)
    state = train(cfg)
    from affect_sdk.training import is_main_process

    if not is_main_process():  # under torchrun rank 0 alone exports and reports
        return
    path, sha256 = export_best(cfg)
    print_json_line({"weights": str(path), "sha256": sha256, "best_step": state["best_step"],
                     "val_accuracy": state["best"], "steps": state["step"]})


def _predict_audio(path: Path, as_json: bool, model: str | None) -> None:
    """`affect predict` for sound files: a window timeline, then the utterance-level result (last line)."""
    import numpy as np

    from affect_sdk.audio.infer import SpeechAnalyzer
    from affect_sdk.labels import CLASSES, va_from_probs

    analyzer = SpeechAnalyzer(model)
    total, voiced, windows = np.zeros(len(CLASSES)), 0, 0
    for result in analyzer.iter_file(path):
        windows += 1
        if result.probs is not None and result.voiced:
            total += np.asarray(result.probs)
            voiced += 1
        if as_json:
            print_json_line(result.to_dict())
        elif result.probs is None:
            console.print(f"{result.start:8.2f}-{result.end:8.2f} s  [dim]unvoiced[/dim]", highlight=False)
        else:
            console.print(f"{result.start:8.2f}-{result.end:8.2f} s  {result.label:9s} {result.confidence:.2f}  "
                          f"valence {result.valence:+.2f}  arousal {result.arousal:+.2f}", highlight=False)
    probs = total / voiced if voiced else None
    summary = {"kind": "speech_summary", "file": str(path), "model": analyzer.model, "windows": windows,
               "voiced_windows": voiced, "label": CLASSES[int(np.argmax(probs))] if probs is not None else None,
               "probs": {c: round(float(p), 6) for c, p in zip(CLASSES, probs)} if probs is not None else None,
               "valence": round(float(va_from_probs(probs)[0]), 6) if probs is not None else None,
               "arousal": round(float(va_from_probs(probs)[1]), 6) if probs is not None else None}
    if as_json:
        print_json_line(summary)
    elif probs is None:
        console.print(f"{path}: no speech found ({windows} windows, all unvoiced).")
    else:
        console.print(f"{path}: [bold]{summary['label']}[/bold] over {voiced} voiced windows, valence "
                      f"{summary['valence']:+.2f}, arousal {summary['arousal']:+.2f}", highlight=False)


# ---------------------------------------------------------------- export
@export_app.command("onnx")
@friendly
def export_onnx(
    out: Path = typer.Option(..., "--out", help="Folder for <model>.onnx (affect_sdk/weights to ship them)."),
    model: Optional[list[str]] = typer.Option(None, "--model", help="A registered model (repeatable); "
                                              "default: every registered torch model."),
) -> None:
    """Export shipped models to ONNX with a dynamic batch, each checked against its torch model."""
    from affect_sdk.export import TOLERANCE, export_model, exportable_models

    names = model or [spec.name for spec in exportable_models()]
    if not names:
        err_console.print("no torch models are registered; nothing to export.")
        raise typer.Exit(2)
    table = Table(title=f"ONNX export (torch vs onnxruntime max abs diff must be <= {TOLERANCE:g})")
    for col in ("model", "file", "sha256", "max abs diff"):
        table.add_column(col, overflow="fold")
    rows = []
    for name in names:
        done = export_model(name, out)
        table.add_row(name, str(done.path), done.sha256, f"{done.max_abs_diff:.2g}")
        rows.append({"model": name, "onnx": done.path.name, "path": str(done.path), "onnx_sha256": done.sha256,
                     "source_sha256": done.source_sha256, "max_abs_diff": done.max_abs_diff})
    err_console.print(table)
    err_console.print("Ship a file by setting its ModelSpec's onnx=<file> and onnx_sha256=<sha256> "
                      "in affect_sdk/registry.py.", highlight=False)
    print_json_line({"exported": rows})


# ---------------------------------------------------------------- doctor
@app.command()
@friendly
def doctor(as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables.")) -> None:
    """What this machine offers: versions, cameras, microphones, audio stack, models and their checksums."""
    from affect_sdk.doctor import report

    info = report()
    if as_json:
        print_json_line(info)
        return
    versions = Table(title="versions", show_header=False)
    for name, version in info["versions"].items():
        versions.add_row(name, version or "[red]not installed[/red]")
    console.print(versions)
    cams = info["cameras"]
    console.print(f"cameras: {', '.join(map(str, cams)) if cams else 'none found (indices 0-4 probed)'}")
    if info["audio_problem"]:
        console.print(f"microphones: {info['audio_problem']}")
    elif not info["audio_inputs"]:
        console.print("microphones: none found")
    else:
        for dev in info["audio_inputs"]:
            console.print(f"microphone {dev['index']}: {dev['name']} ({dev['channels']} ch, {dev['rate']:.0f} Hz)")
    console.print(f"pulseaudio: {info['pulseaudio']}")
    models = Table(title="models")
    for col in ("name", "task", "file", "checksum"):
        models.add_column(col)
    for row in info["models"]:
        state = "[green]ok[/green]" if row["state"] == "ok" else f"[red]{row['state']}[/red]"
        models.add_row(row["name"], row["task"], row["file"], state)
    console.print(models)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
