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
    x = np.random.default_rng(0).random((2, 1, 48, 48), dtype=np.float32)
    fast, slow = create_runner(FACE), create_runner(FACE, backend="torch", device="cpu")
    assert (fast.backend, slow.backend) == ("onnxruntime", "torch")
    assert fast.session.get_session_options().intra_op_num_threads == 1
    assert create_runner(FACE, threads=2).session.get_session_options().intra_op_num_threads == 2
    for a, b in zip(fast(x), slow(x)):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4


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
