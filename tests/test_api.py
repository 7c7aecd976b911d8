"""The public API as an app developer meets it: top-level names, still images by path, result objects with
probabilities by class name, fusing one pair, and Session fed with the app's own numpy frames and audio."""
import asyncio
import subprocess
import sys

import cv2
import numpy as np
import pytest

import affect_sdk
from affect_sdk import CLASSES, FaceAnalyzer, SpeechAnalyzer, SpeechStream, fuse
from affect_sdk.audio.features import load_audio
from affect_sdk.session import Session, demo_clip


@pytest.fixture(scope="module")
def demo_frames():
    capture = cv2.VideoCapture(str(demo_clip()))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_importing_the_package_loads_no_heavy_module():
    code = ("import sys, affect_sdk\n"
            "heavy = [m for m in ('torch', 'cv2', 'onnxruntime', 'pandas') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert affect_sdk.SpeechStream.__name__ == 'SpeechStream' and 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert {"FaceAnalyzer", "SpeechAnalyzer", "SpeechStream", "fuse", "analyze_files", "to_dataframe"} <= set(
        affect_sdk.__all__)


def test_a_still_image_by_path_and_probabilities_by_class_name(shared):
    path = shared / "data/ferplus/FER2013Test/fer0032220.png"
    faces = FaceAnalyzer().analyze(path)  # no t needed for a still image
    assert len(faces) == 1 and faces[0].t == 0.0
    probs = faces[0].probs
    assert probs[faces[0].label] == max(probs) == probs[CLASSES.index(faces[0].label)]
    assert np.asarray(probs).shape == (8,) and probs.as_dict()["happy"] == probs[1]
    with pytest.raises(KeyError, match="classes are"):
        probs["joy"]
    with pytest.raises(affect_sdk.InputError, match="missing.png"):
        FaceAnalyzer().analyze(path.parent / "missing.png")


def test_classify_file_returns_a_result_that_still_unpacks(speech_flac):
    result = SpeechAnalyzer().classify_file(speech_flac)
    assert isinstance(result, affect_sdk.UtteranceAffect) and result.label in CLASSES
    assert result.voiced_windows >= 1 and result.windows >= result.voiced_windows
    probs, va = result  # the two arrays older code unpacked
    assert probs.shape == (8,) and np.isclose(probs[CLASSES.index(result.label)], result.probs[result.label])
    assert va.tolist() == pytest.approx([result.valence, result.arousal], abs=1e-6)
    assert result.to_dict()["kind"] == "utterance"


def test_fuse_one_face_and_one_speech_result(shared, speech_flac):
    face = FaceAnalyzer().analyze(shared / "data/ferplus/FER2013Test/fer0032220.png")[0]
    speech = next(w for w in SpeechAnalyzer().analyze_file(speech_flac) if w.voiced)
    fused = fuse(face, speech)
    assert fused.sources == ("face", "speech") and fused.label in CLASSES
    assert sum(w for _, w in fused.weights) == pytest.approx(1.0)
    assert fuse(face).sources == ("face",) and fuse().probs is None


def test_session_takes_the_apps_own_frames_and_audio(demo_frames):
    fps = 29.97
    wave = load_audio(demo_clip())  # 16 kHz mono float32, as an app's microphone callback would deliver it
    chunks = (wave[i:i + 800] for i in range(0, len(wave), 800))
    results = []
    session = Session(frames=((i / fps, f) for i, f in enumerate(demo_frames)), audio=chunks, fast=True,
                      on_result=results.append)
    summary = session.run()
    assert summary["frames_analysed"] == len(demo_frames) and summary["voiced_windows"] >= 1
    assert len(results) == summary["fused"] and any(r.sources == ("face", "speech") for r in results)
    assert SpeechStream is affect_sdk.SpeechStream


def test_async_for_over_a_session(demo_frames):
    async def collect():
        seen = []
        async for fused in Session(frames=iter(demo_frames[:30]), fast=True):
            seen.append(fused)
            await asyncio.sleep(0)  # the event loop stays free while the session works
        return seen

    fused = asyncio.run(collect())
    assert len(fused) == 30 and all(f.sources == ("face",) for f in fused)
