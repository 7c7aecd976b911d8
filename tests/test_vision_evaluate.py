"""`affect eval vision` on a tiny FER+ subset and on an image folder with bad files; the metric functions."""
import json

import cv2
from typer.testing import CliRunner

from affect_sdk.cli import app

runner = CliRunner()


def test_eval_vision_on_ferplus_crops_ends_with_one_json_line(shared):
    result = runner.invoke(app, ["eval", "vision", "--data", str(shared / "data/ferplus"), "--split", "test",
                                 "--crops", "--limit", "40", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "ece", "n", "per_class", "confusion", "gmac", "classes"):
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


def test_eval_vision_runs_without_thop_and_leaves_the_gmac_out(shared):
    import subprocess
    import sys

    code = ("import sys, json; sys.modules['thop'] = None\n"  # as without the dev extra
            "from affect_sdk.vision.evaluate import evaluate_vision\n"
            f"result = evaluate_vision({str(shared / 'data/ferplus')!r}, crops=True, limit=8, warn=print)\n"
            "print(json.dumps([result['gmac'], result['n']]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [None, 8]


def test_a_data_folder_with_brackets_is_named_as_it_is_in_the_table(shared, tmp_path):
    fer = cv2.imread(str(shared / "data/ferplus/FER2013Test/fer0032220.png"))
    data = tmp_path / "faces[b]" / "[/x]"  # markup would bold the rest, or fail on the closing-tag-like name
    (data / "happy").mkdir(parents=True)
    cv2.imwrite(str(data / "happy" / "ok.png"), fer)
    result = runner.invoke(app, ["eval", "vision", "--data", str(data), "--crops"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "faces[b]/[/x]" in result.output and "Traceback" not in result.output
