"""Input sources for a live session: cameras and video files, microphones and sound files, and the frame slot.

A camera is `cv2.VideoCapture` on an index, a video file or an image-sequence pattern (`frames/%04d.png`); file
sources are paced at their own frame rate unless `fast`. A microphone is a PortAudio device (index or name) via
sounddevice, or a sound/video file whose audio is played at real speed. Files are stamped in media time, devices
on the session clock; paced files start with the session clock, so both time bases agree.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from affect_sdk.checks import check_video_frame_size
from affect_sdk.clock import SessionClock
from affect_sdk.errors import AffectError, DeviceError, InputError
from affect_sdk.media import SOUND_SUFFIXES, VIDEO_SUFFIXES

DEMO_CLIP = "ravdess-01-01-08-02-02-02-01.mp4"  # actor 01, surprised, strong; see assets/NOTICE
MIC_CHUNK_S = 0.05  # PortAudio block and file-reader chunk length
AUDIO_QUEUE_S = 600.0  # the speech thread may fall this far behind before the microphone overflows
CAMERA_STALL_S = 2.0  # a device that returns no frame for this long has stopped
MIC_STALL_S = 3.0


def demo_clip() -> Path:
    """The audio-visual sample shipped in the package (RAVDESS actor 01, surprised; CC BY-NC-SA 4.0)."""
    return Path(str(resources.files("affect_sdk") / "assets" / DEMO_CLIP))


# ---------------------------------------------------------------- small thread-safe pieces
@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # HxWx3 uint8 BGR
    t: float  # session time (media time for files)
    captured: float  # time.monotonic() when the frame was captured (released, for paced files)
    index: int


class FrameSlot:
    """Holds the newest unread frame. Live: a new frame replaces an unread one (counted as dropped). Blocking
    (fast file processing): the reader waits, so every frame is analysed."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.dropped = 0
        self._frame: Frame | None = None
        self._ended = False
        self._cond = threading.Condition()

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._cond:
            while not self.drop and self._frame is not None and not stop.is_set():
                self._cond.wait(0.1)
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None | bool:
        """The newest frame; None on timeout; False once the source has ended and every frame was taken."""
        with self._cond:
            if self._frame is None and not self._ended:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            if frame is None and self._ended:
                return False
            return frame


_END = object()  # end of a source, in its queue


# ---------------------------------------------------------------- camera
def _parse_camera(camera: int | str | Path) -> int | str:
    if isinstance(camera, int):
        return camera
    text = str(camera).strip()
    return int(text) if text.isdigit() else text


def _quiet_opencv():
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return level


class CameraSource:
    """cv2.VideoCapture on a device index, a video file or an image sequence; one reader thread."""

    def __init__(self, camera: int | str | Path, *, fast: bool = False) -> None:
        import cv2

        self.spec = _parse_camera(camera)
        self.is_file = not isinstance(self.spec, int)
        if self.is_file and "%" not in str(self.spec) and not Path(self.spec).is_file():
            raise InputError(f"Camera source {self.spec!r} is neither a camera index nor an existing video file "
                             "or image sequence pattern (like frames/%04d.png).")
        level = _quiet_opencv()
        try:
            self.capture = cv2.VideoCapture(self.spec)
            opened = self.capture.isOpened()
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not opened:
            self.capture.release()
            if self.is_file:
                raise InputError(f"Cannot read {self.spec} as a video or image sequence; expected a video file "
                                 "(mp4, avi, mkv, ...) or a pattern like frames/%04d.png matching image files.")
            raise DeviceError(f"Camera {self.spec} could not be opened; check that it is plugged in and not used by "
                              "another program, pick another index with --camera, or pass a video file.")
        check_video_frame_size(self.capture, self.spec)  # before any frame is decoded
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 1.0 <= fps <= 1000.0 else 30.0
        self.fast = fast and self.is_file
        self.name = f"camera {self.spec}" if not self.is_file else f"video {self.spec}"
        self.slot = FrameSlot(drop=not self.fast)
        self.captured = 0

    def run(self, clock: SessionClock, stop: threading.Event, duration: float | None,
            warn: Callable[[str], None]) -> None:
        """Reader thread body: read, stamp, pace (files), hand over the newest frame; end the slot when done."""
        try:
            self._read_loop(clock, stop, duration, warn)
        except Exception as exc:  # a driver error ends video only; the session goes on with the microphone
            warn(f"{self.name} failed ({exc}); going on without video.")
        finally:
            self.capture.release()
            self.slot.end()

    def _read_loop(self, clock, stop, duration, warn) -> None:
        failing_since = None
        index = 0
        while not stop.is_set():
            ok, image = self.capture.read()
            now = time.monotonic()
            if not ok or image is None:
                if self.is_file:
                    return  # the file ended; the session notes it and goes on with audio
                failing_since = failing_since or now
                if now - failing_since > CAMERA_STALL_S:
                    warn(f"{self.name} stopped returning frames; going on without video.")
                    return
                time.sleep(0.01)
                continue
            failing_since = None
            if self.is_file:
                t = index / self.fps
                if duration is not None and t >= duration:
                    return
                if not self.fast:
                    _sleep_until(clock.start + t, stop)
                    now = time.monotonic()
            else:
                t = clock.at(now)
                if duration is not None and t >= duration:
                    return
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            self.captured += 1
            self.slot.put(Frame(image=image, t=t, captured=now, index=index), stop)
            index += 1


