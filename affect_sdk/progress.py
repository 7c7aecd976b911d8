"""Progress bars with ETA on stderr, only when stderr is a terminal and the user did not ask for --quiet: logs, pipes
and CI stay clean, and stdout (JSON lines, tables) is never touched."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator


def wanted(quiet: bool = False) -> bool:
    """Whether to draw bars: not --quiet, and stderr is an interactive terminal."""
    try:
        return not quiet and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


class Bars:
    """A rich Progress on stderr (or nothing: every method is then a no-op, so callers need no `if`)."""

    def __init__(self, enabled: bool) -> None:
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      console=Console(stderr=True), transient=True)

    def add(self, description: str, total: float | None = None) -> int | None:
        return None if self._progress is None else self._progress.add_task(description, total=total)

    def advance(self, task: int | None, steps: float = 1.0, **fields) -> None:
        if self._progress is not None and task is not None:
            self._progress.update(task, advance=steps, **fields)

    def set(self, task: int | None, completed: float | None = None, **fields) -> None:
        if self._progress is not None and task is not None:
            self._progress.update(task, completed=completed, **fields)

    def remove(self, task: int | None) -> None:
        if self._progress is not None and task is not None:
            self._progress.remove_task(task)


@contextmanager
def progress_bars(quiet: bool = False) -> Iterator[Bars]:
    bars = Bars(wanted(quiet))
    if bars._progress is not None:
        bars._progress.start()
    try:
        yield bars
    finally:
        if bars._progress is not None:
            bars._progress.stop()
