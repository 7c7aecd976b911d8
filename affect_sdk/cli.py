"""The `affect` command line: live, predict, eval, train, export, doctor, serve."""
from __future__ import annotations

import functools
import json
import signal
import threading
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so the same cleanup (flush, join workers) runs; exit 143."""


def _on_stop_signal(signum: int, frame: object) -> None:
    # Later signals are ignored while the cleanup joins the worker threads: a second Ctrl-C that cut the cleanup
    # short would leave workers inside native code at interpreter exit (SIGABRT). SIGKILL still ends it at once.
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM end a command through the same cleanup; a SIGINT ignored by the shell (`cmd &`) stays so."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_stop_signal)
    signal.signal(signal.SIGTERM, _on_stop_signal)


def _report_write_failure(exc: OSError) -> None:
    """A full disk, an I/O error or a closed pipe on output (stdout included): one line, exit 2."""
    import errno
    import os
    import sys

    if exc.errno == errno.EPIPE:  # stdout's reader is gone: later flushes (at exit too) must not fail again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    target = exc.filename or ("standard output" if exc.errno == errno.EPIPE else "the output")
    err_console.print(f"[red]error:[/red] Cannot write {target}: {exc.strerror or exc}.", highlight=False,
                      soft_wrap=True)
    raise typer.Exit(2) from None


def friendly(func: Callable) -> Callable:
    """Turn AffectErrors and failed writes into one red line and exit code 2; Ctrl-C into exit 130, SIGTERM 143."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from affect_sdk.output import WRITE_ERRNOS

        try:
            return func(*args, **kwargs)
        except AffectError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            err_console.print("terminated" if isinstance(exc, Terminated) else "interrupted", highlight=False)
            raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            _report_write_failure(exc)

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
        view.add_row(f"face {face.track_id}", face.label or "-", f"{face.confidence:.2f}", _fmt(face.valence),
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
        cv2.putText(image, f"#{face.track_id} {face.label} {face.confidence:.2f}", (x, max(12, y - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 220, 0), 1, cv2.LINE_AA)
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
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="Write every face, speech and fused result here "
                                         "(docs/records.md); an existing file needs --append or --overwrite."),
    append: bool = typer.Option(False, "--append", help="Add this session to an existing --jsonl file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --jsonl file."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write a table (one row per face per frame, speech "
                                       "window and fused result) when the session ends."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="The same table as Parquet (needs pyarrow)."),
    track: str = typer.Option("largest", "--track", help="Whom the fused stream follows: largest, all (one per "
                              "person) or a track id."),
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
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    prior: Optional[str] = typer.Option(None, "--prior", help="Face output prior: blend (the default: FER+'s "
                                        "class frequencies half divided out), balanced (all of them) or train."),
    baseline_seconds: Optional[float] = typer.Option(None, "--baseline-seconds", help="Take the first S seconds "
                                                     "as the person at rest and calibrate the face to them."),
    as_json: bool = typer.Option(False, "--json", help="No live view; print the summary as one JSON object."),
) -> None:
    """Camera + microphone -> a live, fused affect stream (Ctrl-C stops it with a summary)."""
    from rich.live import Live

    from affect_sdk.errors import InputError
    from affect_sdk.fusion.sync import SyncConfig
    from affect_sdk.session import Session, demo_clip

    if no_audio and no_video:
        raise InputError("--no-audio and --no-video together leave nothing to analyse; drop one of them.")
    if append and overwrite:
        raise InputError("--append and --overwrite contradict each other; pick one.")
    source = demo_clip() if demo else None
    records: list[dict] = []  # for --csv / --parquet
    if preview and not _has_display():
        err_console.print("preview is unavailable: no display (DISPLAY/WAYLAND_DISPLAY not set); going on without it.",
                          highlight=False)
        preview = False

    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)

    session = Session(camera=None if no_video else (source or camera), mic=None if no_audio else (source or mic),
                      duration=duration, fast=fast, jsonl=jsonl, on_warning=warn, backend=backend, device=device,
                      sync=SyncConfig(rule=rule, smoothing_tau_s=smoothing or None), prior=prior,
                      baseline_seconds=baseline_seconds, track=track,
                      jsonl_mode="append" if append else "overwrite" if overwrite else "refuse",
                      on_record=records.append if (csv or parquet) else None)
    show = console.is_terminal and not as_json
    interrupted: KeyboardInterrupt | None = None
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
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: close (JSONL complete), print the summary, exit 130/143
        session.close()
        interrupted = exc
    finally:
        if preview:
            import cv2

            cv2.destroyAllWindows()
    if csv or parquet:
        from affect_sdk.tables import table_rows, write_tables

        write_tables(table_rows(records), csv_path=csv, parquet_path=parquet)
    summary = session.summary()
    if as_json:
        print_json_line(summary)
    else:
        _print_live_summary(summary)
    if interrupted is not None:
        raise interrupted


