"""`affect eval vision|audio|fusion`: accuracy of the face model, the speech model and each fusion rule."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from affect_sdk.cli.common import (BackendOption, DeviceOption, PriorOption, SpeechPriorOption, console, err_console,
                                   eval_app, friendly, print_json_line)


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
    backend: BackendOption = None,
    device: DeviceOption = None,
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N images."),
    prior: PriorOption = None,
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line (the full result)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Face model accuracy on a FER+ layout or an image folder."""
    from affect_sdk.vision.evaluate import evaluate_vision

    def warn(message: str) -> None:
        err_console.print(message, style="yellow", markup=False, highlight=False, soft_wrap=True)

    from affect_sdk.progress import progress_bars

    with progress_bars(quiet) as bars:
        task = bars.add("eval vision", total=None)
        result = evaluate_vision(data, split=split, crops=crops, model=model, reference=reference, backend=backend,
                                 device=device, limit=limit, warn=warn, prior=prior,
                                 progress=lambda done, total: bars.set(task, completed=done, total=total))
    # titles as Text: a model or data path holding "[...]" prints as it is, never read as console markup
    table = Table(title=Text(f"{result['model']} on {data} ({result['n']} images, prior {result['prior']})"))
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
    backend: BackendOption = None,
    device: DeviceOption = None,
    prior: SpeechPriorOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (last stdout line) instead of tables."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Speech model accuracy on RAVDESS, EmoDB or a labels.csv folder (utterance level: windows aggregated)."""
    from affect_sdk.audio.evaluate import evaluate_folder
    from affect_sdk.labels import CLASS_INDEX
    from affect_sdk.progress import progress_bars

    wanted = [s.strip() for s in speakers.split(",") if s.strip()] if speakers else None
    with progress_bars(quiet) as bars:
        task = bars.add("utterances")
        result = evaluate_folder(data, model, speakers=wanted, limit=limit, backend=backend, device=device,
                                 prior=prior, progress=lambda done, total: bars.set(task, completed=done, total=total))
    if as_json:
        print_json_line(result)
        return
    table = Table(title=Text(f"{result['model']} on {result['data']} ({result['layout']}, {result['n']} "
                             f"utterances, prior {result['prior']})"))
    for col in ("class", "n", "recall", "f1"):
        table.add_column(col)
    for name, recall in result["per_class"].items():
        n = sum(result["confusion"][CLASS_INDEX[name]])
        table.add_row(name, str(n), f"{recall:.3f}", f"{result['per_class_f1'][name]:.3f}")
    console.print(table)
    console.print(f"accuracy {result['accuracy']:.4f}  balanced {result['balanced_accuracy']:.4f}  "
                  f"macro-F1 {result['macro_f1']:.4f}  ECE {result['ece']}", highlight=False)


@eval_app.command("fusion")
@friendly
def eval_fusion(
    data: Path = typer.Option(..., "--data", help="Folder of video clips with audio (RAVDESS names or labels.csv)."),
    rules: str = typer.Option("all", "--rules", help="'all' or comma-separated fusion rules."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write report.md, fusion.json and PNGs here."),
    frame_rate: float = typer.Option(5.0, "--frame-rate", help="Analysed video frames per second; 0 = all."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Fitted fusion weights JSON for rule 'fitted'."),
    clip: Optional[str] = typer.Option(None, "--clip", help="Clip file name for the V/A trajectory plot."),
    backend: BackendOption = None,
    device: DeviceOption = None,
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
            err_console.print(f"{result.path.name}: {result.label}{note}", markup=False, highlight=False)
            bars.advance(task)

        evaluation = evaluate_fusion(data, config, progress=progress)
    summary = evaluation.summary
    table = Table(title=Text(f"{summary['title']}: {summary['n']} clips"))
    for col in ("system", "accuracy", "balanced", "macro-F1"):
        table.add_column(col)
    for name, s in [("vision", summary["vision"]), ("audio", summary["audio"])] + \
            [(f"fused: {r}", s) for r, s in summary["fused"].items()]:
        table.add_row(name, f"{s['accuracy']:.3f}", f"{s['balanced_accuracy']:.3f}", f"{s['macro_f1']:.3f}")
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
