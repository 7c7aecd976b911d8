"""The one metrics core: every eval's numbers come from here, in one schema."""
import numpy as np
import pytest

from affect_sdk.metrics import ccc, classification_report, expected_calibration_error
from affect_sdk.vision import calibrate

SCHEMA = {"n", "accuracy", "balanced_accuracy", "macro_f1", "ece", "per_class", "per_class_f1", "classes",
          "confusion", "confusion_axes"}


def test_predictions_of_absent_classes_count_as_wrong():
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(8)[[0, 7, 1, 1]]  # one prediction of contempt, which the data does not have
    report = classification_report(labels, probs)
    assert set(report) == SCHEMA
    assert report["accuracy"] == 0.75 and report["classes"] == ["neutral", "happy"]
    assert report["per_class"] == {"neutral": 0.5, "happy": 1.0} and report["balanced_accuracy"] == 0.75
    assert report["confusion"][0][7] == 1 and report["n"] == 4


def test_macro_f1_balanced_accuracy_and_confusion_of_a_small_case():
    report = classification_report([0, 0, 1, 2], np.eye(8)[[0, 1, 1, 2]])
    assert report["confusion"][0][:3] == [1, 1, 0]
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3, abs=1e-4)
    assert report["balanced_accuracy"] == pytest.approx((0.5 + 1 + 1) / 3, abs=1e-4)
    assert report["per_class_f1"]["sad"] == 1.0


def test_a_missing_modality_is_no_prediction_wrong_and_outside_the_ece():
    probs = np.vstack([np.eye(8)[[0, 1]], np.full((1, 8), np.nan)])
    report = classification_report([0, 1, 1], probs)
    assert report["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["confusion"][1][8] == 1  # the 'none' column
    assert report["ece"] == 0.0  # the two answered rows are right with confidence 1


def test_nothing_answered_has_no_ece():
    assert classification_report([0, 1], np.full((2, 8), np.nan))["ece"] is None


def test_ece_is_the_face_calibration_one():
    assert calibrate.expected_calibration_error is expected_calibration_error
    rng = np.random.default_rng(0)
    confident = np.full((1000, 8), 0.0)
    confident[:, 0] = 1.0
    assert expected_calibration_error(confident, rng.integers(0, 2, 1000)) == pytest.approx(0.5, abs=0.05)


def test_ccc_is_one_for_identical_and_lower_for_biased_series():
    a = np.linspace(-1, 1, 50)
    assert ccc(a, a) == pytest.approx(1.0)
    assert ccc(a, a + 0.5) < 0.9
