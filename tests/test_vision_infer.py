"""FaceAnalyzer and `affect predict` on real media: a RAVDESS clip and FER+ crops."""
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from affect_sdk.cli import app
from affect_sdk.errors import AffectError, InputError
from affect_sdk.registry import get_spec
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
    # same face through an up- and down-sampling round trip: blurred a little, so close but not equal (the top
    # class may flip on an ambiguous face, so only the distance is checked)
    assert np.abs(probs_gray - probs_big).max() < 0.2
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
    frames = [line for line in lines if line["kind"] == "frame"]  # fused and speech records come between them
    assert frames[1]["t"] == pytest.approx(30 / 29.97, abs=1e-3) and frames[1]["frame"] == 30


def test_predict_bad_image_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n0000")
    result = runner.invoke(app, ["predict", str(bad)])
    assert result.exit_code == 2
    assert "broken.png" in result.output and len(result.output.strip().splitlines()) == 1


def test_prior_modes_change_the_reading_as_documented(shared):
    crops = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
                      for p in sorted((shared / "data/ferplus/FER2013Valid").glob("*.png"))[:200]])
    probs = {mode: FaceAnalyzer(prior=mode).analyze_crops(crops)[0] for mode in ("train", "blend", "balanced")}
    neutral_share = {mode: float((p.argmax(1) == 0).mean()) for mode, p in probs.items()}
    # dividing FER+'s frequencies out reads fewer faces as neutral, the blend halfway between
    assert neutral_share["train"] > neutral_share["blend"] > neutral_share["balanced"]
    assert all(np.allclose(p.sum(1), 1, atol=1e-5) for p in probs.values())
    with pytest.raises(InputError, match="prior"):
        FaceAnalyzer(prior="uniform")
    with pytest.raises(AffectError, match="speech"):
        FaceAnalyzer(model="speech-cnn")


def test_a_personal_baseline_makes_the_resting_face_read_as_a_typical_neutral_face(analyzer, clip):
    from affect_sdk.vision.infer import resting_crops

    rest = resting_crops(analyzer, clip, max_frames=30)
    assert rest.shape[0] == 30
    plain = analyzer.analyze_crops(rest)[0].mean(0)
    analyzer.set_baseline(rest)
    try:
        calibrated = analyzer.analyze_crops(rest)[0].mean(0)
    finally:
        analyzer.clear_baseline()
    reference = analyzer.calibrate(np.asarray(get_spec(analyzer.model).neutral_reference, np.float32)[None])[0]
    assert calibrated.argmax() == 0 and abs(calibrated[0] - reference[0]) < 0.1
    assert np.allclose(analyzer.analyze_crops(rest)[0].mean(0), plain)  # cleared
    with pytest.raises(InputError, match="at least one"):
        analyzer.set_baseline(np.zeros((0, 48, 48), np.uint8))


def test_predict_video_with_a_baseline_reads_the_clip_over_time(shared, clip):
    surprised = shared / "data/ravdess_av_clips/01-01-08-02-02-02-01.mp4"
    result = runner.invoke(app, ["predict", str(surprised), "--json", "--step", "3", "--baseline", str(clip)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["kind"] == "video_summary" and summary["baseline"] is True and summary["prior"] == "blend"
    assert summary["label"] in summary["probs"] and abs(sum(summary["probs"].values()) - 1) < 1e-3
    assert summary["evidence"]["start"] <= summary["evidence"]["end"] and "frame_mean" in summary["evidence"]
    result = runner.invoke(app, ["predict", str(surprised), "--baseline", str(surprised.parent / "none.mp4")])
    assert result.exit_code == 2 and "none.mp4" in result.output
