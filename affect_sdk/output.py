"""Writing results safely: whole JSON lines only, report files replaced atomically, write failures as OutputError.

A full disk, an I/O error or a closed pipe must cost at most the record being written: lines already written stay
valid JSON (a failed line is cut back to the last newline) and a report file is either the old one or the new one.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

from affect_sdk.errors import InputError, OutputError

# errno values that only a write gives: "this output cannot take more data" (the CLI turns them into one line)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EPIPE, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def output_error(target: str | Path, exc: OSError, kept: str = "") -> OutputError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"Cannot write {target}: {reason}{kept}.")


class JsonlWriter:
    """Writes one JSON object per line, each with one unbuffered write, so a crash or Ctrl-C loses nothing written
    so far; a write that fails (disk full, I/O error, closed pipe) is cut back to the last whole line and raised
    as one OutputError."""

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Appends to `path` (created if missing); `overwrite` empties an existing file first."""
        self.path = Path(path)
        self.records = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if overwrite else 0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise OutputError(f"Cannot write JSON Lines file {self.path}: {exc.strerror or exc}.") from None
        self._end = self._size()  # the file's length after the last whole line

    def _size(self) -> int | None:
        try:
            return os.lseek(self._fd, 0, os.SEEK_END)
        except OSError:  # pipes and character devices have no length to come back to
            return None

    def write(self, record: Any) -> None:
        if self._fd is None:
            raise OutputError(f"JSON Lines file {self.path} is closed (an earlier write failed or it was closed).")
        data = record.to_dict() if hasattr(record, "to_dict") else record
        try:
            line = (json.dumps(data, allow_nan=False) + "\n").encode("utf-8")
        except (TypeError, ValueError) as exc:  # refused before a byte is written; the file stays as it was
            raise InputError(f"Record {str(data)[:80]} cannot be written as JSON: {exc}.") from None
        try:
            view = memoryview(line)
            while view:  # os.write may take only part of a line (a nearly full disk): go on until it is whole
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            self._cut_back()
            self.close()
            raise output_error(self.path, exc, f"; the {self.records} records before it are complete") from None
        self.records += 1
        if self._end is not None:
            self._end += len(line)

    def _cut_back(self) -> None:
        if self._end is not None:
            try:
                os.ftruncate(self._fd, self._end)
            except OSError:  # nothing more can be done on a failing disk; readers skip an unterminated line
                pass

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:  # a delayed write error (NFS): every line was already handed over whole
                pass

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _process_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: done once, at import, before any threads
    os.umask(mask)
    return mask


_UMASK = _process_umask()


def _mode_for(path: Path) -> int:
    """The permission bits `path` keeps if it exists, else those a plain open() would give a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def replace_file(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Run `write(temporary path)` beside `path`, then rename it over `path`: a failure leaves no half file."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:  # a read-only or missing folder
        raise output_error(path, exc) from None
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        with contextlib.suppress(OSError):  # a filesystem without modes (vfat) still gets the file
            os.chmod(temporary, _mode_for(path))  # mkstemp's 0600 would hide it from everyone else
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise output_error(path, exc) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_file(path: str | Path, text: str) -> Path:
    """`path` holding exactly `text` (UTF-8), written atomically."""
    return replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