def _sleep_until(deadline: float, stop: threading.Event) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        stop.wait(delay)


# ---------------------------------------------------------------- microphone
_SOUND_SUFFIXES = set(SOUND_SUFFIXES + VIDEO_SUFFIXES)  # a video's sound track can be the microphone


def _looks_like_path(mic: str) -> bool:
    p = Path(mic)
    return p.suffix.lower() in _SOUND_SUFFIXES or "/" in mic or "\\" in mic or p.exists()


class MicFileSource:
    """A sound file (or a video's audio track) played as a microphone: chunks released at real speed unless fast."""

    def __init__(self, path: str | Path, *, fast: bool = False) -> None:
        from affect_sdk.audio.features import iter_audio_blocks

        self.path = Path(path)
        self.rate, self._blocks = iter_audio_blocks(self.path, block_s=MIC_CHUNK_S)  # InputError on bad files
        self.fast = fast
        self.name = f"audio of {self.path.name}"
        self.queue: queue.Queue = queue.Queue(maxsize=int(AUDIO_QUEUE_S / MIC_CHUNK_S))
        self.overflows = 0
        self.t_first = 0.0

    def start(self, clock: SessionClock, stop: threading.Event, duration: float | None,
              warn: Callable[[str], None]) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(clock, stop, duration, warn), name="affect-mic-file",
                                  daemon=True)
        thread.start()
        return thread

    def _run(self, clock, stop, duration, warn) -> None:
        done = 0  # samples released so far
        try:
            for block in self._blocks:
                if stop.is_set():
                    break
                t = done / self.rate
                if duration is not None and t >= duration:
                    break
                block = block[:, 0] if block.ndim == 2 else block
                if duration is not None:
                    block = block[: max(1, int(round((duration - t) * self.rate)))]
                done += len(block)
                if not self.fast:
                    _sleep_until(clock.start + done / self.rate, stop)  # a chunk exists once its last sample played
                _put_blocking(self.queue, (np.ascontiguousarray(block, dtype=np.float32), t), stop)
        except AffectError as exc:
            warn(f"{exc} Going on without audio.")
        finally:
            _put_blocking(self.queue, _END, stop, force=True)

    def close(self) -> None:
        pass


def _put_blocking(q: queue.Queue, item: Any, stop: threading.Event, force: bool = False) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set() and not force:
                return
            if stop.is_set():  # make room for the end marker: the session is closing anyway
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass


def _import_sounddevice():
    try:
        import sounddevice as sd
    except OSError as exc:  # the PortAudio library itself is missing
        raise DeviceError(f"No microphone can be used: PortAudio is not available ({exc}); install libportaudio2, "
                          "or use --mic PATH / --no-audio.") from None
    return sd


