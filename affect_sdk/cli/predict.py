"""`affect predict PATH...`: records of images, videos and sounds as text or JSON lines, tables, progress bars."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import typer
from rich.console import Console

from affect_sdk.cli.common import (BackendOption, DeviceOption, FaceOnlyOption, ModelOption, PriorOption,
                                   StepOption, ThresholdOption, TrackOption, app, console, err_console, friendly,
                                   print_json_line, tagged)
from affect_sdk.errors import InputError
from affect_sdk.progress import progress_bars

if TYPE_CHECKING:
    from affect_sdk.predict import PredictOptions


@app.command()
@friendly
def predict(
    paths: list[Path] = typer.Argument(..., help="Images, videos, sound files, or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines; each file's summary comes last for it."),
    model: ModelOption = None,
    backend: BackendOption = None,
    device: DeviceOption = None,
    step: StepOption = 1,
    threshold: ThresholdOption = None,
    prior: PriorOption = None,
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A video, image or sound file of the same "
                                            "person at rest: their resting face and calm voice then read neutral "
                                            "(personal baseline; a video's voice is used when it speaks)."),
    face_only: FaceOnlyOption = False,
    track: TrackOption = "largest",
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write a table: one row per face per frame, "
                                       "speech window and fused result (columns: docs/records.md)."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="The same table as Parquet (needs pyarrow)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Affect of every face in images and videos (fused with the voice when a video has one), and a timeline of
    sound files; folders are searched recursively, and a file that fails is reported and skipped."""
    from affect_sdk.predict import PredictOptions

    options = PredictOptions(face_model=model, speech_model=model, backend=backend, device=device,
                             threshold=threshold, prior=prior, baseline=baseline, step=step, fuse=not face_only,
                             track=track)
    run_predict(paths, options, as_json=as_json, csv_path=csv, parquet_path=parquet, quiet=quiet, console=console,
                err_console=err_console, print_json=print_json_line)


def run_predict(paths: list[Path], options: PredictOptions, *, as_json: bool, csv_path: Path | None,
                parquet_path: Path | None, quiet: bool, console: Console, err_console: Console,
                print_json: Callable[[dict], None]) -> None:
    """Analyse every file; per-file problems are one warning line each and the batch goes on. One file that fails
    is one error (exit 2), as is a batch where every file failed."""
    from affect_sdk.batch_inputs import expand_inputs
    from affect_sdk.predict import analyze_files
    from affect_sdk.tables import table_rows, write_tables

    files = expand_inputs(paths)  # a missing path is one error before any model loads
    batch = len(files) > 1
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with progress_bars(quiet) as bars:
        file_task = bars.add("files", total=len(files)) if batch else None
        frame_task = None

        def on_file(path: Path, index: int, total: int) -> None:
            nonlocal frame_task
            bars.set(file_task, completed=index, description=f"files ({path.name})")
            bars.remove(frame_task)
            frame_task = bars.add(path.name, total=_frame_count(path, options.step))

        for record in analyze_files(files, options, on_file=on_file):
            kind = record["kind"]
            if kind == "frame":
                bars.advance(frame_task)
            if kind == "file_error":
                errors.append(record)
                if batch:
                    err_console.print(tagged("warning:", "yellow", f"skipped {record['message']}"),
                                      highlight=False, soft_wrap=True)
            rows.extend(table_rows([record]))
            if as_json and (kind != "file_error" or batch):
                print_json(record)
            elif not as_json:
                _describe(record, console)
        bars.set(file_task, completed=len(files))
    if errors and len(errors) == len(files):
        raise InputError(errors[0]["message"] if not batch else
                         f"None of the {len(files)} files could be analysed (each is named above).")
    write_tables(rows, csv_path=csv_path, parquet_path=parquet_path)
    if (csv_path or parquet_path) and not as_json:
        wrote = " and ".join(str(p) for p in (csv_path, parquet_path) if p is not None)
        err_console.print(f"{len(rows)} rows from {len(files) - len(errors)} files written to {wrote}",
                          markup=False, highlight=False)


def _frame_count(path: Path, step: int) -> int | None:
    from affect_sdk.batch_inputs import media_kind

    if media_kind(path) != "video":
        return None
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    return -(-count // step) if count > 0 else None


def _face_line(where: str, face: dict[str, Any]) -> str:
    x, y, w, h = face["box"]
    probs = face["probs"]
    top = sorted(((p, c) for c, p in probs.items()), reverse=True)
    others = "  ".join(f"{c} {p:.2f}" for p, c in top[1:4])
    return (f"{where} face {face['track_id']} box ({x:.0f}, {y:.0f}, {w:.0f}, {h:.0f})  [bold]{face['label']}[/bold] "
            f"{face['confidence']:.2f}  ({others})  valence {face['valence']:+.2f}  arousal {face['arousal']:+.2f}")


def _describe(record: dict[str, Any], console: Console) -> None:
    """The human-readable line(s) of one record (per-frame fused results are left to --json and the tables)."""
    kind, say = record["kind"], lambda text: console.print(text, highlight=False)
    if kind in ("frame", "image"):
        where = f"{record['t']:8.2f} s" if kind == "frame" else record["file"]
        if not record["faces"]:
            say(f"{where}: no face found")
        for face in record["faces"]:
            say(_face_line(where, face))
    elif kind == "speech":
        if record["probs"] is None or not record["voiced"]:
            say(f"{record['start']:8.2f}-{record['end']:8.2f} s  [dim]unvoiced[/dim]")
        else:
            say(f"{record['start']:8.2f}-{record['end']:8.2f} s  {record['label']:9s} {record['confidence']:.2f}  "
                f"valence {record['valence']:+.2f}  arousal {record['arousal']:+.2f}")
    elif kind == "speech_summary":
        if record["probs"] is None:
            say(f"{record['file']}: no speech found ({record['windows']} windows, all unvoiced).")
        else:
            say(f"{record['file']}: [bold]{record['label']}[/bold] over {record['voiced_windows']} voiced windows, "
                f"valence {record['valence']:+.2f}, arousal {record['arousal']:+.2f}")
    elif kind == "fused_summary" and record["label"] is not None:
        say(f"{record['file']}: fused [bold]{record['label']}[/bold] ({'+'.join(record['sources'])}, "
            f"{record['both']} of {record['fused']} results with both), valence {record['valence']:+.2f}, "
            f"arousal {record['arousal']:+.2f}")
    elif kind == "video_summary":
        if record["label"] is None:
            say(f"{record['file']}: no face found in {record['analysed_frames']} analysed frames.")
        else:
            evidence = record["evidence"]
            say(f"{record['file']}: face [bold]{record['label']}[/bold] (largest face; held {evidence['start']:.2f}-"
                f"{evidence['end']:.2f} s), valence {record['valence']:+.2f}, arousal {record['arousal']:+.2f}")

