"""`affect eval vision` on a tiny FER+ subset and on an image folder with bad files; the metric functions."""
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from affect_sdk.cli import app
from affect_sdk.vision.evaluate import ccc, classification_metrics

runner = CliRunner()


def test_metrics_count_predictions_of_absent_classes_as_wrong():
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(8)[[0, 7, 1, 1]]  # one prediction of contempt, which the data does not have
    m = classification_metrics(labels, probs)
    assert m["accuracy"] == 0.75 and m["classes"] == ["neutral", "happy"]
    assert m["per_class"] == {"neutral": 0.5, "happy": 1.0}
    assert m["confusion"][0][7] == 1 and m["n"] == 4


def test_ccc_is_one_for_identical_and_lower_for_biased_series():
    a = np.linspace(-1, 1, 50)
    assert ccc(a, a) == pytest.approx(1.0)
    assert ccc(a, a + 0.5) < 0.9


def test_eval_vision_on_ferplus_crops_ends_with_one_json_line(shared):
    result = runner.invoke(app, ["eval", "vision", "--data", str(shared / "data/ferplus"), "--split", "test",
                                 "--crops", "--limit", "40", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "macro_f1", "n", "per_class", "confusion", "gmac", "classes"):
        assert key in out
    assert out["n"] == 40 and 0 < out["gmac"] <= 0.3 and set(out["va_ccc_vs_derived"]) == {"valence", "arousal"}


def test_eval_vision_skips_bad_files_with_one_line_each_and_goes_on(shared, tmp_path):
    fer = cv2.imread(str(shared / "data/ferplus/FER2013Test/fer0032220.png"))
    for name in ("happy", "sad"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "ok.png"), fer)
    (tmp_path / "happy" / "empty.png").write_bytes(b"")
    (tmp_path / "sad" / "text.jpg").write_text("not an image")
    result = runner.invoke(app, ["eval", "vision", "--data", str(tmp_path), "--crops", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] == 2 and out["skipped"] == 2 and out["classes"] == ["happy", "sad"]
    assert "empty.png" in result.stderr and "text.jpg" in result.stderr


def test_eval_vision_refuses_unknown_class_folders_in_one_line(tmp_path):
    (tmp_path / "sleepy").mkdir()
    result = runner.invoke(app, ["eval", "vision", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 2 and "sleepy" in result.output
