"""A live session's personal baseline: the first S seconds are the person at rest, for the face and, when asked,
the voice. Real clip, real models; the session's calibration must equal the one taken offline from the same
seconds (the chunked == offline rule of the streaming code)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from affect_sdk.audio.features import load_audio
from affect_sdk.audio.stream import SpeechStream
from affect_sdk.errors import InputError
from affect_sdk.session import Session
from affect_sdk.vision.infer import FaceAnalyzer

REST_S = 2.5


@pytest.fixture(scope="module")
def neutral_clip(shared) -> Path:
    path = shared / "data" / "ravdess_av_clips" / "01-01-01-01-01-01-01.mp4"  # actor 01, neutral, speaking
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def messages(records):
    return [r["message"] for r in records if r["kind"] == "event"]


def test_face_and_voice_baselines_from_the_first_seconds_equal_the_offline_ones(neutral_clip):
    records = []
    session = Session(camera=neutral_clip, mic=neutral_clip, fast=True, baseline_seconds=REST_S,
                      baseline_voice=True, on_record=records.append)
    fused = list(session)
    assert fused and records[0]["options"]["baseline_voice"] is True
    said = messages(records)
    assert said[0].startswith("baseline: the first 2.5 s are taken as the person at rest (face and voice)")
    assert any(m.startswith("baseline set: the face of the first 2.5 s (75 frames)") for m in said)
    assert any(m.startswith("voice baseline set: the voice of the first 2.5 s") for m in said)
    assert not session.warnings

    voice = SpeechStream("speech-cnn")
    offline_voice = voice.set_baseline(load_audio(neutral_clip)[:int(REST_S * 16000)], 16000)
    np.testing.assert_allclose(session._speech.calibration.offset, offline_voice, atol=1e-4)

    face, crops, capture = FaceAnalyzer(), [], cv2.VideoCapture(str(neutral_clip))
    face.detector.max_side = 320  # the session's default detect_side
    fps = capture.get(cv2.CAP_PROP_FPS)
    for i in range(int(np.ceil(REST_S * fps))):  # the frames stamped before REST_S
        ok, image = capture.read()
        assert ok
        crops += face.analyze_with_crops(image, i / fps)[1][:1]
    capture.release()
    np.testing.assert_allclose(session._face.baseline, face.set_baseline(np.stack(crops)), atol=1e-4)


def test_voice_only_baseline_takes_what_there_is_when_the_audio_is_shorter(speech_flac):
    records = []
    session = Session(camera=None, mic=speech_flac, fast=True, baseline_seconds=30, baseline_voice=True,
                      on_record=records.append)
    assert list(session)
    said = messages(records)
    assert said[0].endswith("(voice); results until then are not calibrated to them")
    seconds = len(load_audio(speech_flac)) / 16000
    assert any(m.startswith(f"voice baseline set: the voice of the first {seconds:g} s") for m in said)
    assert session._speech.calibration.offset is not None


def test_a_silent_rest_leaves_the_voice_uncalibrated_with_one_warning(tmp_path):
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16000 * 3, np.float32), 16000)
    session = Session(camera=None, mic=silence, fast=True, baseline_seconds=2, baseline_voice=True)
    session.run()
    assert [w for w in session.warnings if w.startswith("Voice baseline not set: ")] == session.warnings
    assert len(session.warnings) == 1 and session._speech.calibration.offset is None


def test_baseline_options_that_cannot_work_are_one_input_error(speech_flac, neutral_clip):
    with pytest.raises(InputError, match="baseline_voice needs baseline_seconds"):
        Session(camera=None, mic=speech_flac, baseline_voice=True)
    with pytest.raises(InputError, match="baseline_voice needs baseline_seconds and the microphone"):
        Session(camera=neutral_clip, mic=None, baseline_seconds=2, baseline_voice=True)
    with pytest.raises(InputError, match="baseline_seconds needs the camera"):
        Session(camera=None, mic=speech_flac, baseline_seconds=2)
