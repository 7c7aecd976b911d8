"""From a face model's raw logits to probabilities a user can trust: personal baseline, class prior, temperature.

Pure numpy functions. The order, applied to raw logits z [N, 8]:

1. Personal baseline (optional). A person's resting face gives mean raw logits r. Some faces look sad or angry at
   rest (brows, mouth corners), and a generic model reads that look on every frame. The model's mean raw logits
   over faces the annotators called neutral (FER+ Valid) are the reference n. The correction shifts the
   person's rest onto that reference: z' = z - (r - n). At rest the person then reads exactly as a typical
   neutral face does (neutral, with the model's usual confidence); an expression moves the logits away from the
   person's own rest, not from an average face's. Because softmax ignores a common shift, only the offsets
   between classes matter; neutral's own row of n keeps the neutral evidence the model gives to resting faces.
2. Class prior. The model learned FER+'s class frequencies (neutral 36 %, contempt 0.6 %) as part of its
   evidence. Logit adjustment (Menon et al. 2021) divides them out: z'' = z' - s * log(prior), with strength s.
   "balanced" (s = 1) is the Bayes-optimal rule when every class is equally likely a priori; "train" (s = 0)
   keeps FER+'s frequencies (best plain accuracy on FER+-like data); "blend" (s = 0.5) assumes a prior halfway
   between the two in log space (prior**0.5), for users whose expression frequencies are unknown: it maximises
   the mean of accuracy and balanced accuracy on FER+ Valid for both shipped models (see the face-student card).
3. Temperature. z''' = z'' / T with T fitted on FER+ Valid (never Test) for each prior mode, so that the
   probabilities' confidence matches their accuracy (ECE).
"""
from __future__ import annotations

import math

import numpy as np

from affect_sdk.metrics import expected_calibration_error  # noqa: F401  (its home is the metrics core)
from affect_sdk.probs import log_softmax, softmax  # noqa: F401  (softmax: re-exported for the face API)

PRIOR_STRENGTH = {"train": 0.0, "blend": 0.5, "balanced": 1.0}
PRIOR_MODES = tuple(PRIOR_STRENGTH)


def adjust_for_prior(logits: np.ndarray, prior: np.ndarray | None, mode: str) -> np.ndarray:
    """Logit adjustment: subtract s * log(prior), s = PRIOR_STRENGTH[mode]; no recorded prior leaves them."""
    strength = PRIOR_STRENGTH[mode]
    if strength == 0 or prior is None:
        return logits
    log_prior = np.log(np.clip(np.asarray(prior, dtype=np.float64), 1e-6, None))
    return logits - (strength * log_prior).astype(logits.dtype)


def target_distribution(prior: np.ndarray, mode: str) -> np.ndarray:
    """The class distribution a prior mode is right for: prior**(1 - s), normalised."""
    target = np.asarray(prior, dtype=np.float64) ** (1.0 - PRIOR_STRENGTH[mode])
    return target / target.sum()


def baseline_offset(resting_logits: np.ndarray, neutral_reference: np.ndarray) -> np.ndarray:
    """The per-class offset r - n a person's resting face adds to the model's raw logits (see the module text)."""
    resting_logits = np.asarray(resting_logits, dtype=np.float64)
    if resting_logits.ndim != 2 or len(resting_logits) == 0:
        raise ValueError("resting_logits must be a non-empty [N, classes] array")
    offset = resting_logits.mean(axis=0) - np.asarray(neutral_reference, dtype=np.float64)
    return (offset - offset.mean()).astype(np.float32)  # softmax ignores a common shift; keep it centred


def calibrated_logits(logits: np.ndarray, *, prior: np.ndarray | None, mode: str, temperature: float = 1.0,
                      offset: np.ndarray | None = None) -> np.ndarray:
    """Raw logits -> baseline-corrected, prior-adjusted, temperature-scaled logits (steps 1-3 above)."""
    z = np.asarray(logits, dtype=np.float32)
    if offset is not None:
        z = z - offset
    return adjust_for_prior(z, prior, mode) / np.float32(temperature)


# ---------------------------------------------------------------- fitting (FER+ Valid only)
def class_weights(labels: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample weights that make the labelled set's class mix follow `target` (importance weights)."""
    counts = np.bincount(labels, minlength=len(target)).astype(np.float64)
    w = np.where(counts > 0, np.asarray(target) / np.maximum(counts, 1), 0.0)[labels]
    return w / w.sum()


def fit_temperature(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The T minimising the (weighted) negative log-likelihood of labels under softmax(logits / T).

    Golden-section search over log T in [log 0.1, log 20]: the NLL is unimodal in T for fixed logits.
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    w = np.full(len(labels), 1.0 / len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-(w * log_softmax(logits / math.exp(log_t))[rows, labels]).sum())

    lo, hi = math.log(0.1), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return round(math.exp((lo + hi) / 2), 4)
