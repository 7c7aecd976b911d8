"""Checks at the public edge: each bad argument is one InputError that names it, before it reaches a thread or a
native library (an infinite duration once raised OverflowError inside the microphone thread and lost the audio)."""
from __future__ import annotations

import math
import numbers
import os
from typing import Any

from affect_sdk.errors import InputError

# Images and video frames above this many pixels are refused from their header, before decoding: a 2.7 MB PNG of
# 30000x30000 once took 2-5.6 GB to decode. 100 MP is a 12000x8000 photo (300 MB as BGR). $AFFECT_MAX_PIXELS
# changes it.
MAX_PIXELS = 100_000_000


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number; got {value!r}.")
    value = float(value)
    if math.isnan(value):
        raise InputError(f"{name} must be a number; got NaN.")
    return value


def duration_seconds(name: str, value: Any) -> float | None:
    """A positive number of seconds; None or +inf mean "no limit" (returned as None)."""
    if value is None:
        return None
    seconds = _number(name, value)
    if not seconds > 0:
        raise InputError(f"{name} must be a positive number of seconds; got {value!r}.")
    return None if math.isinf(seconds) else seconds


def finite_number(name: str, value: Any, unit: str = "") -> float:
    """Any finite number (not NaN, not infinite, not a bool)."""
    number = _number(name, value)
    if math.isinf(number):
        raise InputError(f"{name} must be a finite number{' of ' + unit if unit else ''}; got {value!r}.")
    return number


def finite_time(name: str, value: Any) -> float:
    """A time stamp in seconds: any finite number."""
    return finite_number(name, value, "seconds")


def probability(name: str, value: Any) -> float | None:
    """A threshold between 0 and 1 (None: the default)."""
    if value is None:
        return None
    p = _number(name, value)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{name} must be between 0 and 1; got {value!r}.")
    return p


def pixel_limit(max_pixels: int | None = None) -> int:
    """The largest image (width x height) accepted: the argument, else $AFFECT_MAX_PIXELS, else MAX_PIXELS."""
    if max_pixels is None:
        text = os.environ.get("AFFECT_MAX_PIXELS", "").strip()
        if not text:
            return MAX_PIXELS
        if not text.isdigit() or int(text) < 64:
            raise InputError(f"AFFECT_MAX_PIXELS must be a whole number of pixels of at least 64; got {text!r}.")
        return int(text)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 64:
        raise InputError(f"max_pixels must be a whole number of pixels of at least 64; got {max_pixels!r}.")
    return max_pixels


def check_video_frame_size(capture: Any, where: object) -> None:
    """Refuse an opened cv2.VideoCapture whose frames exceed the pixel limit, from the container's header, before
    a frame is decoded (the capture is released)."""
    import cv2

    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    if width * height > pixel_limit():
        capture.release()
        raise InputError(f"{where} has {width:.0f}x{height:.0f} frames, more than the {pixel_limit():,} pixels this "
                         "tool accepts (AFFECT_MAX_PIXELS).")
