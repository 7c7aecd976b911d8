"""The speech CNN and its registry entry: shapes, size budget, V/A from the class table, shipped weights load."""
import numpy as np
import pytest
import torch

from affect_sdk.audio.features import FeatureConfig
from affect_sdk.audio.nets import SpeechEnsemble, create_speech_cnn
from affect_sdk.labels import CLASS_VA_ARRAY, NUM_CLASSES
from affect_sdk.registry import create_model, default_model, get_spec, verified_path


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_forward_shapes_and_va_from_class_table(kind):
    torch.manual_seed(0)
    model = create_speech_cnn(kind=kind).eval()
    logits, va = model(torch.randn(3, 1, 64, 197))
    assert logits.shape == (3, NUM_CLASSES) and va.shape == (3, 2)
    expected = torch.softmax(logits, -1) @ torch.from_numpy(CLASS_VA_ARRAY)
    torch.testing.assert_close(va, expected)
    assert model(torch.randn(1, 1, 64, 40))[0].shape == (1, NUM_CLASSES)  # any window length
    with pytest.raises(ValueError):
        create_speech_cnn(kind="3d")


def test_ensemble_averages_member_probabilities():
    model = SpeechEnsemble(members=2, kind="1d").eval()
    x = torch.randn(2, 1, 64, 100)
    mean = torch.stack([torch.softmax(m(x)[0], -1) for m in model.members]).mean(0)
    torch.testing.assert_close(torch.softmax(model(x)[0], -1), mean, atol=1e-5, rtol=0)


def test_shipped_speech_model_is_small_and_loads():
    name = default_model("speech")
    spec = get_spec(name)
    assert spec.task == "speech" and spec.card and (verified_path(name).parent / spec.card).is_file()
    assert verified_path(name).stat().st_size < 5_000_000
    cfg = FeatureConfig.from_dict(spec.preprocess)
    model = create_model(name)
    logits, va = model(torch.zeros(1, 1, cfg.n_mels, 197))
    assert logits.shape == (1, NUM_CLASSES) and np.all(np.abs(va.detach().numpy()) <= 1)
