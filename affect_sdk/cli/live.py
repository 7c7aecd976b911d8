"""`affect live`: camera + microphone -> the live fused view (terminal table, optional preview window)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from affect_sdk.cli.common import (DeviceOption, PriorOption, app, console, err_console, friendly, print_json_line,
                                  tagged)


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
        console.print(tagged("warning:", "yellow", message), highlight=False, soft_wrap=True)


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
    device: DeviceOption = None,
    prior: PriorOption = None,
    baseline_seconds: Optional[float] = typer.Option(None, "--baseline-seconds", help="Take the first S seconds "
                                                     "as the person at rest and calibrate the face to them."),
    baseline_voice: bool = typer.Option(False, "--baseline-voice", help="With --baseline-seconds: calibrate the "
                                        "voice to those seconds too (opt-in: on RAVDESS actors it lowered "
                                        "accuracy; see the speech-cnn card)."),
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
        err_console.print(tagged("warning:", "yellow", message), highlight=False, soft_wrap=True)

    session = Session(camera=None if no_video else (source or camera), mic=None if no_audio else (source or mic),
                      duration=duration, fast=fast, jsonl=jsonl, on_warning=warn, backend=backend, device=device,
                      sync=SyncConfig(rule=rule, smoothing_tau_s=smoothing or None), prior=prior,
                      baseline_seconds=baseline_seconds, baseline_voice=baseline_voice, track=track,
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
