"""affect_sdk.serve.protocol: every client message is validated, and a bad one says what is wrong in one sentence."""
import base64
import json

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install -e '.[serve]'")

from affect_sdk.errors import InputError  # noqa: E402
from affect_sdk.serve.protocol import (AudioMessage, ConfigMessage, EndMessage, FrameMessage, Limits,  # noqa: E402
                                       ProtocolError, decode_jpeg, jpeg_size, parse_message)


def jpeg_bytes(width: int = 64, height: int = 48, progressive: bool = False) -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    flags = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    return cv2.imencode(".jpg", image, flags)[1].tobytes()


def frame_text(jpeg: bytes, t: float = 0.5) -> str:
    return json.dumps({"type": "frame", "t": t, "jpeg": base64.b64encode(jpeg).decode()})


def claim_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with a start-of-frame header that claims another size (a decompression bomb's trick)."""
    at = next(i for i in range(len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC0, 0xC2))
    return jpeg[:at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 9:]


def test_jpeg_size_reads_the_header_of_baseline_and_progressive_jpegs():
    assert jpeg_size(jpeg_bytes(64, 48)) == (64, 48)
    assert jpeg_size(jpeg_bytes(33, 17, progressive=True)) == (33, 17)


def test_a_frame_round_trips_to_a_decoded_bgr_image():
    message = parse_message(frame_text(jpeg_bytes(64, 48), t=1.25))
    assert isinstance(message, FrameMessage) and (message.t, message.width, message.height) == (1.25, 64, 48)
    assert decode_jpeg(message).shape == (48, 64, 3)


def test_a_frame_claiming_too_many_pixels_is_refused_before_decoding():
    bomb = claim_size(jpeg_bytes(), 30000, 30000)
    with pytest.raises(ProtocolError, match="30000x30000 pixels"):
        parse_message(frame_text(bomb), Limits(max_frame_pixels=1920 * 1080))


def test_a_jpeg_cut_after_its_header_passes_parsing_but_not_decoding():
    cut = parse_message(frame_text(jpeg_bytes(64, 48)[:400], t=3.0))
    assert (cut.width, cut.height) == (64, 48)
    with pytest.raises(ProtocolError, match="frame at t=3 s could not be decoded"):
        decode_jpeg(cut)


@pytest.mark.parametrize("payload, match", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON list"),
    ('{"type": "video"}', "Unknown message type 'video'"),
    ('{"type": "frame", "t": NaN, "jpeg": "AAAA"}', '"t" must be a number'),
    ('{"type": "frame", "t": -1, "jpeg": "AAAA"}', '"t" must be a number'),
    ('{"type": "frame", "t": true, "jpeg": "AAAA"}', '"t" must be a number'),
    ('{"type": "frame", "t": 1e999, "jpeg": "AAAA"}', '"t" must be a number'),
    ('{"type": "frame", "t": 1' + "0" * 1000 + ', "jpeg": "AAAA"}', '"t" must be a number'),
    ('{"type": "frame", "t": 0, "jpeg": "%%%"}', "not valid base64"),
    ('{"type": "frame", "t": 0, "jpeg": "iVBORw0KGgo="}', "does not hold a JPEG"),
    ('{"type": "frame", "t": 0, "jpeg": "/9j/"}', "not a complete JPEG"),
    ('{"type": "audio", "t": 0, "sample_rate": 44100.5, "pcm16": "AAAA"}', '"sample_rate" must be an integer'),
    ('{"type": "audio", "t": 0, "sample_rate": 100, "pcm16": "AAAA"}', '"sample_rate" must be an integer'),
    ('{"type": "audio", "t": 0, "sample_rate": 16000, "pcm16": "AAAA"}', "even number"),
    ('{"type": "audio", "t": 0, "sample_rate": 16000}', '"pcm16" must be a non-empty base64 string'),
    ('{"type": "config", "rule": "loudest"}', "Unknown fusion rule 'loudest'"),
    ('{"type": "config", "rule": 3}', '"rule" must be a string'),
    ('{"type": "config", "smoothing": -1}', '"smoothing" must be a number of seconds from 0 to 3600'),
    ('{"type": "config", "smoothing": "slow"}', '"smoothing" must be a number'),
])
def test_bad_messages_raise_one_protocol_error_saying_what_is_wrong(payload, match):
    with pytest.raises(InputError, match=match):
        parse_message(payload)


def test_audio_is_little_endian_pcm16_scaled_to_plus_minus_one():
    pcm = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    message = parse_message(json.dumps({"type": "audio", "t": 2.0, "sample_rate": 16000,
                                        "pcm16": base64.b64encode(pcm).decode()}))
    assert isinstance(message, AudioMessage) and message.t == 2.0 and message.sample_rate == 16000
    np.testing.assert_allclose(message.samples, [0.0, 0.5, -1.0, 32767 / 32768])
    assert message.seconds == pytest.approx(4 / 16000)


def test_an_audio_chunk_longer_than_the_limit_is_refused():
    pcm = np.zeros(16000 * 3, dtype="<i2").tobytes()
    text = json.dumps({"type": "audio", "t": 0, "sample_rate": 16000, "pcm16": base64.b64encode(pcm).decode()})
    with pytest.raises(ProtocolError, match="at most 2 s"):
        parse_message(text, Limits(max_audio_chunk_s=2.0))


def test_config_keeps_known_options_and_names_unknown_keys():
    message = parse_message('{"type": "config", "rule": "product_of_experts", "smoothing": 0, "prior": "x"}')
    assert isinstance(message, ConfigMessage)
    assert message.sync == {"rule": "product_of_experts", "smoothing_tau_s": None}
    assert message.unknown == ("prior",)


def test_end():
    assert isinstance(parse_message('{"type": "end"}'), EndMessage)