class _nothing:
    """A context manager that gives None (no live view when stdout is not a terminal)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# ---------------------------------------------------------------- predict
@app.command()
@friendly
def predict(
    paths: list[Path] = typer.Argument(..., help="Images, videos, sound files, or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines; each file's summary comes last for it."),
    model: Optional[str] = typer.Option(None, "--model", help="Registered model (face or speech by file type)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch, onnxruntime or auto."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    step: int = typer.Option(1, "--step", min=1, help="Videos: analyse every N-th frame."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Face detector score threshold."),
    prior: Optional[str] = typer.Option(None, "--prior", help="Face output prior: blend (the default: FER+'s "
                                        "class frequencies half divided out), balanced (all of them) or train."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A video or image of the same person at "
                                            "rest: their resting face then reads neutral (personal baseline)."),
    face_only: bool = typer.Option(False, "--face-only", help="Videos: faces only, the sound track is not fused."),
    track: str = typer.Option("largest", "--track", help="Videos: whom the fused stream follows: largest, all "
                              "(one per person) or a track id."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write a table: one row per face per frame, "
                                       "speech window and fused result (columns: docs/records.md)."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="The same table as Parquet (needs pyarrow)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Affect of every face in images and videos (fused with the voice when a video has one), and a timeline of
    sound files; folders are searched recursively, and a file that fails is reported and skipped."""
    from affect_sdk.cli_predict import run_predict
    from affect_sdk.predict import PredictOptions

    options = PredictOptions(face_model=model, speech_model=model, backend=backend, device=device,
                             threshold=threshold, prior=prior, baseline=baseline, step=step, fuse=not face_only,
                             track=track)
    run_predict(paths, options, as_json=as_json, csv_path=csv, parquet_path=parquet, quiet=quiet, console=console,
                err_console=err_console, print_json=print_json_line)


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
    prior: Optional[str] = typer.Option(None, "--prior", help="Face output prior: blend (the default: "
                                        "FER+'s class frequencies half divided out), balanced (all of them) or "
                                        "train (kept)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line (the full result)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Face model accuracy on a FER+ layout or an image folder."""
    from affect_sdk.vision.evaluate import evaluate_vision

    def warn(message: str) -> None:
        err_console.print(f"[yellow]{message}[/yellow]", highlight=False, soft_wrap=True)

    from affect_sdk.progress import progress_bars

    with progress_bars(quiet) as bars:
        task = bars.add("eval vision", total=None)
        result = evaluate_vision(data, split=split, crops=crops, model=model, reference=reference, backend=backend,
                                 device=device, limit=limit, warn=warn, prior=prior,
                                 progress=lambda done, total: bars.set(task, completed=done, total=total))
    table = Table(title=f"{result['model']} on {data} ({result['n']} images, prior {result['prior']})")
    for col in ("class", "accuracy"):
        table.add_column(col)
    for name, acc in result["per_class"].items():
        table.add_row(name, f"{acc:.3f}")
    if not as_json:
        console.print(table)
    summary = (f"accuracy {result['accuracy']:.4f}  balanced {result['balanced_accuracy']:.4f}  "
               f"macro-F1 {result['macro_f1']:.4f}  ECE {result['ece']}  n {result['n']}  "
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Speech model accuracy on RAVDESS, EmoDB or a labels.csv folder (utterance level: windows aggregated)."""
    from affect_sdk.audio.evaluate import evaluate_folder
    from affect_sdk.progress import progress_bars

    wanted = [s.strip() for s in speakers.split(",") if s.strip()] if speakers else None
    with progress_bars(quiet) as bars:
        task = bars.add("utterances")
        result = evaluate_folder(data, model, speakers=wanted, limit=limit, backend=backend, device=device,
                                 progress=lambda done, total: bars.set(task, completed=done, total=total))
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (the per-clip lines stay)."),
) -> None:
    """Vision-only vs audio-only vs fused accuracy on audio-visual clips."""
    from affect_sdk.progress import progress_bars
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

    from affect_sdk.evaluate import find_clips

    with progress_bars(quiet) as bars:
        task = bars.add("clips", total=len(find_clips(data)[0]))

        def progress(result) -> None:
            note = f" ({'; '.join(result.problems)})" if result.problems else ""
            err_console.print(f"{result.path.name}: {result.label}{note}", highlight=False)
            bars.advance(task)

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


def _vision_train_run(cfg, quiet: bool = False) -> None:
    from affect_sdk.progress import wanted
    from affect_sdk.training import is_main_process
    from affect_sdk.vision.train import train

    state = train(cfg, progress=wanted(quiet))  # bars only on a terminal: logs and CI get the epoch lines alone
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
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16 autocast (about 2x faster for the "
                                  "ResNet teachers on CPUs with AVX-512 BF16; slower for the depthwise student)."),
    augment: str = typer.Option("fer", "--augment", help="fer: FER2013-style jitter; webcam: plus blur, noise, "
                                "JPEG, gamma and low-resolution faces, for live cameras and other corpora."),
    init: Optional[str] = typer.Option(None, "--init", help="Warm start from a run folder, a registered model or "
                                       "a .safetensors of the same architecture (ignored when resuming)."),
    net: str = typer.Option("", "--net", help="resnet or mobilenetv2 (default: resnet for teachers, mobilenetv2 "
                            "for students); --arch gives its keyword arguments."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N images (smoke tests)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the face teacher on FER+ (resumes from --out/last when present)."""
    _vision_train_run(_vision_train_config(
        "teacher", data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        input_size=input_size, arch=arch, seed=seed, device=device, threads=threads, cache_dir=cache_dir,
        limit=limit, precision=precision, augment_preset=augment, init=init, net=net), quiet)


@train_app.command("vision-student")
@friendly
def train_vision_student(
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher(s) to distil from, comma-separated for an ensemble (logits and V/A averaged): each a run folder, a "
                                          "registered model (face-teacher), a TorchScript .pt, a torch.export "
                                          ".pt2, an .onnx or module:factory giving (logits [B,8], va [B,2]) "
                                          "for [B,1,H,W] pixels in 0..1 (module:factory imports and runs your own "
                                          "Python code: name only code you trust); leave out to train without KD."),
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
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16 autocast (about 2x faster for the "
                                  "ResNet teachers on CPUs with AVX-512 BF16; slower for the depthwise student)."),
    augment: str = typer.Option("fer", "--augment", help="fer: FER2013-style jitter; webcam: plus blur, noise, "
                                "JPEG, gamma and low-resolution faces, for live cameras and other corpora."),
    init: Optional[str] = typer.Option(None, "--init", help="Warm start from a run folder, a registered model or "
                                       "a .safetensors of the same architecture (ignored when resuming)."),
    net: str = typer.Option("", "--net", help="resnet or mobilenetv2 (default: resnet for teachers, mobilenetv2 "
                            "for students); --arch gives its keyword arguments."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N images (smoke tests)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Distil the face student from a teacher (eq. 1-3), or train it without KD (resumes from --out/last)."""
    _vision_train_run(_vision_train_config(
        "student", data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        input_size=input_size, arch=arch, alpha=alpha, temperature=temperature, margin=margin, nu=nu,
        teacher=teacher, teacher_input_size=teacher_input_size, kd_targets=kd_targets, kd_mirrors=kd_mirrors, seed=seed, device=device,
        threads=threads, cache_dir=cache_dir, limit=limit, precision=precision, augment_preset=augment, init=init, net=net),
        quiet)


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
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the speech-emotion model (speaker-independent split); writes OUT/speech-cnn.safetensors."""
    from affect_sdk.audio.train import TrainConfig, export_best, train
    from affect_sdk.progress import progress_bars

    def ids(text: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in text.split(",") if s.strip())

    cfg = TrainConfig(data=str(data), cache=str(cache or ""), out=str(out), val_speakers=ids(val_speakers),
                      test_speakers=ids(test_speakers), steps=steps, eval_every=eval_every, batch=batch, lr=lr,
                      seed=seed, threads=threads, device=device)
    with progress_bars(quiet) as bars:
        task = bars.add("steps", total=steps)
        state = train(cfg, progress=lambda step, total: bars.set(task, completed=step))
    from affect_sdk.training import is_main_process

    if not is_main_process():  # under torchrun rank 0 alone exports and reports
        return
    path, sha256 = export_best(cfg)
    print_json_line({"weights": str(path), "sha256": sha256, "best_step": state["best_step"],
                     "val_accuracy": state["best"], "steps": state["step"]})


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


@app.command()
@friendly
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback a token is required."),
    port: int = typer.Option(8765, "--port", help="TCP port (0: any free port)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="AFFECT_TOKEN", show_envvar=True,
                                        help="Clients must send it (Bearer header or ?token=)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Analysis threads shared by all connections."),
    max_connections: int = typer.Option(8, "--max-connections", min=1, help="Clients served at once."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Inference backend: torch or onnxruntime."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto."),
) -> None:
    """Serve face + voice affect over a WebSocket (/v1/stream), with a browser client at /."""
    try:  # the serve code and its dependencies load only here: nothing else in affect-sdk needs them
        from affect_sdk.serve.app import serve as run_server
    except ImportError as exc:
        missing = (exc.name or "a dependency").split(".")[0]
        err_console.print(f"[red]error:[/red] affect serve needs the 'serve' extra ({missing} is missing): "
                          "pip install 'affect-sdk\\[serve]'.", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    run_server(host, port, token, workers=workers, max_connections=max_connections, backend=backend, device=device,
               say=lambda text: err_console.print(text, markup=False, highlight=False, soft_wrap=True))


def main() -> None:
    install_signal_handlers()
    app()


if __name__ == "__main__":
    main()
