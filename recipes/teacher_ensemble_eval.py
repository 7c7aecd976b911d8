"""FER+ accuracy of a teacher ensemble as the student is distilled from it: the mean of the members' raw logits.

    python recipes/teacher_ensemble_eval.py --members face-teacher,runs/s3/teacher-r64 --split test
    python recipes/teacher_ensemble_eval.py --members face-teacher,face-teacher-r64,face-mini-xception@0.25 --mirrors

Prints one JSON line per prior mode (train: raw logits; blend and balanced: logit adjustment with FER+'s prior),
with the same metrics as `affect eval vision` (affect_sdk.metrics.classification_report).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from affect_sdk.errors import AffectError
from affect_sdk.labels import CLASSES
from affect_sdk.probs import log_softmax
from affect_sdk.registry import FERPLUS_TRAIN_PRIOR
from affect_sdk.vision.calibrate import PRIOR_MODES, adjust_for_prior, softmax
from affect_sdk.vision.data import read_ferplus
from affect_sdk.metrics import classification_report
from affect_sdk.vision.evaluate import resolve_model
from affect_sdk.vision.infer import FaceAnalyzer
from affect_sdk.vision.teachers import combine_members, member_profile, parse_teacher_members


def ensemble_logits(refs: str, images: np.ndarray, mirrors: bool = False) -> np.ndarray:
    """The ensemble's logits as load_teacher_ensemble combines them (weights, abstention), each member at its own
    input size; with mirrors, each member's log-probabilities are first averaged over the image and its mirror."""
    outputs, weights, known = [], [], []
    for member in parse_teacher_members(refs):
        analyzer = FaceAnalyzer(resolve_model(member.ref), prior="train")
        views = [images] + ([images[:, :, ::-1].copy()] if mirrors else [])
        log_probs = np.mean([log_softmax(analyzer.raw_outputs(v)[0]) for v in views], axis=0)
        outputs.append((torch.from_numpy(log_probs), torch.zeros(len(images), 2)))
        weights.append(member.weight)
        known.append(torch.tensor([c not in member_profile(member.ref)[1] for c in CLASSES]))
    return combine_members(outputs, weights, known)[0].numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", required=True, help="Comma-separated registered models or run folders.")
    parser.add_argument("--data", default="../shared/data/ferplus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--mirrors", action="store_true", help="Average each member over the image and its mirror.")
    args = parser.parse_args(argv)
    try:
        data = read_ferplus(args.data, args.split)
        logits = ensemble_logits(args.members, data.images, args.mirrors)
    except AffectError as exc:
        parser.error(str(exc))  # one sentence, exit 2
    for mode in PRIOR_MODES:
        probs = softmax(adjust_for_prior(logits, np.asarray(FERPLUS_TRAIN_PRIOR), mode))
        metrics = classification_report(data.labels, probs)
        print(json.dumps({"members": args.members, "mirrors": args.mirrors, "split": args.split, "prior": mode,
                          **{k: metrics[k] for k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "per_class")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
