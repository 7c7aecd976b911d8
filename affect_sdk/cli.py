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
@app.command()
@friendly
def live() -> None:
    """Camera + microphone -> a live, fused affect stream."""
    _not_built("affect live")


# ---------------------------------------------------------------- predict
@app.command()
@friendly
def predict(path: Path = typer.Argument(..., help="An image, a video or a sound file.")) -> None:
    """Affect of every face in an image/video, or a timeline of a sound file."""
    _not_built("affect predict")


# ---------------------------------------------------------------- eval
@eval_app.command("vision")
@friendly
def eval_vision() -> None:
    """Face model accuracy on a FER+ layout or an image folder."""
    _not_built("affect eval vision")


@eval_app.command("audio")
@friendly
def eval_audio() -> None:
    """Speech model accuracy on RAVDESS, EmoDB or a labels.csv folder."""
    _not_built("affect eval audio")


@eval_app.command("fusion")
@friendly
def eval_fusion() -> None:
    """Vision-only vs audio-only vs fused accuracy on audio-visual clips."""
    _not_built("affect eval fusion")


# ---------------------------------------------------------------- train
@train_app.command("vision-teacher")
@friendly
def train_vision_teacher() -> None:
    """Train the face teacher on FER+."""
    _not_built("affect train vision-teacher")


@train_app.command("vision-student")
@friendly
def train_vision_student() -> None:
    """Distil the face student from a teacher (eq. 1-3), or train it without KD."""
    _not_built("affect train vision-student")


@train_app.command("audio")
@friendly
def train_audio() -> None:
    """Train the speech-emotion model."""
    _not_built("affect train audio")


# ---------------------------------------------------------------- export
@export_app.command("onnx")
@friendly
def export_onnx() -> None:
    """Export shipped models to ONNX with a dynamic batch."""
    _not_built("affect export onnx")


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
