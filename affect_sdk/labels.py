"""Canonical emotion classes, dataset label mappings and the class -> valence/arousal table."""
from __future__ import annotations

import numpy as np

from affect_sdk.errors import InputError

# EmoNet / AffectNet order (Toisoul et al. 2021; Lee, Kim & Lee 2023).
CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
NUM_CLASSES = len(CLASSES)
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}

# Per-class mean (valence, arousal) over the 4,000 manually annotated AffectNet validation images (500 per class),
# from ../shared/data/affect_va/affectnet_class_va.csv (Mollahosseini, Hasani & Mahoor 2017). These are what
# AffectNet's annotators gave, not a textbook circumplex (happy has low mean arousal, fear mildly negative valence).
# Used as anchors to derive V/A targets from class distributions wherever no per-sample V/A label exists.
CLASS_VA_SOURCE = "AffectNet validation set, per-class mean valence/arousal (Mollahosseini et al. 2017)"
CLASS_VA: dict[str, tuple[float, float]] = {
    "neutral": (-0.0247, -0.0185),
    "happy": (0.6720, 0.0808),
    "sad": (-0.6281, -0.2670),
    "surprise": (0.1831, 0.7005),
    "fear": (-0.1174, 0.7600),
    "disgust": (-0.6843, 0.4460),
    "anger": (-0.4259, 0.5537),
    "contempt": (-0.5106, 0.5762),
}
CLASS_VA_ARRAY = np.array([CLASS_VA[c] for c in CLASSES], dtype=np.float32)  # (8, 2)

# FER+ label.csv vote columns after the image name and box (Barsoum et al. 2016).
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
# FER2013 integer labels (Goodfellow et al. 2013): 0 Angry 1 Disgust 2 Fear 3 Happy 4 Sad 5 Surprise 6 Neutral.
FER2013_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# RAVDESS emotion code (3rd field of the file name). Calm has no canonical class: it is counted as neutral.
RAVDESS_CODES: dict[str, str] = {
    "01": "neutral", "02": "neutral", "03": "happy", "04": "sad",
    "05": "anger", "06": "fear", "07": "disgust", "08": "surprise",
}
# Berlin EmoDB emotion letter (6th character of the file name). Boredom (L, Langeweile) has no canonical
# counterpart and is excluded: it maps to None.
EMODB_CODES: dict[str, str | None] = {
    "W": "anger", "L": None, "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral",
}
# CK+ / common folder names and synonyms -> canonical. Names that are deliberately excluded map to None.
SYNONYMS: dict[str, str | None] = {
    **{c: c for c in CLASSES},
    "neutrality": "neutral", "calm": "neutral",
    "happiness": "happy", "joy": "happy", "happy": "happy",
    "sadness": "sad", "sorrow": "sad",
    "surprised": "surprise", "surprise": "surprise",
    "fearful": "fear", "afraid": "fear", "scared": "fear",
    "disgusted": "disgust", "disgust": "disgust",
    "angry": "anger", "anger": "anger",
    "contemptuous": "contempt", "contempt": "contempt",
    "boredom": None, "bored": None,
}


def canonical(name: str) -> str | None:
    """Map a dataset's label name to a canonical class; None for classes that are knowingly excluded (boredom).

    Raises InputError for a name that is not known at all.
    """
    key = str(name).strip().lower()
    if key not in SYNONYMS:
        raise InputError(f"Unknown emotion label {name!r}; expected one of {', '.join(CLASSES)} or a common synonym.")
    return SYNONYMS[key]


def ferplus_votes_to_canonical(votes: np.ndarray) -> np.ndarray:
    """Reorder FER+ vote counts (..., 10 columns) into canonical class order (..., 8); unknown/NF dropped."""
    votes = np.asarray(votes)
    order = [FERPLUS_COLUMNS.index(n) for n in ("neutral", "happiness", "sadness", "surprise", "fear",
                                                 "disgust", "anger", "contempt")]
    return votes[..., order]


def va_from_probs(probs: np.ndarray) -> np.ndarray:
    """Expected (valence, arousal) under a class distribution (..., 8) -> (..., 2), using CLASS_VA anchors."""
    return np.asarray(probs, dtype=np.float32) @ CLASS_VA_ARRAY
