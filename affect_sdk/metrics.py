"""One metrics core for every evaluation (face, speech, fusion): one implementation each of accuracy, balanced
accuracy, macro-F1, per-class recall, confusion, expected calibration error and CCC, and one JSON schema.

    report = classification_report(labels, probs)     # labels [n] class indices, probs [n, 8]
    report["accuracy"], report["balanced_accuracy"], report["macro_f1"], report["ece"], report["per_class"]["happy"]

A row of `probs` that is not finite (NaN: the modality was missing for that item) is "no prediction": it counts as
wrong and lands in the confusion matrix's last column ("none"); ECE is taken over the rows with a prediction.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from affect_sdk.labels import CLASSES, NUM_CLASSES

NO_PREDICTION = -1  # in a predictions array: nothing was predicted (a missing modality)
CONFUSION_AXES = "rows: true class; columns: predicted class, then 'none' (no prediction), both in CLASSES order"


def predictions(probs: np.ndarray) -> np.ndarray:
    """Arg-max class per row; NO_PREDICTION where the row is not finite (a missing modality)."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, NUM_CLASSES)
    finite = np.isfinite(probs).all(axis=1)
    return np.where(finite, np.nan_to_num(probs).argmax(axis=1), NO_PREDICTION)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """[8, 9] counts: rows true class, columns predicted class and a last 'none' column for NO_PREDICTION."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), dtype=np.int64)
    np.add.at(confusion, (labels, np.where(predicted >= 0, predicted, NUM_CLASSES)), 1)
    return confusion


def accuracy(confusion: np.ndarray) -> float:
    total = confusion.sum()
    return float(np.trace(confusion[:, :NUM_CLASSES]) / total) if total else 0.0


def per_class_recall(confusion: np.ndarray) -> dict[int, float]:
    """Recall of each class present in the data (a row with any count)."""
    return {c: float(confusion[c, c] / confusion[c].sum()) for c in range(NUM_CLASSES) if confusion[c].sum()}


def per_class_f1(confusion: np.ndarray) -> dict[int, float]:
    """F1 of each class present in the data (2 hits / (support + predictions of that class))."""
    scores = {}
    for c in range(NUM_CLASSES):
        support, predicted, hits = confusion[c].sum(), confusion[:NUM_CLASSES, c].sum(), confusion[c, c]
        if support:
            scores[c] = float(2 * hits / (support + predicted)) if hits else 0.0
    return scores


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean recall over the classes present in the data."""
    recalls = per_class_recall(confusion)
    return float(np.mean(list(recalls.values()))) if recalls else 0.0


def macro_f1(confusion: np.ndarray) -> float:
    """Mean F1 over the classes present in the data."""
    scores = per_class_f1(confusion)
    return float(np.mean(list(scores.values()))) if scores else 0.0


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the sample-weighted mean |accuracy - confidence| over equal-width confidence bins (Guo et al. 2017)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def ccc(a: np.ndarray, b: np.ndarray) -> float:
    """Lin's concordance correlation coefficient between two 1-D series (NaN for fewer than 2 values)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2:
        return float("nan")
    cov = ((a - a.mean()) * (b - b.mean())).mean()
    denom = a.var() + b.var() + (a.mean() - b.mean()) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def va_concordance(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """CCC of valence and arousal between two [n, 2] series."""
    return {"valence": round(ccc(pred[:, 0], target[:, 0]), 4), "arousal": round(ccc(pred[:, 1], target[:, 1]), 4)}


def classification_report(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """The one schema of `affect eval vision|audio|fusion`: n, accuracy, balanced_accuracy, macro_f1, ece,
    per_class (recall of each class present), per_class_f1, classes (present), confusion [8][9], confusion_axes."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, NUM_CLASSES)
    confusion = confusion_matrix(labels, predictions(probs))
    present = list(per_class_recall(confusion))
    answered = np.isfinite(probs).all(axis=1)
    return {
        "n": int(len(labels)),
        "accuracy": round(accuracy(confusion), 4),
        "balanced_accuracy": round(balanced_accuracy(confusion), 4),
        "macro_f1": round(macro_f1(confusion), 4),
        "ece": round(expected_calibration_error(probs[answered], labels[answered]), 4) if answered.any() else None,
        "per_class": {CLASSES[c]: round(r, 4) for c, r in per_class_recall(confusion).items()},
        "per_class_f1": {CLASSES[c]: round(f, 4) for c, f in per_class_f1(confusion).items()},
        "classes": [CLASSES[c] for c in present],
        "confusion": confusion.tolist(),
        "confusion_axes": CONFUSION_AXES,
    }
