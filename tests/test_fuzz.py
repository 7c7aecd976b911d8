"""Property-based fuzzing (hypothesis) of the readers and the public API: whatever the bytes or arguments, the
only exception that may come out is an AffectError (one clear sentence), never a crash from inside a library.

Kept fast for CI: few examples per property, no deadline (the shared CPU is slow and its speed varies).
"""
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from affect_sdk.errors import AffectError
from affect_sdk.session import demo_clip

# AFFECT_FUZZ_EXAMPLES=500 for a deeper run by hand
FAST = settings(max_examples=int(os.environ.get("AFFECT_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow], database=None)
WORK = Path(tempfile.mkdtemp(prefix="affect-fuzz-"))


def _file(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    """`data` with some bytes replaced: a real file damaged in its header or its body."""
    out = bytearray(data)
    for at, value in edits:
        out[at % len(out)] = value
    return bytes(out)


def _only_affect_errors(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except AffectError as exc:
        assert str(exc).strip(), "an AffectError must carry a sentence"
        return None


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12)
REAL_IMAGES = {ext: cv2.imencode(ext, np.random.default_rng(1).integers(0, 255, (40, 52, 3), np.uint8))[1].tobytes()
               for ext in (".png", ".jpg", ".bmp")}


# ---------------------------------------------------------------- readers
@FAST
@given(ext=st.sampled_from(sorted(REAL_IMAGES)), edits=EDITS, cut=st.integers(1, 4000))
def test_image_reader_on_damaged_images(ext, edits, cut):
    from affect_sdk.vision.data import load_image

    data = _mutate(REAL_IMAGES[ext], edits)[:cut]
    image = _only_affect_errors(load_image, _file(f"damaged{ext}", data))
    assert image is None or (image.dtype == np.uint8 and min(image.shape[:2]) >= 8)


@FAST
@given(width=st.integers(0, (1 << 32) - 1), height=st.integers(0, (1 << 32) - 1))
def test_image_reader_on_any_declared_png_size(width, height):
    from affect_sdk.vision.data import load_image

    data = bytearray(REAL_IMAGES[".png"])
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR width, height (CRC now wrong too)
    _only_affect_errors(load_image, _file("declared.png", bytes(data)))


@FAST
@given(data=st.binary(max_size=3000), ext=st.sampled_from([".wav", ".flac", ".mp3", ".ogg", ".m4a", ".mp4"]))
def test_audio_reader_on_junk_bytes(data, ext):
    from affect_sdk.audio.features import load_audio

    path = _file(f"junk{ext}", data)
    wave = _only_affect_errors(load_audio, path)
    assert wave is None or (wave.dtype == np.float32 and np.isfinite(wave).all())


@FAST
@given(edits=EDITS, cut=st.integers(64, 40000))
def test_audio_reader_on_a_damaged_wav(edits, cut):
    import io

    import soundfile as sf

    from affect_sdk.audio.features import load_audio

    buffer = io.BytesIO()
    sf.write(buffer, np.sin(np.arange(16000) / 5.0).astype(np.float32) * 0.3, 16000, format="WAV")
    path = _file("damaged.wav", _mutate(buffer.getvalue(), edits)[:cut])
    _only_affect_errors(load_audio, path)


DEMO = demo_clip().read_bytes()


@FAST
@given(edits=EDITS, cut=st.integers(16, len(DEMO)))
def test_video_readers_on_a_damaged_clip(edits, cut):
    from affect_sdk.audio.features import load_audio
    from affect_sdk.sources import CameraSource

    path = _file("damaged.mp4", _mutate(DEMO, edits)[:cut])
    camera = _only_affect_errors(CameraSource, path)
    if camera is not None:
        camera.capture.release()
    _only_affect_errors(load_audio, path)


VOTE = st.one_of(st.integers(-3, 12).map(str), st.sampled_from(["", "x", "1.5", " 2", "nan", "٣", "1e3"]))


@FAST
@given(rows=st.lists(st.lists(VOTE, min_size=8, max_size=13), max_size=6))
def test_ferplus_label_csv_with_any_votes(rows):
    from affect_sdk.vision.data import read_ferplus_votes

    folder = WORK / "ferplus"
    folder.mkdir(exist_ok=True)
    (folder / "label.csv").write_text("".join("fer%04d.png," % i + ",".join(r) + "\n" for i, r in enumerate(rows)))
    result = _only_affect_errors(read_ferplus_votes, folder)
    if result is not None:
        assert (result[1] >= 0).all() and result[1].shape == (len(rows), 10)


@FAST
@given(text=st.text(max_size=300), header=st.sampled_from(["path,label\n", "path,label,speaker\n", ""]))
def test_labels_csv_with_any_content(text, header):
    from affect_sdk.audio.data import read_labels_csv

    folder = WORK / "labels"
    folder.mkdir(exist_ok=True)
    (folder / "labels.csv").write_text(header + text, encoding="utf-8", errors="surrogatepass")
    _only_affect_errors(read_labels_csv, folder)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=12)
FACTORIES = st.sampled_from(["affect_sdk.vision.nets:create_student", "affect_sdk.vision.nets:create_teacher",
                             "subprocess:run", "os:system", "builtins:eval", ":", "affect_sdk.vision.nets:"])


@FAST
@given(meta=st.one_of(JSON, st.fixed_dictionaries({"factory": FACTORIES, "arch": JSON, "input_size": JSON})),
       raw=st.one_of(st.none(), st.text(max_size=80)))
def test_model_json_with_any_content(meta, raw):
    import torch

    from affect_sdk.registry import ALLOWED_FACTORIES
    from affect_sdk.vision.teachers import load_run_model

    run = WORK / "run"
    run.mkdir(exist_ok=True)
    (run / "model.json").write_text(raw if raw is not None else json.dumps(meta))
    result = _only_affect_errors(load_run_model, run, torch.device("cpu"))
    if result is not None:
        assert result[1]["factory"] in ALLOWED_FACTORIES


# ---------------------------------------------------------------- public API
@pytest.fixture(scope="module")
def speech_stream_factory():
    from affect_sdk.audio.infer import SpeechAnalyzer

    analyzer = SpeechAnalyzer()
    return analyzer.stream


ARRAYS = hnp.arrays(dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.int32, np.bool_,
                                           np.complex64, np.float16]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=70))


@FAST
@given(chunk=st.one_of(ARRAYS, st.none(), st.text(max_size=5), st.lists(st.floats(), max_size=5)),
       rate=st.sampled_from([8000, 16000, 44100]))
def test_speech_stream_push_with_any_chunk(speech_stream_factory, chunk, rate):
    stream = speech_stream_factory(rate)
    results = _only_affect_errors(stream.push, chunk)
    assert results is None or isinstance(results, list)
    _only_affect_errors(stream.flush)


@pytest.fixture(scope="module")
def face_analyzer():
    from affect_sdk.vision.infer import FaceAnalyzer

    return FaceAnalyzer()


FRAMES = hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.int8, np.bool_]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40))


