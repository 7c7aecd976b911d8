"""What every `affect` command shares: the Typer apps, the consoles, one-line errors, exit codes and signals."""
from __future__ import annotations

import functools
import json
import signal
import threading
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.text import Text

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


def tagged(tag: str, style: str, message: str) -> Text:
    """`tag` in `style`, then `message` verbatim: never read as console markup, so brackets in paths, values and
    error messages print as they are (markup would drop "[default: x]" and fail on "[/tmp/x]")."""
    return Text.assemble((tag, style), " ", message)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so the same cleanup (flush, join workers) runs; exit 143."""


_STOP_SIGNALS: list[int] = []  # the stop signal received, if any


def _on_stop_signal(signum: int, frame: object) -> None:
    # Later signals are ignored while the cleanup joins the worker threads: a second Ctrl-C that cut the cleanup
    # short would leave workers inside native code at interpreter exit (SIGABRT). SIGKILL still ends it at once.
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    _STOP_SIGNALS.append(signum)
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
    err_console.print(tagged("error:", "red", f"Cannot write {target}: {exc.strerror or exc}."), highlight=False,
                      soft_wrap=True)
    raise typer.Exit(2) from None


def _exit_stopped(terminated: bool) -> None:
    err_console.print("terminated" if terminated else "interrupted", highlight=False)
    raise typer.Exit(143 if terminated else 130) from None


def friendly(func: Callable) -> Callable:
    """Turn AffectErrors and failed writes into one red line and exit code 2; Ctrl-C into exit 130, SIGTERM 143."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from affect_sdk.output import WRITE_ERRNOS

        try:
            return func(*args, **kwargs)
        except AffectError as exc:
            err_console.print(tagged("error:", "red", str(exc)), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            _exit_stopped(isinstance(exc, Terminated))
        except Exception as exc:
            if _STOP_SIGNALS:  # the signal's exception landed inside a lock's own code (queue.get) and surfaced as
                _exit_stopped(_STOP_SIGNALS[0] == signal.SIGTERM)  # another one (RuntimeError): still a clean stop
            if not isinstance(exc, OSError) or exc.errno not in WRITE_ERRNOS:
                raise
            _report_write_failure(exc)

    return wrapper


def print_json_line(data: dict) -> None:
    """The last stdout line of machine-readable commands: one JSON object."""
    typer.echo(json.dumps(data, allow_nan=False))


# Options shared by the commands that analyse files (predict, batch): declared once, so they cannot drift apart.
ModelOption = Annotated[Optional[str], typer.Option("--model", help="Registered model (face or speech by file type).")]
BackendOption = Annotated[Optional[str], typer.Option("--backend", help="torch, onnxruntime or auto.")]
DeviceOption = Annotated[Optional[str], typer.Option("--device", help="cpu, cuda or auto.")]
StepOption = Annotated[int, typer.Option("--step", min=1, help="Videos: analyse every N-th frame.")]
ThresholdOption = Annotated[Optional[float], typer.Option("--threshold", help="Face detector score threshold.")]
FaceOnlyOption = Annotated[bool, typer.Option("--face-only", help="Videos: faces only, the sound track is not "
                                              "fused.")]
TrackOption = Annotated[str, typer.Option("--track", help="Videos: whom the fused stream follows: largest, all (one "
                                          "per person) or a track id.")]

# The face output prior, one option for every command that runs the face model (live, predict, eval vision).
PriorOption = Annotated[Optional[str], typer.Option("--prior", help="Face output prior: blend (the default: FER+'s "
                                                    "class frequencies half divided out), balanced (all of them) or "
                                                    "train (kept).")]

# The speech output prior (affect eval audio): the same three modes, over the training speakers' class frequencies.
SpeechPriorOption = Annotated[Optional[str], typer.Option("--prior", help="Speech output prior: train (the "
                                                          "model's default: the training speakers' class "
                                                          "frequencies kept), balanced (divided out) or blend "
                                                          "(half).")]
