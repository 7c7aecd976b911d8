"""The WebSocket protocol of `affect serve` (affect-stream/1): parse and validate client messages, build records.

Every check a message can fail raises `ProtocolError` (an InputError) with one sentence; the server answers it
with an error record and keeps the connection open. Nothing here decodes a JPEG before its header has said how
many pixels it holds, so a small file that claims a huge image never reaches the decoder. docs/protocol.md is
the same protocol in prose, for people writing clients in other languages.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from affect_sdk import records
from affect_sdk.errors import InputError
from affect_sdk.fusion.sync import SyncConfig
from affect_sdk.records import sync_options  # noqa: F401 (serve.app imports it from here)

PROTOCOL = "affect-stream/1"
MAX_T_S = 1e7  # about 116 days: a stream time beyond this is a client bug, not a long session
SAMPLE_RATES = (8000, 96000)  # accepted audio sample rates, inclusive
CONFIG_KEYS = {"rule": "fusion rule", "smoothing": "smoothing time constant in seconds (0 or null: off)"}


class ProtocolError(InputError):
    """A client message that does not follow the protocol; answered with an error record."""


@dataclass(frozen=True)
class Limits:
    """What one client may send. The defaults allow a 1080p JPEG at 15 fps and hold about 10 s of audio backlog."""

    max_message_bytes: int = 2_000_000  # larger messages are refused by the WebSocket layer (close code 1009)
    max_frame_pixels: int = 1920 * 1080
    max_connections: int = 8
    max_pending_frames: int = 2  # frames waiting for analysis per connection; older ones are dropped
    max_audio_backlog_s: float = 10.0  # audio waiting for analysis; beyond it the server stops reading (no drops)
    max_audio_chunk_s: float = 5.0
    idle_timeout_s: float = 30.0


@dataclass(frozen=True)
class FrameMessage:
    t: float
    jpeg: bytes
    width: int
    height: int


@dataclass(frozen=True)
class AudioMessage:
    t: float
    sample_rate: int
    samples: np.ndarray  # float32 mono in [-1, 1)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class ConfigMessage:
    sync: dict[str, Any]  # SyncConfig field -> value, already validated
    unknown: tuple[str, ...]  # keys this server does not know; reported, not applied


@dataclass(frozen=True)
class EndMessage:
    pass


Message = Union[FrameMessage, AudioMessage, ConfigMessage, EndMessage]


# ---------------------------------------------------------------- parsing
def parse_message(text: str, limits: Limits = Limits()) -> Message:
    """One client text message -> a typed message; ProtocolError says what is wrong with it."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("The message is not valid JSON; send one JSON object per WebSocket text message.") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"The message is a JSON {type(data).__name__}; expected an object with a \"type\".")
    kind = data.get("type")
    if kind == "frame":
        return _frame(data, limits)
    if kind == "audio":
        return _audio(data, limits)
    if kind == "config":
        return _config(data)
    if kind == "end":
        return EndMessage()
    raise ProtocolError(f"Unknown message type {kind!r}; expected frame, audio, config or end.")


def _time(data: dict) -> float:
    t = data.get("t")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= MAX_T_S:  # NaN fails 0 <= t too
        raise ProtocolError(f"\"t\" must be a number of seconds between 0 and {MAX_T_S:g}; got {t!r}.")
    return float(t)


def _base64(data: dict, key: str) -> bytes:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"\"{key}\" must be a non-empty base64 string.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"\"{key}\" is not valid base64.") from None


def _frame(data: dict, limits: Limits) -> FrameMessage:
    t = _time(data)
    jpeg = _base64(data, "jpeg")
    width, height = jpeg_size(jpeg)
    if width * height > limits.max_frame_pixels:
        raise ProtocolError(f"The frame is {width}x{height} pixels; at most {limits.max_frame_pixels} pixels "
                            "are accepted (scale it down before sending).")
    return FrameMessage(t=t, jpeg=jpeg, width=width, height=height)


def _audio(data: dict, limits: Limits) -> AudioMessage:
    t = _time(data)
    rate = data.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
        raise ProtocolError(f"\"sample_rate\" must be an integer number of Hz from {SAMPLE_RATES[0]} to "
                            f"{SAMPLE_RATES[1]}; got {rate!r}.")
    pcm = _base64(data, "pcm16")
    if len(pcm) % 2:
        raise ProtocolError(f"\"pcm16\" holds {len(pcm)} bytes; 16-bit samples need an even number.")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    if len(samples) > limits.max_audio_chunk_s * rate:
        raise ProtocolError(f"The audio chunk lasts {len(samples) / rate:.2f} s; send at most "
                            f"{limits.max_audio_chunk_s:g} s per message.")
    return AudioMessage(t=t, sample_rate=rate, samples=samples)


def _config(data: dict) -> ConfigMessage:
    sync: dict[str, Any] = {}
    if "rule" in data:
        sync["rule"] = data["rule"]
    if "smoothing" in data:
        tau = data["smoothing"]
        if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau <= 3600):
            raise ProtocolError(f"\"smoothing\" must be a number of seconds from 0 to 3600, or null; got {tau!r}.")
        sync["smoothing_tau_s"] = None if not tau else float(tau)
    if "rule" in sync and not isinstance(sync["rule"], str):
        raise ProtocolError(f"\"rule\" must be a string; got {sync['rule']!r}.")
    SyncConfig(**sync)  # the fusion's own validation: an unknown rule or a negative time raises InputError here
    unknown = tuple(sorted(str(k) for k in data if k != "type" and k not in CONFIG_KEYS))
    return ConfigMessage(sync=sync, unknown=unknown)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from a JPEG's start-of-frame header, without decoding any pixel."""
    from affect_sdk.vision.image_header import image_size

    if data[:2] != b"\xff\xd8":
        raise ProtocolError("\"jpeg\" does not hold a JPEG image (no JPEG start marker).")
    size = image_size(data)
    if size is None or not all(size):
        raise ProtocolError("\"jpeg\" is not a complete JPEG image (no frame header with a size).")
    return size


def decode_jpeg(message: FrameMessage) -> np.ndarray:
    """The frame as a BGR uint8 image; ProtocolError when the JPEG is corrupt or its header lied about its size."""
    import cv2

    image = cv2.imdecode(np.frombuffer(message.jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (message.height, message.width):
        raise ProtocolError(f"The JPEG of the frame at t={message.t:g} s could not be decoded.")
    return image


# ---------------------------------------------------------------- records the server sends
def session_header(*, models: dict[str, dict[str, str]], sync: SyncConfig, limits: Limits) -> dict[str, Any]:
    """The first record of every connection: the JSONL's session record (affect_sdk.records, the same schema), plus
    the protocol, whose clock the times are on, and the limits."""
    return records.session_header(
        models=models, inputs={"stream": "client"}, options=sync_options(sync),
        protocol=PROTOCOL,
        clock="client",  # every t is on the client's own clock, the t it sent
        limits={"max_message_bytes": limits.max_message_bytes, "max_frame_pixels": limits.max_frame_pixels,
                "max_pending_frames": limits.max_pending_frames, "max_audio_chunk_s": limits.max_audio_chunk_s,
                "idle_timeout_s": limits.idle_timeout_s})


def event_record(t: float | None, message: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "event", "t": None if t is None else round(t, 6), "message": message, **extra}


def error_record(message: str) -> dict[str, Any]:
    return {"kind": "error", "message": message}


def dumps(record: Any) -> str:
    """A result dataclass or a record dict as one JSON text message (the JSONL line format, without the newline)."""
    data = record.to_dict() if hasattr(record, "to_dict") else record
    return json.dumps(data, allow_nan=False)