@FAST
@given(frame=st.one_of(FRAMES, st.none(), st.text(max_size=4)),
       t=st.one_of(st.floats(), st.integers(-10, 10), st.text(max_size=3), st.none()))
def test_face_analyzer_with_any_frame_and_time(face_analyzer, frame, t):
    faces = _only_affect_errors(face_analyzer.analyze, frame, t)
    assert faces is None or isinstance(faces, list)


@FAST
@given(crops=st.one_of(FRAMES, st.lists(FRAMES, max_size=3), st.none(), st.integers()))
def test_face_analyzer_crops_with_anything(face_analyzer, crops):
    out = _only_affect_errors(face_analyzer.analyze_crops, crops)
    if out is not None:
        probs, va = out
        assert probs.shape[1:] == (8,) and va.shape[1:] == (2,) and np.isfinite(probs).all()


@FAST
@given(duration=st.one_of(st.floats(), st.integers(-5, 0), st.text(max_size=3), st.booleans()),
       threshold=st.one_of(st.none(), st.floats(), st.text(max_size=3)))
def test_session_and_detector_options_with_any_value(duration, threshold):
    from affect_sdk.session import Session
    from affect_sdk.vision.detect import FaceDetector

    # a missing video: every duration is checked first, and the good ones then fail on the file, before any model
    session = _only_affect_errors(Session, camera=WORK / "missing.mp4", mic=None, duration=duration)
    assert session is None
    _only_affect_errors(FaceDetector, score_threshold=threshold)


@FAST
@given(face=st.one_of(st.none(), hnp.arrays(np.float64, st.sampled_from([(8,), (3, 8), (2,), (0, 8)]),
                                            elements=st.floats(allow_nan=True, allow_infinity=True))),
       speech=st.one_of(st.none(), hnp.arrays(np.float64, st.sampled_from([(8,), (3, 8), (7,)]),
                                              elements=st.floats(-1, 2))),
       rule=st.sampled_from(["weighted_mean", "product_of_experts", "entropy_weighted", "nope"]),
       tau=st.one_of(st.none(), st.floats()))
def test_fusion_with_any_probabilities_and_options(face, speech, rule, tau):
    from affect_sdk.fusion.rules import fuse
    from affect_sdk.fusion.sync import SyncConfig

    _only_affect_errors(fuse, rule, face, speech)
    _only_affect_errors(SyncConfig, smoothing_tau_s=tau)
