"""Fit fusion weights (per modality, optionally per class) on validation probabilities by minimising the NLL.

Small and dependency-free: weights are exp(theta) (so they stay positive), the gradient of the mean negative
log-likelihood of the fused probabilities is taken by central differences (at most 16 parameters), and the
optimiser is BFGS with a backtracking (Armijo) line search: the problem is small and smooth. A small L2 pull on
theta keeps the scale-free rules (weighted mean) identifiable. The rules themselves are called, so what is
fitted is exactly what is applied.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.fusion.rules import BASE_RULES, DEFAULT_FLOOR, FittedWeights, product_of_experts
from affect_sdk.labels import NUM_CLASSES


@dataclass(frozen=True)
class FitConfig:
    rule: str = "product_of_experts"
    per_class: bool = False  # one weight per modality and class instead of one per modality
    l2: float = 1e-3  # pull of log-weights towards 0 (weight 1)
    max_iter: int = 100
    tol: float = 1e-7  # stop when an accepted step improves the loss by less than this
    floor: float = DEFAULT_FLOOR


def _fused(rule: str, face, speech, weights, floor: float, masks) -> np.ndarray:
    if rule == "product_of_experts":
        return product_of_experts(face, speech, weights=weights, floor=floor, masks=masks)
    return BASE_RULES[rule](face, speech, weights=weights, masks=masks)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of integer labels under probabilities [N, 8] (rows with NaN skipped)."""
    ok = np.isfinite(probs).all(axis=-1)
    if not ok.any():
        return float("nan")
    picked = probs[ok, labels[ok]]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


def _check(face, speech, labels):
    f = None if face is None else np.asarray(face, dtype=np.float64)
    s = None if speech is None else np.asarray(speech, dtype=np.float64)
    y = np.asarray(labels)
    if f is None or s is None:
        raise InputError("Fitting fusion weights needs both face and speech validation probabilities.")
    if f.ndim != 2 or f.shape != s.shape or f.shape[1] != NUM_CLASSES or y.shape != (f.shape[0],):
        raise InputError(f"Fitting expects face and speech probabilities [N, {NUM_CLASSES}] and labels [N]; "
                         f"got {f.shape}, {s.shape} and {y.shape}.")
    if len(y) == 0:
        raise InputError("Fitting fusion weights needs at least one labelled validation example; got none.")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= NUM_CLASSES:
        raise InputError(f"Fitting labels must be class indices 0..{NUM_CLASSES - 1}.")
    return f, s, y


def fit_weights(face: np.ndarray, speech: np.ndarray, labels: Sequence[int], *, config: FitConfig = FitConfig(),
                masks: Sequence[np.ndarray] | None = None) -> FittedWeights:
    """Weights for `config.rule` that minimise the validation NLL of the fused probabilities."""
    if config.rule not in BASE_RULES:
        raise InputError(f"Cannot fit weights for rule {config.rule!r}; expected one of {', '.join(BASE_RULES)}.")
    f, s, y = _check(face, speech, labels)
    n_per = NUM_CLASSES if config.per_class else 1

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.exp(theta).reshape(2, n_per)
        return np.broadcast_to(w[0], (NUM_CLASSES,)), np.broadcast_to(w[1], (NUM_CLASSES,))

    def loss(theta: np.ndarray) -> float:
        value = nll(_fused(config.rule, f, s, unpack(theta), config.floor, masks), y)
        return value + config.l2 * float(np.mean(theta ** 2))

    def grad(theta: np.ndarray, h: float = 1e-4) -> np.ndarray:
        g = np.zeros_like(theta)
        for i in range(theta.size):
            step = np.zeros_like(theta)
            step[i] = h
            g[i] = (loss(theta + step) - loss(theta - step)) / (2 * h)
        return g

    theta = np.zeros(2 * n_per)
    start = current = loss(theta)
    g = grad(theta)
    inv_hessian = np.eye(theta.size)
    iterations = 0
    for iterations in range(1, config.max_iter + 1):  # BFGS with a backtracking (Armijo) line search
        direction = -inv_hessian @ g
        if float(direction @ g) >= 0:  # not a descent direction: restart from the gradient
            inv_hessian, direction = np.eye(theta.size), -g
        step = 1.0
        while step > 1e-8:
            candidate = theta + step * direction
            value = loss(candidate)
            if value <= current + 1e-4 * step * float(direction @ g):
                break
            step *= 0.5
        else:
            break
        g_new = grad(candidate)
        s_k, y_k = candidate - theta, g_new - g
        improvement = current - value
        theta, current, g = candidate, value, g_new
        if improvement < config.tol or float(g @ g) < 1e-14:
            break
        sy = float(s_k @ y_k)
        if sy > 1e-12:
            rho = 1.0 / sy
            eye = np.eye(theta.size)
            inv_hessian = (eye - rho * np.outer(s_k, y_k)) @ inv_hessian @ (eye - rho * np.outer(y_k, s_k)) \
                + rho * np.outer(s_k, s_k)
    w_face, w_speech = unpack(theta)
    return FittedWeights(
        rule=config.rule, face=tuple(float(v) for v in w_face), speech=tuple(float(v) for v in w_speech),
        floor=config.floor,
        meta={"n": int(len(y)), "per_class": config.per_class, "nll_start": round(start, 6),
              "nll_fitted": round(current, 6), "iterations": iterations},
    )
