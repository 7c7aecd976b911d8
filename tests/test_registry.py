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


def test_the_speech_window_is_one_edit_of_the_registry_entry(monkeypatch):
    import dataclasses

    from affect_sdk.audio.infer import SpeechAnalyzer
    from affect_sdk.audio.stream import SpeechStream
    from affect_sdk.audio.train import TrainConfig
    from affect_sdk.export import example_shape

    shipped = registry.get_spec("speech-cnn")
    assert (SpeechStream().window, SpeechStream().hop) == (32000, 8000)  # 2 s / 0.5 s at 16 kHz
    edited = dataclasses.replace(shipped, preprocess={**shipped.preprocess, "window_s": 1.0, "hop_s": 0.25})
    monkeypatch.setitem(registry._REGISTRY, "speech-cnn", edited)
    stream = SpeechStream()
    assert (stream.window, stream.hop) == (16000, 4000)
    assert SpeechAnalyzer().stream().window == 16000
    assert (TrainConfig().window_s, TrainConfig().hop_s) == (1.0, 0.25)
    assert example_shape(edited)[2] == 1 + (16000 - 512) // 160  # the ONNX export's example input follows too


def test_a_face_model_has_no_speech_windows():
    with pytest.raises(ModelError, match="speech model is needed"):
        registry.speech_windows("face-student")


@pytest.mark.parametrize("spec", [s for s in registry.list_models() if s.factory], ids=lambda s: s.name)
def test_every_registered_torch_model_runs_forward_and_backward(spec):
    """timm-style: every registered net takes its example input, gives [B, 8] logits and [B, 2] V/A, and trains."""
    import torch

    from affect_sdk.export import example_shape

    torch.manual_seed(0)
    model = registry.create_model(spec.name, device="cpu").train()
    x = torch.rand(3, *example_shape(spec))
    logits, va = model(x)
    assert logits.shape == (3, 8) and va.shape == (3, 2)
    assert torch.isfinite(logits).all() and torch.isfinite(va).all()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])) + va.square().mean()
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert sum(float(g.abs().sum()) for g in grads.values()) > 0
