"""FER+ accuracy of a teacher ensemble as the student is distilled from it: the mean of the members' raw logits.

    python recipes/teacher_ensemble_eval.py --members face-teacher,runs/s3/teacher-r64 --split test

Prints one JSON line per prior mode (train: raw logits; blend and balanced: logit adjustment with FER+'s prior),
with the same metrics as `affect eval vision` (affect_sdk.metrics.classification_report).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from affect_sdk.registry import FERPLUS_TRAIN_PRIOR
from affect_sdk.vision.calibrate import PRIOR_MODES, adjust_for_prior, softmax
from affect_sdk.vision.data import read_ferplus
from affect_sdk.metrics import classification_report
from affect_sdk.vision.evaluate import resolve_model
from affect_sdk.vision.infer import FaceAnalyzer


def ensemble_logits(members: list[str], images: np.ndarray) -> np.ndarray:
    """Mean raw logits of the members (each at its own input size), as load_teacher_ensemble averages them."""
    return np.mean([FaceAnalyzer(resolve_model(m), prior="train").raw_outputs(images)[0] for m in members], axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", required=True, help="Comma-separated registered models or run folders.")
    parser.add_argument("--data", default="../shared/data/ferplus")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    members = [m.strip() for m in args.members.split(",") if m.strip()]
    data = read_ferplus(args.data, args.split)
    logits = ensemble_logits(members, data.images)
    for mode in PRIOR_MODES:
        probs = softmax(adjust_for_prior(logits, np.asarray(FERPLUS_TRAIN_PRIOR), mode))
        metrics = classification_report(data.labels, probs)
        print(json.dumps({"members": members, "split": args.split, "prior": mode,
                          **{k: metrics[k] for k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "per_class")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
