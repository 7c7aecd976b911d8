"""Speech output calibration: the face's prior / temperature / baseline math, fitted on validation speakers."""
import numpy as np
import pytest

from affect_sdk.audio.calibrate import SpeechCalibration, fit_calibration, speech_calibration, training_prior
from affect_sdk.errors import InputError
from affect_sdk.labels import CLASS_INDEX, CLASSES


def test_training_prior_gives_an_absent_class_the_geometric_mean():
    labels = np.repeat([0, 1, 2, 3, 4, 5, 6], [12, 8, 8, 8, 8, 8, 8])  # RAVDESS: calm counted as neutral, no contempt
    prior = training_prior(labels)
    assert prior[0] == pytest.approx(0.2) and prior[1] == pytest.approx(8 / 60)
    assert prior[CLASS_INDEX["contempt"]] == pytest.approx(np.exp(np.log(prior[:7]).mean()))


def test_fitted_temperature_undoes_overconfidence_and_the_reference_is_the_neutral_mean():
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 2, (4000, len(CLASSES)))  # calibrated logits: labels drawn from their softmax
    p = np.exp(clean) / np.exp(clean).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(len(CLASSES), p=row) for row in p])
    sharp = clean * 3.0  # three times too sharp; one window per utterance
    fitted = fit_calibration(list(sharp[:, None]), labels, training_prior(labels))
    assert set(fitted["temperature"]) == {"train", "blend", "balanced"} and fitted["prior_mode"] in fitted["validation"]
    assert fitted["temperature"]["train"] == pytest.approx(3.0, rel=0.15)
    assert fitted["validation"]["train"]["ece"] < 0.05
    np.testing.assert_allclose(fitted["neutral_reference"], sharp[labels == 0].mean(axis=0), atol=1e-3)


def test_registered_calibration_and_baseline():
    calibration = speech_calibration("speech-cnn")
    assert calibration.mode == "train" and calibration.prior is not None and calibration.offset is None
    logits = np.array([[2.0, 0.0, 0, 0, 0, 0, 0, -9]], np.float32)
    probs = calibration.probs(logits)
    assert probs.shape == (1, 8) and probs.sum() == pytest.approx(1.0, abs=1e-6) and probs.argmax() == 0
    balanced = speech_calibration("speech-cnn", "balanced").probs(logits)
    assert balanced[0, 0] < probs[0, 0]  # neutral was the most frequent class in training: divided out
    rested = calibration.with_baseline(np.tile(logits + np.eye(8)[2], (3, 1)))
    assert rested.offset is not None and calibration.offset is None  # a new calibration; the old one is kept
    with pytest.raises(InputError, match="neutral reference"):
        SpeechCalibration().with_baseline(logits)
    with pytest.raises(InputError, match="prior"):
        speech_calibration("speech-cnn", "uniform")
