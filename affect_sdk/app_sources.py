"""Sources an app feeds itself: `Session(frames=..., audio=...)` for apps that own their camera and microphone.

`frames` is any iterable of BGR uint8 images (HxWx3, or HxW gray), or of `(t, image)` pairs stamped by the app in
seconds; bare images are stamped on the session clock when they arrive. `audio` is any iterable of mono chunks
(float32 in [-1, 1] or int16) at `audio_rate` Hz, or of `(t, chunk)` pairs; chunks are stamped by the samples
counted so far. Each iterable is read in its own thread, so a generator may block while it waits for the device.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

import numpy as np

from affect_sdk.clock import SessionClock
from affect_sdk.errors import InputError
from affect_sdk.sources import AUDIO_QUEUE_S, MIC_CHUNK_S, _END, Frame, FrameSlot, _put_blocking


def _split_stamp(item: Any, kind: str) -> tuple[float | None, Any]:
    if isinstance(item, tuple) and len(item) == 2:
        t, data = item
        try:
            return float(t), data
        except (TypeError, ValueError):
            raise InputError(f"A ({kind}) pair must start with its time in seconds; got {t!r}.") from None
    return None, item


def _as_bgr(image: Any) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise InputError(f"A frame must be a uint8 image, HxWx3 (BGR) or HxW (gray); got {image.dtype} "
                         f"{image.shape}.")
    if image.ndim == 2 or image.shape[2] == 1:
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    return image


class FrameIterableSource:
    """The camera role, played by the app's own frames (see the module docstring)."""

    def __init__(self, frames: Iterable, *, fast: bool = False) -> None:
        try:
            self._frames = iter(frames)
        except TypeError:
            raise InputError(f"frames must be an iterable of images; got {type(frames).__name__}.") from None
        self.name = "frames from the app"
        self.is_file = False
        self.fast = fast
        self.slot = FrameSlot(drop=not fast)  # live apps: the newest frame wins, as with a camera
        self.captured = 0
        self.capture = self  # Session releases `capture` when it never started

    def release(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            try:
                close()
            except (RuntimeError, ValueError):  # a generator running in the reader thread: it ends by itself
                pass

    def run(self, clock: SessionClock, stop: threading.Event, duration: float | None,
            warn: Callable[[str], None]) -> None:
        import time

        try:
            for index, item in enumerate(self._frames):
                if stop.is_set():
                    break
                t, image = _split_stamp(item, "t, frame")
                now = time.monotonic()
                t = clock.at(now) if t is None else t
                if duration is not None and t >= duration:
                    break
                self.captured += 1
                self.slot.put(Frame(image=_as_bgr(image), t=t, captured=now, index=index), stop)
        except InputError as exc:
            warn(f"{exc} Going on without video.")
        except Exception as exc:  # the app's generator failed: video ends, the session goes on with audio
            warn(f"The frames iterable failed ({exc}); going on without video.")
        finally:
            self.slot.end()


class AudioIterableSource:
    """The microphone role, played by the app's own audio chunks (see the module docstring)."""

    def __init__(self, chunks: Iterable, *, rate: float = 16000.0) -> None:
        if not (isinstance(rate, (int, float)) and 1000 <= rate <= 384000):
            raise InputError(f"audio_rate must be a sample rate in Hz between 1000 and 384000; got {rate!r}.")
        try:
            self._chunks = iter(chunks)
        except TypeError:
            raise InputError(f"audio must be an iterable of sample chunks; got {type(chunks).__name__}.") from None
        import queue

        self.rate = float(rate)
        self.name = "audio from the app"
        self.queue: queue.Queue = queue.Queue(maxsize=int(AUDIO_QUEUE_S / MIC_CHUNK_S))
        self.overflows = 0
        self.t_first = 0.0

    def start(self, clock: SessionClock, stop: threading.Event, duration: float | None,
              warn: Callable[[str], None]) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(stop, duration, warn), name="affect-app-audio", daemon=True)
        thread.start()
        return thread

    def _run(self, stop: threading.Event, duration: float | None, warn: Callable[[str], None]) -> None:
        done = 0
        try:
            for item in self._chunks:
                if stop.is_set():
                    break
                t, chunk = _split_stamp(item, "t, chunk")
                chunk = np.asarray(chunk)
                if chunk.dtype == np.int16:
                    chunk = chunk.astype(np.float32) / 32768.0
                if chunk.ndim == 2:
                    chunk = chunk.mean(axis=1)
                if chunk.ndim != 1 or not np.issubdtype(chunk.dtype, np.floating):
                    raise InputError(f"An audio chunk must be mono samples, float in [-1, 1] or int16; got "
                                     f"{chunk.dtype} {chunk.shape}.")
                t = done / self.rate if t is None else t
                if duration is not None and t >= duration:
                    break
                done += len(chunk)
                _put_blocking(self.queue, (np.ascontiguousarray(chunk, dtype=np.float32), t), stop)
        except InputError as exc:
            warn(f"{exc} Going on without audio.")
        except Exception as exc:  # the app's generator failed
            warn(f"The audio iterable failed ({exc}); going on without audio.")
        finally:
            _put_blocking(self.queue, _END, stop, force=True)

    def close(self) -> None:
        pass
