"""Which files a batch covers: files as given, folders searched recursively for images, videos and sounds."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from affect_sdk.errors import InputError

from affect_sdk.media import IMAGE_SUFFIXES, MEDIA_SUFFIXES, SOUND_SUFFIXES, VIDEO_SUFFIXES  # noqa: F401


def media_kind(path: str | Path) -> str | None:
    """"image", "video", "sound" by file extension, or None."""
    suffix = Path(path).suffix.lower()
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("video", VIDEO_SUFFIXES), ("sound", SOUND_SUFFIXES)):
        if suffix in suffixes:
            return kind
    return None


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (any extension: the reader decides), then each folder's media files, recursively, sorted.

    A path that does not exist is one InputError naming it; a folder with no media file in it is one too."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise InputError(f"Folder {path} holds no image, video or sound file (searched recursively for "
                                 f"{', '.join(MEDIA_SUFFIXES)}).")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"File {path} does not exist; expected an image, a video, a sound file or a folder.")
    return out
