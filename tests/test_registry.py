"""The model registry: every shipped model verifies; a corrupted file is one clear ModelError."""
import pytest

from affect_sdk import registry
from affect_sdk.errors import ModelError


@pytest.mark.parametrize("spec", registry.list_models(), ids=lambda s: s.name)
def test_every_registered_model_verifies(spec):
    assert registry.verified_path(spec.name).is_file()
    if spec.onnx:
        assert registry.verified_path(spec.name, onnx=True).is_file()
    assert spec.licence


@pytest.mark.parametrize("spec", [s for s in registry.list_models() if s.factory], ids=lambda s: s.name)
def test_every_torch_model_loads(spec):
    model = registry.create_model(spec.name)
    assert not model.training


def test_corrupted_weights_name_file_and_expected_checksum(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not the weights you are looking for")
    spec = registry.register(registry.ModelSpec(
        name="test-broken", task="face", weights=str(bad), sha256="0" * 64, licence="test",
        factory="affect_sdk.vision.nets:create_student",
    ))
    try:
        with pytest.raises(ModelError) as err:
            registry.create_model(spec.name)
        assert str(bad) in str(err.value) and "0" * 64 in str(err.value)
    finally:
        registry._REGISTRY.pop(spec.name)


def test_missing_weights_and_unknown_name(tmp_path):
    with pytest.raises(ModelError, match="No model named 'nope'"):
        registry.get_spec("nope")
    spec = registry.register(registry.ModelSpec(
        name="test-missing", task="face", weights=str(tmp_path / "gone.safetensors"), sha256="0" * 64, licence="x"))
    try:
        with pytest.raises(ModelError, match="is missing"):
            registry.verified_path(spec.name)
    finally:
        registry._REGISTRY.pop(spec.name)


def test_shipped_defaults_are_registered():
    for task in ("face", "speech", "detector"):
        assert registry.get_spec(registry.default_model(task)).task == task
