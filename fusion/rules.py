"""Late-fusion rules: pure numpy functions merging face and speech class probabilities [..., 8] and V/A [..., 2].

Conventions shared by every rule:
- Inputs are probabilities in CLASSES order, any leading shape. `None` means the modality is missing for the
  whole call; a row containing NaN means it is missing for that row. A missing modality is left out and the
  rule falls back to the other one; when both are missing a row comes out as NaN (a whole call: InputError).
- Class masks say which classes a modality can see (speech datasets have no contempt). Each modality's
  probabilities are first renormalised over the classes it covers. A modality abstains on a class it does not
  cover: for that class only the covering modalities vote, with weights rescaled so that no class is favoured or
  penalised for having fewer voters (equivalently, the abstaining modality is imputed the covering ones' value).
- Weights are one number per modality or one per modality and class ([8]); larger means trusted more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES, NUM_CLASSES

MODALITIES: tuple[str, ...] = ("face", "speech")
# The face model is trained on FER+ (all 8 classes); speech corpora (RAVDESS, EmoDB) have no contempt.
FACE_CLASSES: tuple[str, ...] = CLASSES
SPEECH_CLASSES: tuple[str, ...] = tuple(c for c in CLASSES if c != "contempt")
DEFAULT_FLOOR = 1e-4
_EPS = 1e-12

ArrayLike = Any
Weights = Sequence[ArrayLike]  # (face weight, speech weight), each a scalar or [8]


def class_mask(classes: Sequence[str] | None = None) -> np.ndarray:
    """Boolean [8] mask in CLASSES order, True for the classes given (all classes for None)."""
    if classes is None:
        return np.ones(NUM_CLASSES, dtype=bool)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise InputError(f"Unknown class name(s) {unknown} in a class mask; expected names from {', '.join(CLASSES)}.")
    if not classes:
        raise InputError("A class mask must cover at least one class.")
    return np.array([c in classes for c in CLASSES], dtype=bool)


DEFAULT_MASKS: tuple[np.ndarray, np.ndarray] = (class_mask(FACE_CLASSES), class_mask(SPEECH_CLASSES))


def renormalise(probs: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
    """Probabilities renormalised over the classes in `mask` (zero elsewhere); an all-zero row becomes uniform."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, None)
    cover = np.ones(p.shape[-1], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    p = np.where(cover, p, 0.0)
    total = p.sum(axis=-1, keepdims=True)
    uniform = np.broadcast_to(cover / cover.sum(), p.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > _EPS, p / np.where(total > _EPS, total, 1.0), uniform)


def normalised_entropy(probs: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
    """Entropy over the covered classes divided by its maximum log(K): 0 certain, 1 uniform. Shape [...]."""
    cover = np.ones(NUM_CLASSES, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    p = renormalise(probs, cover)
    k = int(cover.sum())
    if k <= 1:
        return np.zeros(p.shape[:-1])
    h = -(p * np.log(np.clip(p, _EPS, None))).sum(axis=-1)
    return np.clip(h / np.log(k), 0.0, 1.0)


def confidence(probs: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
    """Confidence of a class distribution = 1 - normalised entropy (0 uniform, 1 one-hot). Shape [...]."""
    return 1.0 - normalised_entropy(probs, mask)


# ------------------------------------------------------------------------------------------------ internals
def _as_probs(x: ArrayLike | None, name: str) -> np.ndarray | None:
    if x is None:
        return None
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != NUM_CLASSES:
        raise InputError(f"The {name} probabilities have shape {arr.shape}; expected [..., {NUM_CLASSES}].")
    return arr


def _stack(face: ArrayLike | None, speech: ArrayLike | None, masks: Sequence[ArrayLike] | None):
    """-> q [2, ..., 8] renormalised over each modality's classes (0 where missing), present [2, ...], cover [2, 8]."""
    f, s = _as_probs(face, "face"), _as_probs(speech, "speech")
    if f is None and s is None:
        raise InputError("Nothing to fuse: both the face and the speech probabilities are missing.")
    if f is not None and s is not None and f.shape != s.shape:
        raise InputError(f"Face probabilities {f.shape} and speech probabilities {s.shape} differ in shape.")
    shape = (f if f is not None else s).shape
    cover = np.stack([np.asarray(m, dtype=bool) for m in (masks if masks is not None else DEFAULT_MASKS)])
    if cover.shape != (2, NUM_CLASSES):
        raise InputError(f"Class masks must be two boolean arrays of {NUM_CLASSES}; got shape {cover.shape}.")
    q = np.zeros((2,) + shape)
    present = np.zeros((2,) + shape[:-1], dtype=bool)
    for m, arr in enumerate((f, s)):
        if arr is None:
            continue
        present[m] = np.isfinite(arr).all(axis=-1)
        q[m] = renormalise(np.where(present[m][..., None], arr, 0.0), cover[m])
    return q, present, cover


def _weight_array(weights: Weights, ndim: int) -> np.ndarray:
    """(w_face, w_speech) with scalars or [8] -> [2, 1, ..., 8] broadcastable against q [2, ..., 8]."""
    if len(weights) != 2:
        raise InputError(f"Fusion weights must be one entry per modality ({', '.join(MODALITIES)}); "
                         f"got {len(weights)}.")
    rows = []
    for w in weights:
        w = np.asarray(w, dtype=np.float64)
        if w.ndim > 1 or (w.ndim == 1 and w.shape[0] != NUM_CLASSES):
            raise InputError(f"A fusion weight must be a number or {NUM_CLASSES} numbers; got shape {w.shape}.")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise InputError("Fusion weights must be finite and non-negative.")
        rows.append(np.broadcast_to(w, (NUM_CLASSES,)))
    return np.stack(rows).reshape((2,) + (1,) * (ndim - 1) + (NUM_CLASSES,))


def _voters(w: np.ndarray, present: np.ndarray, cover: np.ndarray, ndim: int):
    """Effective per-class weights of covering, present modalities and the rescale for abstaining ones."""
    cover_b = cover.reshape((2,) + (1,) * (ndim - 1) + (NUM_CLASSES,))
    w_present = w * present[..., None]
    w_cover = w_present * cover_b
    s_present, s_cover = w_present.sum(axis=0), w_cover.sum(axis=0)
    return w_cover, s_present, s_cover


def _finish(fused: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Renormalise; rows with no modality present become NaN."""
    any_present = present.any(axis=0)
    total = fused.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = fused / np.where(total > 0, total, 1.0)
    out = np.where(total > 0, out, 1.0 / NUM_CLASSES)
    return np.where(any_present[..., None], out, np.nan)


def _mean(q, present, cover, w) -> np.ndarray:
    w_cover, _, s_cover = _voters(w, present, cover, q.ndim - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fused = np.where(s_cover > 0, (w_cover * q).sum(axis=0) / np.where(s_cover > 0, s_cover, 1.0), 0.0)
    return _finish(fused, present)


# ------------------------------------------------------------------------------------------------ rules
def weighted_mean(face: ArrayLike | None, speech: ArrayLike | None, *, weights: Weights = (1.0, 1.0),
                  masks: Sequence[ArrayLike] | None = None) -> np.ndarray:
    """Arithmetic (linear opinion pool) fusion: sum_m w_m p_m / sum_m w_m per class, then renormalised."""
    q, present, cover = _stack(face, speech, masks)
    return _mean(q, present, cover, _weight_array(weights, q.ndim - 1))


def product_of_experts(face: ArrayLike | None, speech: ArrayLike | None, *, weights: Weights = (1.0, 1.0),
                       floor: float = DEFAULT_FLOOR, masks: Sequence[ArrayLike] | None = None) -> np.ndarray:
    """Log-linear (geometric opinion pool): softmax(sum_m w_m log max(p_m, floor)).

    Weights are not normalised, so they also act as inverse temperatures: two identical inputs with weight 1
    each give a sharper distribution than either. The floor keeps one modality's near-zero from vetoing a class.
    """
    if not floor > 0:
        raise InputError(f"The product-of-experts floor must be positive; got {floor}.")
    q, present, cover = _stack(face, speech, masks)
    w = _weight_array(weights, q.ndim - 1)
    w_cover, s_present, s_cover = _voters(w, present, cover, q.ndim - 1)
    log_q = np.log(np.maximum(q, floor))
    with np.errstate(invalid="ignore", divide="ignore"):
        # abstaining modalities take the covering ones' weighted-mean log-probability (rescale by s_present/s_cover)
        z = np.where(s_cover > 0, (w_cover * log_q).sum(axis=0) * s_present / np.where(s_cover > 0, s_cover, 1.0),
                     -np.inf)
    z_max = np.max(np.where(np.isfinite(z), z, -np.inf), axis=-1, keepdims=True)
    z_max = np.where(np.isfinite(z_max), z_max, 0.0)
    fused = np.where(np.isfinite(z), np.exp(z - z_max), 0.0)
    return _finish(fused, present)


def entropy_weighted(face: ArrayLike | None, speech: ArrayLike | None, *, weights: Weights = (1.0, 1.0),
                     masks: Sequence[ArrayLike] | None = None, min_confidence: float = 1e-3) -> np.ndarray:
    """Weighted mean whose per-sample weights are w_m * confidence_m, confidence = 1 - normalised entropy.

    A certain modality dominates an uncertain one; `min_confidence` keeps two uniform inputs equally weighted.
    """
    q, present, cover = _stack(face, speech, masks)
    conf = np.stack([confidence(q[m], cover[m]) for m in range(2)]) + min_confidence  # [2, ...]
    w = _weight_array(weights, q.ndim - 1) * conf[..., None]
    return _mean(q, present, cover, w)


@dataclass(frozen=True)
class FittedWeights:
    """Weights fitted on validation probabilities (affect_sdk.fusion.fit) for one base rule; JSON round-trips."""

    rule: str  # "weighted_mean", "product_of_experts" or "entropy_weighted"
    face: tuple[float, ...]  # 8 per-class weights (all equal when fitted per modality only)
    speech: tuple[float, ...]
    floor: float = DEFAULT_FLOOR
    meta: dict[str, Any] = field(default_factory=dict)  # n, nll before/after, per_class flag, ...

    @property
    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.face, dtype=np.float64), np.asarray(self.speech, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "face": [round(float(v), 6) for v in self.face],
                "speech": [round(float(v), 6) for v in self.speech], "floor": self.floor, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FittedWeights":
        try:
            rule, face, speech = data["rule"], tuple(map(float, data["face"])), tuple(map(float, data["speech"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"Fitted fusion weights need 'rule', 'face' and 'speech' entries: {exc}.") from exc
        if rule not in BASE_RULES or len(face) != NUM_CLASSES or len(speech) != NUM_CLASSES:
            raise InputError(f"Fitted fusion weights must name one of {', '.join(BASE_RULES)} and give "
                             f"{NUM_CLASSES} weights per modality.")
        return cls(rule, face, speech, float(data.get("floor", DEFAULT_FLOOR)), dict(data.get("meta", {})))


def fitted(face: ArrayLike | None, speech: ArrayLike | None, *, params: FittedWeights,
           masks: Sequence[ArrayLike] | None = None) -> np.ndarray:
    """Apply fitted weights with the base rule they were fitted for."""
    if params.rule == "product_of_experts":
        return product_of_experts(face, speech, weights=params.weights, floor=params.floor, masks=masks)
    return BASE_RULES[params.rule](face, speech, weights=params.weights, masks=masks)


BASE_RULES: dict[str, Callable[..., np.ndarray]] = {
    "weighted_mean": weighted_mean,
    "product_of_experts": product_of_experts,
    "entropy_weighted": entropy_weighted,
}
RULE_NAMES: tuple[str, ...] = (*BASE_RULES, "fitted")


def fuse(rule: str, face: ArrayLike | None, speech: ArrayLike | None, *, weights: Weights | None = None,
         params: FittedWeights | None = None, masks: Sequence[ArrayLike] | None = None) -> np.ndarray:
    """Fuse by rule name (one of RULE_NAMES); 'fitted' needs `params`."""
    if rule == "fitted":
        if params is None:
            raise InputError("Rule 'fitted' needs fitted weights; fit them with affect_sdk.fusion.fit.fit_weights.")
        return fitted(face, speech, params=params, masks=masks)
    if rule not in BASE_RULES:
        raise InputError(f"Unknown fusion rule {rule!r}; expected one of {', '.join(RULE_NAMES)}.")
    return BASE_RULES[rule](face, speech, weights=weights if weights is not None else (1.0, 1.0), masks=masks)


def fuse_va(face_va: ArrayLike | None, speech_va: ArrayLike | None, *, face_reliability: ArrayLike = 1.0,
            speech_reliability: ArrayLike = 1.0) -> np.ndarray:
    """Valence/arousal [..., 2] as the reliability-weighted mean of the two modalities (e.g. their confidences).

    A missing modality (None or NaN row) falls back to the other; zero reliability on both gives the plain mean.
    """
    parts = [None if v is None else np.asarray(v, dtype=np.float64) for v in (face_va, speech_va)]
    if parts[0] is None and parts[1] is None:
        raise InputError("Nothing to fuse: both the face and the speech valence/arousal are missing.")
    shape = (parts[0] if parts[0] is not None else parts[1]).shape
    if shape[-1:] != (2,) or any(p is not None and p.shape != shape for p in parts):
        raise InputError(f"Valence/arousal inputs must both have shape [..., 2]; got "
                         f"{[None if p is None else p.shape for p in parts]}.")
    vals = np.stack([np.zeros(shape) if p is None else p for p in parts])
    present = np.stack([np.zeros(shape[:-1], bool) if p is None else np.isfinite(p).all(axis=-1) for p in parts])
    rel = np.stack([np.broadcast_to(np.asarray(r, dtype=np.float64), shape[:-1])
                    for r in (face_reliability, speech_reliability)])
    rel = np.where(np.isfinite(rel), np.clip(rel, 0.0, None), 0.0) + 1e-6
    w = rel * present
    total = w.sum(axis=0)
    vals = np.where(present[..., None], vals, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (w[..., None] * vals).sum(axis=0) / np.where(total > 0, total, 1.0)[..., None]
    return np.where((total > 0)[..., None], out, np.nan)
