"""Fitting fusion weights: a known better modality gets the larger weight and the NLL drops."""
import numpy as np
import pytest

from affect_sdk.errors import InputError
from affect_sdk.fusion.fit import FitConfig, fit_weights, nll
from affect_sdk.fusion.rules import class_mask, fuse
from affect_sdk.labels import NUM_CLASSES

ALL = (class_mask(), class_mask())


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _synthetic(seed=0, n=400):
    """A sharp, informative face model and a weak speech model over the same labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, n)
    face = _softmax(2.5 * np.eye(NUM_CLASSES)[y] + rng.normal(0, 1.0, (n, NUM_CLASSES)))
    speech = _softmax(0.6 * np.eye(NUM_CLASSES)[y] + rng.normal(0, 1.0, (n, NUM_CLASSES)))
    return face, speech, y


@pytest.mark.parametrize("rule", ["product_of_experts", "weighted_mean"])
def test_fit_recovers_the_better_modality(rule):
    face, speech, y = _synthetic()
    params = fit_weights(face, speech, y, config=FitConfig(rule=rule), masks=ALL)
    assert params.face[0] > 2 * params.speech[0]
    assert params.meta["nll_fitted"] < params.meta["nll_start"]
    # it generalises: fresh data from the same process also gets a lower NLL than equal weights
    face2, speech2, y2 = _synthetic(seed=1)
    assert nll(fuse("fitted", face2, speech2, params=params, masks=ALL), y2) < \
        nll(fuse(rule, face2, speech2, masks=ALL), y2)


def test_per_class_weights_find_the_class_a_modality_is_good_at():
    rng = np.random.default_rng(2)
    n = 800
    y = rng.integers(0, NUM_CLASSES, n)
    noise = rng.normal(0, 1.0, (2, n, NUM_CLASSES))
    face = _softmax(1.2 * np.eye(NUM_CLASSES)[y] + noise[0])
    # speech is reliable only for class 2 (sad): strong evidence there, noise elsewhere
    speech_logits = noise[1].copy()
    speech_logits[:, 2] += np.where(y == 2, 3.0, -1.0)
    speech = _softmax(speech_logits)
    params = fit_weights(face, speech, y, config=FitConfig(rule="product_of_experts", per_class=True), masks=ALL)
    speech_w = np.array(params.speech)
    assert speech_w[2] == speech_w.max()


def test_fit_rejects_bad_input():
    face, speech, y = _synthetic(n=20)
    with pytest.raises(InputError, match="both"):
        fit_weights(face, None, y)
    with pytest.raises(InputError, match="class indices"):
        fit_weights(face, speech, y + 10)
    with pytest.raises(InputError, match="rule"):
        fit_weights(face, speech, y, config=FitConfig(rule="vote"))
