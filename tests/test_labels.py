"""Canonical classes, dataset mappings and the class -> V/A table."""
import numpy as np
import pytest

from affect_sdk import labels
from affect_sdk.errors import InputError


def test_canonical_order_is_emonet():
    assert labels.CLASSES == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")


def test_ferplus_votes_reorder_to_canonical():
    # one vote in every FER+ column, weighted by position, so the reorder is visible
    votes = np.arange(10)
    out = labels.ferplus_votes_to_canonical(votes)
    by_name = dict(zip(labels.FERPLUS_COLUMNS, votes))
    assert list(out) == [by_name[n] for n in ("neutral", "happiness", "sadness", "surprise", "fear", "disgust",
                                              "anger", "contempt")]


@pytest.mark.parametrize("name, expected", [
    ("Angry", "anger"), ("happiness", "happy"), ("fearful", "fear"), ("surprised", "surprise"),
    ("sadness", "sad"), ("calm", "neutral"), ("contempt", "contempt"), ("boredom", None),
])
def test_synonyms(name, expected):
    assert labels.canonical(name) == expected


def test_unknown_label_is_one_clear_error():
    with pytest.raises(InputError, match="Unknown emotion label 'grumpy'"):
        labels.canonical("grumpy")


def test_dataset_codes():
    assert labels.RAVDESS_CODES["02"] == "neutral"  # calm counted as neutral
    assert labels.EMODB_CODES["L"] is None  # boredom excluded
    assert set(labels.RAVDESS_CODES.values()) | {"contempt"} == set(labels.CLASSES)
    assert set(labels.FER2013_LABELS) | {"contempt"} == set(labels.CLASSES)


def test_va_table_matches_shared_csv(shared):
    import csv

    rows = list(csv.DictReader(open(shared / "data/affect_va/affectnet_class_va.csv")))
    for row in rows:
        v, a = labels.CLASS_VA[row["emotion"]]
        assert (v, a) == (float(row["valence_mean"]), float(row["arousal_mean"]))


def test_va_from_probs_is_expectation():
    one_hot = np.eye(8, dtype=np.float32)
    assert np.allclose(labels.va_from_probs(one_hot), labels.CLASS_VA_ARRAY)
    assert labels.va_from_probs(np.full(8, 1 / 8)).shape == (2,)
