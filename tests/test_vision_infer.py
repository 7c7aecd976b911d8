"""FaceAnalyzer and `affect predict` on real media: a RAVDESS clip and FER+ crops."""
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from affect_sdk.cli import app
from affect_sdk.vision.infer import FaceAnalyzer

runner = CliRunner()


@pytest.fixture(scope="module")
def clip(shared):
    return sorted((shared / "data/ravdess_av_clips").glob("*.mp4"))[0]


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer(backend="torch")


def _frame(clip, index=40):
    capture = cv2.VideoCapture(str(clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


def test_analyze_gives_one_face_affect_per_face(analyzer, clip):
    (face,) = analyzer.analyze(_frame(clip), t=1.25)
    assert face.t == 1.25 and len(face.probs) == 8 and abs(sum(face.probs) - 1) < 1e-4
    assert -1 <= face.valence <= 1 and -1 <= face.arousal <= 1 and face.box[2] > 50
    assert face.label in face.to_dict()["probs"]
    assert analyzer.analyze(np.zeros((240, 320, 3), np.uint8), t=0.0) == []


def test_analyze_crops_accepts_gray_and_bgr_crops_of_any_size(analyzer, shared):
    fer = cv2.imread(str(shared / "data/ferplus/FER2013Test/fer0032220.png"), cv2.IMREAD_GRAYSCALE)
    probs_gray, va = analyzer.analyze_crops(fer[None])
    probs_bgr, _ = analyzer.analyze_crops(cv2.cvtColor(fer, cv2.COLOR_GRAY2BGR)[None])
    probs_big, _ = analyzer.analyze_crops(cv2.cvtColor(cv2.resize(fer, (120, 120)), cv2.COLOR_GRAY2BGR)[None])
    assert probs_gray.shape == (1, 8) and va.shape == (1, 2) and probs_gray.dtype == np.float32
    assert np.abs(probs_gray - probs_bgr).max() < 1e-5  # same pixels, other colour layout
    # same face through an up- and down-sampling round trip: blurred a little, so close but not equal
    assert probs_big.argmax() == probs_gray.argmax() and np.abs(probs_gray - probs_big).max() < 0.2
    assert analyzer.analyze_crops([fer, cv2.resize(fer, (30, 30))])[0].shape == (2, 8)
    assert analyzer.analyze_crops(np.zeros((0, 48, 48), np.uint8))[0].shape == (0, 8)


def test_predict_image_and_video_print_faces_as_json(clip, tmp_path):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), _frame(clip))
    result = runner.invoke(app, ["predict", str(image), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["kind"] == "image" and len(out["faces"]) == 1 and len(out["faces"][0]["box"]) == 4
    result = runner.invoke(app, ["predict", str(clip), "--json", "--step", "30"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert lines[-1]["kind"] == "video_summary" and lines[-1]["frames_with_faces"] >= 3
    assert lines[1]["t"] == pytest.approx(30 / 29.97, abs=1e-3)


def test_predict_bad_image_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n0000")
    result = runner.invoke(app, ["predict", str(bad)])
    assert result.exit_code == 2
    assert "broken.png" in result.output and len(result.output.strip().splitlines()) == 1
