"""From the speech model's raw window logits to the probabilities it reports: the face's calibration math
(affect_sdk.vision.calibrate: personal baseline, class prior, temperature), applied to speech, and its fitting.

    calibration = speech_calibration("speech-cnn", prior="balanced")
    probs = calibration.probs(logits)                      # [N, 8] raw logits -> calibrated probabilities

The prior is the training speakers' class frequencies (RAVDESS actors 01-14: neutral with calm 20 %, the six
other emotions 13.3 % each). Contempt never occurs in training; it is given the geometric mean of the other
classes' priors, so that dividing the prior out leaves it where the model put it. Temperatures (one per prior
mode) and the neutral reference of the personal baseline are fitted on the validation speakers only. The
temperature is fitted on utterance readings (the mean of the voiced windows' probabilities), the unit that
classify_file and `affect eval audio` report and score; it applies to every window.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASS_INDEX, NUM_CLASSES
from affect_sdk.probs import softmax
from affect_sdk.vision.calibrate import (PRIOR_MODES, adjust_for_prior, baseline_offset, calibrated_logits,
                                         class_weights, target_distribution)


@dataclass(frozen=True, eq=False)
class SpeechCalibration:
    """What turns one model's raw logits into reported probabilities: prior mode, temperature, personal baseline."""

    prior: np.ndarray | None = None  # training class prior, CLASSES order; None: not recorded
    mode: str = "train"  # prior mode (affect_sdk.vision.calibrate.PRIOR_STRENGTH)
    temperature: float = 1.0
    offset: np.ndarray | None = None  # personal baseline: per-class logit offset of this speaker's resting voice
    neutral_reference: np.ndarray | None = None  # the model's mean raw logits on neutral speech (validation)

    def probs(self, logits: np.ndarray) -> np.ndarray:
        return softmax(calibrated_logits(np.asarray(logits, np.float32), prior=self.prior, mode=self.mode,
                                         temperature=self.temperature, offset=self.offset))

    def with_baseline(self, resting_logits: np.ndarray) -> "SpeechCalibration":
        """This calibration, with a personal baseline taken from raw logits of the speaker at rest."""
        if self.neutral_reference is None:
            raise InputError("This speech model has no neutral reference in the registry, so it cannot take a "
                             "personal baseline; fit one with `affect train audio-calibration`.")
        if len(resting_logits) == 0:
            raise InputError("A voice baseline needs at least one window with 0.5 s of voiced speech at rest; "
                             "got none.")
        return replace(self, offset=baseline_offset(resting_logits, self.neutral_reference))


def speech_calibration(model: str, prior: str | None = None) -> SpeechCalibration:
    """The registered calibration of a speech model under a prior mode (None: the model's default mode)."""
    from affect_sdk.registry import get_spec_for

    spec = get_spec_for(model, "speech")
    mode = prior or spec.prior_mode
    if mode not in PRIOR_MODES:
        raise InputError(f"prior must be one of {', '.join(PRIOR_MODES)}; got {prior!r}.")
    if spec.prior is None and mode != "train":
        raise InputError(f"Model {model!r} records no training prior, so only prior='train' applies to it; "
                         f"got {mode!r}.")
    return SpeechCalibration(
        prior=None if spec.prior is None else np.asarray(spec.prior, np.float32), mode=mode,
        temperature=float(spec.temperature.get(mode, 1.0)),
        neutral_reference=None if spec.neutral_reference is None else np.asarray(spec.neutral_reference, np.float32))


