"""`affect batch INPUT... --out DIR`: many recordings into one Parquet dataset, in local processes or on Ray."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from affect_sdk.cli.common import (BackendOption, DeviceOption, FaceOnlyOption, ModelOption, PriorOption,
                                   StepOption, ThresholdOption, TrackOption, app, err_console, friendly,
                                   print_json_line, tagged)
from affect_sdk.errors import InputError
from affect_sdk.progress import progress_bars

SHOWN_ERRORS = 10  # failed files named on stderr; all of them are in the status table


@app.command()
@friendly
def batch(
    inputs: list[Path] = typer.Argument(..., help="Files, folders (searched recursively) or manifest CSVs (a 'path' "
                                        "column; relative paths from the CSV's folder)."),
    out: Path = typer.Option(..., "--out", help="Output folder, e.g. study.parquet: one Parquet part per file (the "
                             "columns of predict --csv) and _status.parquet; a rerun skips the files done."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes, or Ray actors with "
                                          "--ray (default: one per core / per CPU of the cluster)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run on Ray Data (needs the 'ray' extra): auto (the "
                                      "cluster `ray start` runs), local (a private Ray here) or a cluster address."),
    segment_seconds: float = typer.Option(120.0, "--segment-seconds", help="Videos longer than this are cut into "
                                          "parts analysed in parallel, then stitched (inf: never cut)."),
    memory_mb: int = typer.Option(4096, "--worker-memory-mb", min=512, help="Address space each local worker "
                                  "may take; a file needing more is an error row."),
    model: ModelOption = None,
    backend: BackendOption = None,
    device: DeviceOption = None,
    step: StepOption = 1,
    threshold: ThresholdOption = None,
    prior: PriorOption = None,
    face_only: FaceOnlyOption = False,
    track: TrackOption = "largest",
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary as one JSON object."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Analyse thousands of recordings into one Parquet dataset, partitioned by file, with a per-file status
    table; local worker processes by default, a Ray cluster with --ray. Long videos are cut into parts."""
    from affect_sdk.batch import BatchOptions, run_batch
    from affect_sdk.predict import PredictOptions

    predict = PredictOptions(face_model=model, speech_model=model, backend=backend, device=device,
                             threshold=threshold, prior=prior, step=step, fuse=not face_only, track=track)
    options = BatchOptions(predict=predict, workers=workers, ray=ray, segment_s=segment_seconds,
                           memory_mb=memory_mb)
    with progress_bars(quiet) as bars:
        task = bars.add("files", total=None)

        def on_file(entry: dict[str, Any]) -> None:
            bars.advance(task, description=f"files ({Path(entry['file']).name})")

        summary = run_batch(inputs, out, options, on_file=on_file,
                            on_plan=lambda todo: bars.set(task, completed=0, total=todo))
    if summary.failed and not summary.ok and not summary.skipped:
        raise InputError(summary.errors[0]["message"] if summary.failed == 1 else
                         f"None of the {summary.failed} files could be analysed; each error is in "
                         f"{Path(out) / '_status.parquet'}.")
    for error in summary.errors[:SHOWN_ERRORS]:
        err_console.print(tagged("warning:", "yellow", error["message"]), highlight=False, soft_wrap=True)
    if len(summary.errors) > SHOWN_ERRORS:
        err_console.print(f"... and {len(summary.errors) - SHOWN_ERRORS} more failed files.", highlight=False)
    if as_json:
        print_json_line(summary.to_dict())
    err_console.print(f"{summary.files} files: {summary.ok} analysed, {summary.failed} failed, {summary.skipped} "
                      f"skipped as done before; {summary.rows} rows written to {out} in {summary.seconds:.1f} s "
                      f"(per-file status: {Path(out) / '_status.parquet'}).", markup=False, highlight=False,
                      soft_wrap=True)
