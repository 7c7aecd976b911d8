"""Accuracy and balanced accuracy of face models on FER+ Valid under logit adjustment s * log(train prior).

The default prior mode was chosen by the mean of the two (face-student card, "Calibration"); this re-checks it on
any model. FER+ Valid only: the Test split is never read.

    python recipes/face_prior_sweep.py --models face-student,face-teacher-r64-webcam
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from affect_sdk.errors import AffectError
from affect_sdk.metrics import classification_report

DATA = Path("../shared/data/ferplus")


def sweep(logits: np.ndarray, labels: np.ndarray, prior: np.ndarray, strengths: list[float]) -> list[dict]:
    """One row per strength s: accuracy, balanced accuracy, their mean and neutral recall of argmax(z - s log p)."""
    rows = []
    for s in strengths:
        report = classification_report(labels, np.eye(logits.shape[1])[(logits - s * np.log(prior)).argmax(1)])
        acc, bal = report["accuracy"], report["balanced_accuracy"]
        rows.append({"s": s, "accuracy": acc, "balanced_accuracy": bal, "mean": (acc + bal) / 2,
                     "neutral_recall": report["per_class"]["neutral"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="face-student", help="registered models or run folders, comma-separated")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--strengths", default="0,0.25,0.5,0.75,1")
    args = parser.parse_args(argv)
    try:
        strengths = [float(s) for s in args.strengths.split(",")]
    except ValueError:
        parser.error(f"--strengths {args.strengths}: give numbers, comma-separated, e.g. 0,0.5,1.")
    from affect_sdk.vision.data import cached_ferplus
    from affect_sdk.vision.infer import FaceAnalyzer

    try:
        valid = cached_ferplus(args.data, "valid", ".cache")
        prior = cached_ferplus(args.data, "train", ".cache").soft.mean(axis=0)
        for name in args.models.split(","):
            logits, _ = FaceAnalyzer(name.strip(), backend="torch", prior="train").raw_outputs(valid.images)
            for row in sweep(logits, valid.labels, prior, strengths):
                print(name, " ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    except AffectError as exc:
        parser.error(str(exc))  # one sentence, exit 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