# ---------------------------------------------------------------- fitting (validation speakers only)
def training_prior(labels: np.ndarray) -> np.ndarray:
    """Class frequencies of training labels; a class that never occurs gets the geometric mean of the others."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=NUM_CLASSES).astype(np.float64)
    prior = counts / counts.sum()
    present = prior > 0
    prior[~present] = np.exp(np.log(prior[present]).mean())
    return prior


def fit_utterance_temperature(logits: list[np.ndarray], labels: np.ndarray, weights: np.ndarray) -> float:
    """The T minimising the weighted NLL of utterance readings: each the mean of softmax(window logits / T)
    over its voiced windows, as classify_file and `affect eval audio` read an utterance."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        t = np.exp(log_t)
        probs = np.stack([softmax(z / t).mean(axis=0) for z in logits])
        return float(-(weights * np.log(np.clip(probs[rows, labels], 1e-12, None))).sum())

    found = minimize_scalar(nll, bounds=(np.log(0.1), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return round(float(np.exp(found.x)), 4)


def fit_calibration(logits: list[np.ndarray], labels: np.ndarray, prior: np.ndarray) -> dict[str, Any]:
    """Calibration from the raw window logits of validation utterances (one [windows, 8] array each) and their
    labels: a temperature per prior mode (utterance-level weighted NLL, the face's class weighting), the neutral
    reference (mean logits of neutral utterances' windows), each mode's utterance accuracy, balanced accuracy and
    ECE, and the default `prior_mode`: the best mean of accuracy and balanced accuracy, as for the face (ties:
    "train")."""
    from affect_sdk.metrics import classification_report

    labels = np.asarray(labels, np.int64)
    temperature, scores = {}, {}
    for mode in PRIOR_MODES:
        adjusted = [adjust_for_prior(np.asarray(z, np.float64), prior, mode) for z in logits]
        temperature[mode] = fit_utterance_temperature(adjusted, labels,
                                                      class_weights(labels, target_distribution(prior, mode)))
        probs = np.stack([softmax(z / temperature[mode]).mean(axis=0) for z in adjusted])
        report = classification_report(labels, probs)
        scores[mode] = {k: report[k] for k in ("accuracy", "balanced_accuracy", "ece")}
    order = list(PRIOR_MODES)  # train first: ties keep the training prior
    best = max(order, key=lambda m: (scores[m]["accuracy"] + scores[m]["balanced_accuracy"], -order.index(m)))
    neutral = np.concatenate([z for z, y in zip(logits, labels) if y == CLASS_INDEX["neutral"]]).mean(axis=0)
    return {"prior": [round(float(p), 5) for p in prior], "temperature": temperature,
            "neutral_reference": [round(float(v), 4) for v in neutral], "prior_mode": best, "validation": scores}


def fit_speech_calibration(model: str, data: str | Path, *, train_speakers: Sequence[str],
                           val_speakers: Sequence[str], backend: str | None = None) -> dict[str, Any]:
    """Fit a speech model's calibration: prior from the training speakers' labels, temperatures and neutral
    reference on the validation speakers' voiced windows. A run folder gets it in its model.json; a registered
    model's values go into affect_sdk/registry.py by hand."""
    import json

    from affect_sdk.audio.data import read_dataset, select_speakers
    from affect_sdk.audio.features import load_audio
    from affect_sdk.audio.infer import SpeechAnalyzer
    from affect_sdk.registry import resolve_model

    _, items = read_dataset(data)
    train_items, val_items = select_speakers(items, train_speakers), select_speakers(items, val_speakers)
    if not train_items or not val_items:
        raise InputError(f"No utterances of the training or validation speakers in {data}.")
    prior = training_prior(np.array([CLASS_INDEX[u.label] for u in train_items]))
    analyzer = SpeechAnalyzer(resolve_model(model), backend=backend, prior="train")
    logits, labels = [], []
    for item in val_items:
        window_logits = analyzer.voiced_logits(load_audio(item.path))
        if len(window_logits):  # an utterance with no voiced window is read low-evidence: not for fitting
            logits.append(window_logits)
            labels.append(CLASS_INDEX[item.label])
    result = fit_calibration(logits, np.array(labels), prior)
    run = Path(model)
    if (run / "model.json").is_file():
        meta = json.loads((run / "model.json").read_text())
        meta["calibration"] = result
        (run / "model.json").write_text(json.dumps(meta, indent=2))
    return {"model": model, "train_speakers": list(train_speakers), "val_speakers": list(val_speakers), **result}
