"""ONNX twins of the shipped torch models: verified files, parity with torch on real inputs, the export command."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from affect_sdk.errors import InputError
from affect_sdk.export import TOLERANCE, example_shape, export_model, exportable_models, max_abs_diff, source_sha256
from affect_sdk.registry import create_model, file_sha256, get_spec, speech_windows, verified_path
from affect_sdk.runtime import create_runner

TORCH_MODELS = [spec.name for spec in exportable_models()]
# Models that run inference ship an ONNX twin; a teacher kept only as a distillation-ensemble member (its card says
# so) may leave it out: nothing serves it, and its twin would be the largest file in the package.
TEACHER_ONLY = {"face-teacher-r64", "face-teacher-r64-s2", "face-teacher-r64-webcam"}
INT8_MAX_DIFF = 1.0


def real_inputs(name: str, shared: Path) -> np.ndarray:
    """Model inputs built from real data: FER+ test crops for face models, RAVDESS speech windows for speech."""
    spec = get_spec(name)
    if spec.task == "face":
        from affect_sdk.vision.data import read_ferplus, to_input

        images = read_ferplus(shared / "data" / "ferplus", "test", limit=16).images
        return to_input(images, example_shape(spec)[-1]).numpy()
    from affect_sdk.audio.features import FeatureConfig, load_audio, model_input

    cfg = FeatureConfig.from_dict(spec.preprocess)
    wave = load_audio(shared / "data" / "ravdess_speech" / "Actor_01" / "03-01-05-02-01-01-01.flac", cfg.sample_rate)
    windows_of = speech_windows(name)
    window, hop = windows_of.window, windows_of.hop
    windows = np.stack([wave[s:s + window] for s in range(0, len(wave) - window + 1, hop)])
    return model_input(windows, cfg)


@pytest.mark.parametrize("name", [name for name in TORCH_MODELS if name not in TEACHER_ONLY])
def test_every_torch_model_ships_a_verified_twin_of_its_current_weights(name):
    spec = get_spec(name)
    assert spec.onnx, f"{name} has no ONNX twin; run `affect export onnx --out affect_sdk/weights`"
    path = verified_path(name, onnx=True)  # raises when missing or when its sha256 differs from the registry
    assert source_sha256(path) == spec.sha256, f"{spec.onnx} was exported from other weights than {spec.weights}"
    assert create_runner(name).backend == "onnxruntime"  # the default backend when onnxruntime is installed


@pytest.mark.parametrize("name", [name for name in TORCH_MODELS if name not in TEACHER_ONLY])
def test_twin_matches_torch_on_real_inputs(name, shared):
    x = real_inputs(name, shared)
    module = create_model(name, device="cpu")
    path = verified_path(name, onnx=True)
    for batch in (x, x[:1]):  # the batch axis is dynamic
        # int8 twins: rounding moves logits by a few hundredths (FER+ Valid: mean 0.025, largest 0.27)
        assert max_abs_diff(module, path, batch) <= (INT8_MAX_DIFF if get_spec(name).onnx_int8 else TOLERANCE)
    onnx_out = create_runner(name, backend="onnxruntime")(x)
    torch_out = create_runner(name, backend="torch", device="cpu")(x)
    assert [o.shape for o in onnx_out] == [t.shape for t in torch_out]
    assert (onnx_out[0].argmax(1) == torch_out[0].argmax(1)).all()


def test_int8_twins_say_how_they_were_made_and_agree_with_torch_on_faces_they_were_not_calibrated_on(shared):
    import onnx

    from affect_sdk.quantize import CHECK_CROPS, INT8_MIN_AGREEMENT, QUANTIZATION, face_crops, int8_agreement

    names = [name for name in TORCH_MODELS if get_spec(name).onnx_int8]
    assert "face-student" in names  # the default face model runs in int8
    for name in names:
        path = verified_path(name, onnx=True)
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        assert meta["affect_sdk.quantization"] == QUANTIZATION and meta["affect_sdk.model"] == name
        faces = face_crops(get_spec(name), shared / "data" / "ferplus", "valid", CHECK_CROPS // 4)
        agreement, _ = int8_agreement(create_runner(name, backend="onnxruntime")(faces),
                                      create_runner(name, backend="torch", device="cpu")(faces))
        assert agreement >= INT8_MIN_AGREEMENT


def test_int8_export_without_faces_to_calibrate_on_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="calibrated on FER\\+ faces: no FER\\+ train split in .*pass --data"):
        export_model("face-student", tmp_path, data=tmp_path / "empty")
    assert not list(tmp_path.glob("*.onnx"))  # nothing half-written


def test_export_refuses_a_model_that_is_not_torch(tmp_path):
    with pytest.raises(InputError, match="not a torch model"):
        export_model("yunet", tmp_path)


def test_cli_export_onnx_writes_a_checked_twin(tmp_path, shared):
    name = TORCH_MODELS[-1] if TORCH_MODELS else pytest.skip("no torch model registered")
    done = subprocess.run([sys.executable, "-m", "affect_sdk.cli", "export", "onnx", "--model", name, "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout.strip().splitlines()[-1])["exported"]
    path = tmp_path / f"{name}.onnx"
    assert row["onnx"] == path.name and row["onnx_sha256"] == file_sha256(path)
    assert row["max_abs_diff"] <= TOLERANCE and source_sha256(path) == get_spec(name).sha256
    assert max_abs_diff(create_model(name, device="cpu"), path, real_inputs(name, shared)) <= TOLERANCE


def test_cli_export_onnx_names_an_unknown_model_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "affect_sdk.cli", "export", "onnx", "--model", "no-such-model",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no-such-model" in done.stderr and "Traceback" not in done.stderr


def test_int8_export_writes_a_checked_quantized_twin(tmp_path, shared):
    done = export_model("face-student", tmp_path, data=shared / "data" / "ferplus")
    assert done.path == tmp_path / "face-student.onnx" and done.quantization and done.agreement >= 0.98
    assert source_sha256(done.path) == get_spec("face-student").sha256  # tied to the weights it came from
    parameters = sum(p.numel() for p in create_model("face-student", pretrained=False).parameters())
    assert done.path.stat().st_size < 1.2 * parameters  # int8: about a byte per weight (float32: four)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face-student.onnx"]  # no intermediate files left


def test_a_refused_int8_twin_leaves_the_file_already_there(tmp_path, shared, monkeypatch):
    import affect_sdk.quantize

    shipped = tmp_path / "face-student.onnx"
    shipped.write_bytes(b"the twin shipped before")
    monkeypatch.setattr(affect_sdk.quantize, "INT8_MIN_AGREEMENT", 1.01)  # a bar no twin can pass
    from affect_sdk.errors import ModelError

    with pytest.raises(ModelError, match="keeps torch's top class on only .* not written"):
        export_model("face-student", tmp_path, data=shared / "data" / "ferplus")
    assert shipped.read_bytes() == b"the twin shipped before" and sorted(tmp_path.iterdir()) == [shipped]
