"""Inference runners: onnxruntime by default, torch on request, stale ONNX twins caught, no torch on the ORT path."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from affect_sdk.errors import DeviceError, ModelError
from affect_sdk.registry import _REGISTRY, default_model, file_sha256, get_spec, verified_path
from affect_sdk.runtime import SOURCE_SHA_KEY, create_runner

FACE = default_model("face")


def test_onnxruntime_is_the_default_and_torch_runs_on_request():
    side = get_spec(FACE).preprocess["input_size"]
    x = np.random.default_rng(0).random((2, 1, side, side), dtype=np.float32)
    fast, slow = create_runner(FACE), create_runner(FACE, backend="torch", device="cpu")
    assert (fast.backend, slow.backend) == ("onnxruntime", "torch")
    assert fast.session.get_session_options().intra_op_num_threads == 1
    assert create_runner(FACE, threads=2).session.get_session_options().intra_op_num_threads == 2
    tolerance = 1.0 if get_spec(FACE).onnx_int8 else 1e-4  # an int8 twin rounds (tests/test_export.py checks it)
    for a, b in zip(fast(x), slow(x)):
        assert a.shape == b.shape and np.abs(a - b).max() < tolerance


def test_unknown_backend_is_one_clear_error():
    with pytest.raises(DeviceError, match="Unknown inference backend 'tensorrt'"):
        create_runner(FACE, backend="tensorrt")


def test_a_stale_twin_is_refused_by_name_and_skipped_under_auto(tmp_path):
    import onnx

    spec = get_spec(FACE)
    stale = onnx.load(str(verified_path(FACE, onnx=True)))
    next(p for p in stale.metadata_props if p.key == SOURCE_SHA_KEY).value = "0" * 64  # "exported from old weights"
    path = tmp_path / "stale.onnx"
    onnx.save(stale, str(path))
    _REGISTRY["stale-twin"] = dataclasses.replace(spec, name="stale-twin", weights=str(spec.path),
                                                  onnx=str(path), onnx_sha256=file_sha256(path))
    try:
        with pytest.raises(ModelError, match="other weights"):
            create_runner("stale-twin", backend="onnxruntime")
        assert create_runner("stale-twin").backend == "torch"
    finally:
        del _REGISTRY["stale-twin"]


def test_the_onnxruntime_path_never_imports_torch():
    """Importing torch costs seconds of cold start on a small CPU; faces from a frame must not need it."""
    code = ("import sys, numpy as np\n"
            "from affect_sdk.vision.infer import FaceAnalyzer\n"
            "analyzer = FaceAnalyzer()\n"
            "analyzer.analyze(np.zeros((240, 320, 3), np.uint8), 0.0)\n"
            "analyzer.analyze_crops(np.zeros((2, 48, 48), np.uint8))\n"
            "assert analyzer.runner.backend == 'onnxruntime'\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


ORT_PATHS = {
    "image file": "from affect_sdk.vision.infer import FaceAnalyzer\n"
                  "assert FaceAnalyzer(backend='onnxruntime').analyze(photo)\n",
    "video with its voice": "from affect_sdk.predict import PredictOptions, analyze_files\n"
                            "records = list(analyze_files([clip], PredictOptions(backend='onnxruntime', step=15)))\n"
                            "assert any(r['kind'] == 'fused' for r in records)\n",
    "speech": "from affect_sdk.audio.infer import SpeechAnalyzer\n"
              "assert SpeechAnalyzer(backend='onnxruntime').classify_file(clip).label\n",
    "Session": "from affect_sdk import Session\n"
               "assert Session(demo=True, fast=True, duration=1.5, backend='onnxruntime').run()['fused'] > 0\n",
    "affect predict": "from affect_sdk.cli import main\n"
                      "sys.argv = ['affect', 'predict', str(photo), '--json', '--backend', 'onnxruntime']\n"
                      "try:\n    main()\nexcept SystemExit as end:\n    assert not end.code, end.code\n",
}


@pytest.mark.parametrize("path", ORT_PATHS)
def test_no_inference_path_on_onnxruntime_imports_torch(path, tmp_path):
    """Each path a user runs on onnxruntime (an image, a video with its voice, speech, a Session, the command
    line) ends with torch never imported: a subprocess, so nothing this test process loaded counts."""
    photo = tmp_path / "photo.png"
    code = ("import sys, cv2, av\nfrom pathlib import Path\nfrom affect_sdk.session import demo_clip\n"
            f"clip, photo = demo_clip(), Path({str(photo)!r})\n"
            "with av.open(str(clip)) as video:\n"
            "    cv2.imwrite(str(photo), next(video.decode(video=0)).to_ndarray(format='bgr24'))\n"
            + ORT_PATHS[path]
            + "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "no torch"
