"""Properties of the late-fusion rules: valid distributions, fallbacks, dominance, sharpening, class masks."""
import numpy as np
import pytest

from affect_sdk.errors import InputError
from affect_sdk.fusion.rules import (
    BASE_RULES, DEFAULT_MASKS, FittedWeights, class_mask, confidence, entropy_weighted, fuse, fuse_va,
    product_of_experts, weighted_mean,
)
from affect_sdk.labels import CLASS_INDEX, NUM_CLASSES

ALL = (class_mask(), class_mask())


def _random_probs(rng, n):
    x = rng.gamma(0.5, size=(n, NUM_CLASSES))
    return x / x.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("rule", list(BASE_RULES))
def test_every_rule_gives_distributions_and_falls_back_to_the_present_modality(rule):
    rng = np.random.default_rng(0)
    face, speech = _random_probs(rng, 50), _random_probs(rng, 50)
    fused = fuse(rule, face, speech)
    assert fused.shape == (50, NUM_CLASSES)
    np.testing.assert_allclose(fused.sum(axis=1), 1.0, atol=1e-9)
    assert (fused >= 0).all()
    # a whole modality missing -> the other one, renormalised over the classes it covers
    np.testing.assert_allclose(fuse(rule, face, None), face, atol=1e-3)  # PoE: up to its floor
    only_speech = fuse(rule, None, speech)
    assert only_speech[:, CLASS_INDEX["contempt"]].max() == 0.0
    np.testing.assert_allclose(only_speech.sum(axis=1), 1.0, atol=1e-9)
    # one row missing (NaN) -> that row falls back; both missing -> NaN row
    speech_gaps = speech.copy()
    speech_gaps[3] = np.nan
    face_gaps = face.copy()
    face_gaps[3] = np.nan
    mixed = fuse(rule, face, speech_gaps)
    np.testing.assert_allclose(mixed[3], face[3], atol=1e-3)
    np.testing.assert_allclose(mixed[4], fused[4], atol=1e-9)
    assert np.isnan(fuse(rule, face_gaps, speech_gaps)[3]).all()


def test_both_missing_is_one_clear_error():
    with pytest.raises(InputError, match="both"):
        weighted_mean(None, None)
    with pytest.raises(InputError, match="Unknown fusion rule"):
        fuse("majority", np.full(8, 0.125), None)


def test_a_certain_modality_dominates_under_entropy_weighting():
    certain = np.eye(NUM_CLASSES)[CLASS_INDEX["sad"]] * 0.97 + 0.03 / NUM_CLASSES
    unsure = np.full(NUM_CLASSES, 1 / NUM_CLASSES)
    unsure[CLASS_INDEX["happy"]] += 0.05
    unsure /= unsure.sum()
    fused = entropy_weighted(certain, unsure, masks=ALL)
    assert fused.argmax() == CLASS_INDEX["sad"]
    assert fused[CLASS_INDEX["sad"]] > 0.85
    assert confidence(certain) > 0.8 > 0.05 > confidence(unsure)
    # the plain mean gives the unsure modality half the say
    assert weighted_mean(certain, unsure, masks=ALL)[CLASS_INDEX["sad"]] < 0.6


def test_product_of_experts_sharpens_identical_inputs_and_floor_prevents_vetoes():
    p = np.array([0.1, 0.5, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    fused = product_of_experts(p, p, masks=ALL)
    assert fused.argmax() == p.argmax() and fused.max() > p.max()
    np.testing.assert_allclose(weighted_mean(p, p, masks=ALL), p, atol=1e-12)  # the mean does not sharpen
    veto = np.eye(NUM_CLASSES)[0]  # speech says neutral with probability exactly 1
    face = np.eye(NUM_CLASSES)[1] * 0.9 + 0.1 / NUM_CLASSES
    assert product_of_experts(face, veto, masks=ALL)[1] > 0  # happy survives through the floor


def test_weights_move_the_decision():
    face = np.array([0.0, 0.6, 0.4, 0, 0, 0, 0, 0])
    speech = np.array([0.0, 0.3, 0.7, 0, 0, 0, 0, 0])
    assert weighted_mean(face, speech, weights=(3.0, 1.0), masks=ALL).argmax() == 1
    assert weighted_mean(face, speech, weights=(1.0, 3.0), masks=ALL).argmax() == 2
    per_class = (np.ones(8), np.where(np.arange(8) == 2, 0.1, 1.0))
    assert weighted_mean(face, speech, weights=per_class, masks=ALL).argmax() == 1
    with pytest.raises(InputError, match="non-negative"):
        weighted_mean(face, speech, weights=(-1.0, 1.0))


def test_a_modality_abstains_on_classes_it_cannot_see():
    contempt = CLASS_INDEX["contempt"]
    face = np.full(NUM_CLASSES, 0.05)
    face[contempt] = 0.65
    speech = np.full(NUM_CLASSES, 1 / 7)
    speech[contempt] = 0.0  # a speech model trained without contempt
    for rule in BASE_RULES:
        masked = fuse(rule, face, speech)  # default masks: speech does not cover contempt
        assert masked.argmax() == contempt, rule
    # without the mask speech's zero drags contempt down in the mean
    assert weighted_mean(face, speech, masks=ALL)[contempt] < weighted_mean(face, speech)[contempt]
    # speech mass put on an uncovered class is discarded by renormalisation
    leaky = speech.copy()
    leaky[contempt] = 5.0
    np.testing.assert_allclose(fuse("weighted_mean", None, leaky), fuse("weighted_mean", None, speech))
    assert not DEFAULT_MASKS[1][contempt] and DEFAULT_MASKS[0].all()
    with pytest.raises(InputError, match="Unknown class"):
        class_mask(["boredom"])


def test_fitted_weights_round_trip_and_apply():
    params = FittedWeights("product_of_experts", (2.0,) * 8, (0.5,) * 8)
    again = FittedWeights.from_dict(params.to_dict())
    p, q = np.array([0.5, 0.5, 0, 0, 0, 0, 0, 0]), np.array([0.1, 0.9, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(fuse("fitted", p, q, params=again),
                               product_of_experts(p, q, weights=(2.0, 0.5)))
    with pytest.raises(InputError, match="fitted weights"):
        fuse("fitted", p, q)
    with pytest.raises(InputError):
        FittedWeights.from_dict({"rule": "vote", "face": [1] * 8, "speech": [1] * 8})


def test_fuse_va_weights_by_reliability_and_falls_back():
    face, speech = np.array([0.6, 0.2]), np.array([-0.4, 0.8])
    np.testing.assert_allclose(fuse_va(face, speech), [0.1, 0.5], atol=1e-6)
    np.testing.assert_allclose(fuse_va(face, speech, face_reliability=1.0, speech_reliability=0.0), face, atol=1e-5)
    np.testing.assert_allclose(fuse_va(None, speech), speech)
    rows = fuse_va(np.stack([face, [np.nan, np.nan]]), np.stack([speech, speech]),
                   face_reliability=np.array([0.9, 0.9]), speech_reliability=np.array([0.1, 0.1]))
    np.testing.assert_allclose(rows[0], 0.9 * face + 0.1 * speech, atol=1e-5)
    np.testing.assert_allclose(rows[1], speech)
    with pytest.raises(InputError):
        fuse_va(None, None)