def _input_devices(sd) -> list[str]:
    try:
        return [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    except Exception:  # PortAudio errors are untyped
        return []


class MicDeviceSource:
    """A PortAudio input device through sounddevice; the callback only copies chunks into a bounded queue."""

    def __init__(self, device: str | int = "default", *, sample_rate: int = 16000) -> None:
        sd = self._sd = _import_sounddevice()
        inputs = _input_devices(sd)
        if not inputs:
            raise DeviceError("No microphone found (PortAudio lists no input device); plug one in, start "
                              "PulseAudio/PipeWire, or use --mic PATH / --no-audio.")
        spec: str | int | None = device
        if isinstance(device, str) and device.strip().isdigit():
            spec = int(device)
        if spec in ("default", "", None):
            spec = None
        try:
            info = sd.query_devices(spec, kind="input")
        except (ValueError, sd.PortAudioError):
            raise DeviceError(f"No microphone named {device!r}; input devices here: {', '.join(inputs)}.") from None
        if info["max_input_channels"] < 1:
            raise DeviceError(f"Device {device!r} ({info['name']}) has no input channels; "
                              f"input devices here: {', '.join(inputs)}.")
        self.device = spec
        self.name = f"microphone {info['name']}"
        try:
            sd.check_input_settings(device=spec, channels=1, samplerate=sample_rate, dtype="float32")
            self.rate = float(sample_rate)
        except Exception:  # the device cannot record at 16 kHz: record at its own rate, the speech stream resamples
            self.rate = float(info["default_samplerate"])
        self.queue: queue.Queue = queue.Queue(maxsize=int(AUDIO_QUEUE_S / MIC_CHUNK_S))
        self.overflows = 0  # PortAudio input overflows plus chunks lost on a full queue
        self.t_first: float | None = None
        self._next_t: float | None = None
        self._stream = None
        self._ended = threading.Event()

    def start(self, clock: SessionClock, stop: threading.Event, duration: float | None,
              warn: Callable[[str], None]) -> threading.Thread:
        sd = self._sd
        warned = []

        def callback(indata, frames, time_info, status) -> None:
            if self._ended.is_set():
                raise sd.CallbackStop
            now = clock.now()
            if status.input_overflow:
                self.overflows += 1
                if not warned:
                    warned.append(True)
                    warn(f"{self.name} overflowed (audio was lost before affect-sdk got it); results may have gaps.")
            if self._next_t is None:
                self._next_t = self.t_first = max(0.0, now - frames / self.rate)
            t = self._next_t
            self._next_t += frames / self.rate
            try:
                self.queue.put_nowait((indata[:, 0].copy(), t))
            except queue.Full:
                self.overflows += 1
                if not warned:
                    warned.append(True)
                    warn(f"Speech analysis fell {AUDIO_QUEUE_S:g} s behind {self.name}; audio is being lost.")
            if (duration is not None and self._next_t >= duration) or stop.is_set():
                self._finish()
                raise sd.CallbackStop

        def finished() -> None:
            if not self._ended.is_set() and not stop.is_set():
                warn(f"{self.name} stopped delivering audio; going on without audio.")
            self._finish()

        try:
            self._stream = sd.InputStream(device=self.device, channels=1, samplerate=self.rate, dtype="float32",
                                          blocksize=int(self.rate * MIC_CHUNK_S), callback=callback,
                                          finished_callback=finished)
            self._stream.start()
        except Exception as exc:  # PortAudio errors are untyped
            raise DeviceError(f"{self.name} could not be opened for recording ({exc}).") from None
        watchdog = threading.Thread(target=self._watch, args=(stop, warn), name="affect-mic-watch", daemon=True)
        watchdog.start()
        return watchdog

    def _finish(self) -> None:
        if not self._ended.is_set():
            self._ended.set()
            try:
                self.queue.put_nowait(_END)
            except queue.Full:
                pass  # the speech thread notices the ended flag

    def _watch(self, stop: threading.Event, warn: Callable[[str], None]) -> None:
        """A device that silently stops calling back (unplugged) ends audio after MIC_STALL_S."""
        last_size, last_change = -1.0, time.monotonic()
        while not self._ended.is_set() and not stop.wait(0.25):
            progress = self._next_t if self._next_t is not None else -1.0
            if progress != last_size:
                last_size, last_change = progress, time.monotonic()
            elif time.monotonic() - last_change > MIC_STALL_S:
                warn(f"{self.name} delivered no audio for {MIC_STALL_S:g} s; going on without audio.")
                self._finish()
        if stop.is_set():
            self._finish()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def close(self) -> None:
        self._ended.set()
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # closing a device that vanished may fail; nothing left to save
                pass
            self._stream = None


def open_microphone(mic: str | int | Path, *, fast: bool = False) -> MicFileSource | MicDeviceSource:
    """A sound/video file path -> played file; 'default', an index or a device name -> PortAudio device."""
    if isinstance(mic, Path) or (isinstance(mic, str) and _looks_like_path(mic)):
        if not Path(mic).is_file():
            raise InputError(f"Microphone source {str(mic)!r} looks like a file path, but no such file exists.")
        return MicFileSource(mic, fast=fast)
    return MicDeviceSource(mic)


# ---------------------------------------------------------------- the session
