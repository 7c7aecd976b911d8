"""recipes/face_soup.py: a weight-space average of face nets of one architecture, read back as a run folder."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
from face_soup import parse_weights, write_soup_run  # noqa: E402

from affect_sdk.errors import InputError  # noqa: E402
from affect_sdk.registry import load_state_dict, resolve_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_weights_are_equal_by_default_normalised_and_checked():
    assert parse_weights(None, 4) == [0.25] * 4
    assert parse_weights("1,3", 2) == [0.25, 0.75]
    for bad in ("1", "1,x", "-1,2", "0,0", "nan,1", "inf,1"):
        with pytest.raises(InputError):
            parse_weights(bad, 2)


def test_a_soup_is_the_weighted_mean_of_its_members_and_loads_as_a_face_model(tmp_path):
    out = write_soup_run(["face-teacher-r64", "face-student"], tmp_path / "soup", [0.25, 0.75], input_size=64)
    soup, a, b = load_state_dict(resolve_model(str(out))), load_state_dict("face-teacher-r64"), \
        load_state_dict("face-student")
    key = next(k for k in a if a[k].is_floating_point() and a[k].numel() > 100 and not (a[k] == b[k]).all())
    assert np.allclose(soup[key].numpy(), 0.25 * a[key].float().numpy() + 0.75 * b[key].float().numpy(), atol=1e-6)
    meta = json.loads((out / "model.json").read_text())
    assert meta["input_size"] == 64 and meta["soup"] == {"face-teacher-r64": 0.25, "face-student": 0.75}

    from affect_sdk.vision.infer import FaceAnalyzer

    probs, va = FaceAnalyzer(resolve_model(str(out))).analyze_crops(np.full((2, 48, 48), 128, np.uint8))
    assert probs.shape == (2, 8) and np.allclose(probs.sum(1), 1, atol=1e-5) and va.shape == (2, 2)


def test_members_of_other_architectures_or_bad_weights_are_one_sentence(tmp_path):
    for args in (["face-student", "face-mini-xception"], ["face-student", "face-teacher-r64", "--weights", "1"],
                 ["face-student"], ["face-student", "no-such-model"]):
        done = subprocess.run([sys.executable, "recipes/face_soup.py", *args, "--out", str(tmp_path / "x")],
                              capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 2 and "Traceback" not in done.stderr, args
        assert "error: " in done.stderr.strip().splitlines()[-1]  # argparse's one line, after the usage
    assert not (tmp_path / "x").exists()
