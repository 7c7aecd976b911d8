"""Output calibration of the face models: logit adjustment, temperature, ECE and the personal baseline math."""
import numpy as np
import pytest

from affect_sdk.registry import get_spec, list_models
from affect_sdk.vision.calibrate import (PRIOR_MODES, adjust_for_prior, baseline_offset, calibrated_logits,
                                         class_weights, expected_calibration_error, fit_temperature, softmax,
                                         target_distribution)

PRIOR = np.array([0.4, 0.3, 0.1, 0.1, 0.05, 0.02, 0.02, 0.01])


def test_balanced_prior_divides_the_training_frequencies_out():
    logits = np.log(PRIOR)[None].astype(np.float32)  # a model that only knows the prior
    assert np.allclose(softmax(adjust_for_prior(logits, PRIOR, "train")), PRIOR, atol=1e-6)
    assert np.allclose(softmax(adjust_for_prior(logits, PRIOR, "balanced")), 1 / 8, atol=1e-6)
    blend = softmax(adjust_for_prior(logits, PRIOR, "blend"))[0]
    assert np.allclose(blend, np.sqrt(PRIOR) / np.sqrt(PRIOR).sum(), atol=1e-6)
    assert np.allclose(target_distribution(PRIOR, "blend"), blend)


def test_temperature_fit_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 8))
    labels = np.array([rng.choice(8, p=p) for p in softmax(logits / 2.0)])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.05)


def test_ece_is_zero_for_calibrated_and_large_for_overconfident_predictions():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.2, 1.0, 50000)
    probs = np.stack([confidence, 1 - confidence], 1)
    truthful = np.where(rng.uniform(size=50000) < confidence, 0, 1)
    assert expected_calibration_error(probs, truthful) < 0.01
    overconfident = np.tile([0.99, 0.01], (50000, 1))
    assert expected_calibration_error(overconfident, rng.integers(0, 2, 50000)) > 0.45


def test_class_weights_make_the_labelled_mix_follow_the_target():
    labels = np.array([0] * 90 + [1] * 10)
    w = class_weights(labels, np.array([0.5, 0.5]))
    assert w[labels == 0].sum() == pytest.approx(0.5) and w[labels == 1].sum() == pytest.approx(0.5)


def test_baseline_maps_the_resting_face_onto_the_neutral_reference():
    reference = np.array([3.0, -1, 0, -1, -2, -2, -1, -1])
    resting = reference + np.array([-1.5, 0, 0, 1.2, 0, 0, 0.8, 0]) + np.random.default_rng(2).normal(0, .1, (30, 8))
    offset = baseline_offset(resting, reference)
    corrected = calibrated_logits(resting, prior=None, mode="train", offset=offset)
    # at rest the person now reads like the reference neutral face (same probabilities)
    assert np.allclose(softmax(corrected).mean(0), softmax(reference[None])[0], atol=0.03)
    # an expression still moves the reading away from rest
    smiling = resting.mean(0) + np.array([0, 6, 0, 0, 0, 0, 0, 0])
    assert softmax(calibrated_logits(smiling[None], prior=None, mode="train", offset=offset))[0].argmax() == 1


@pytest.mark.parametrize("spec", list_models("face"), ids=lambda s: s.name)
def test_every_face_model_records_its_prior_temperatures_and_neutral_reference(spec):
    if spec.prior is None:  # a model whose training prior is unknown keeps it: "train" is its only mode
        assert spec.prior_mode == "train" and set(spec.temperature) == {"train"}
    else:
        assert abs(sum(spec.prior) - 1) < 1e-3 and len(spec.prior) == 8 and set(spec.temperature) == set(PRIOR_MODES)
    assert all(0.2 < t < 5 for t in spec.temperature.values())
    assert spec.neutral_reference is not None and np.argmax(spec.neutral_reference) == 0
    assert spec.prior_mode in PRIOR_MODES and get_spec(spec.name) is spec
