"""Knowledge-distillation losses of Lee, Kim & Lee 2023: eq. 1 (soft-target classification) and eq. 2-3
(V/A regression bounded by the teacher). Pure functions of tensors; targets may be soft class distributions."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class DistillConfig:
    alpha: float = 0.5  # eq. 1: weight of the teacher term
    temperature: float = 4.0  # eq. 1: T
    margin: float = 0.02  # eq. 2: m, how much worse than the teacher the student may be before Lb applies
    nu: float = 0.5  # eq. 3: weight of the bound term Lb
    va_weight: float = 1.0  # weight of Lreg against Lcls in the total loss


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE(y, softmax(logits)) for soft (distribution) or hard (index) targets, averaged over the batch."""
    if target.dtype in (torch.int64, torch.int32):
        return F.cross_entropy(logits, target)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def kd_classification_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
                           alpha: float, temperature: float) -> torch.Tensor:
    """Eq. 1: (1-α)·CE(y, σ(Zs)) + 2α·T²·CE(σ(Zs/T), σ(Zt/T)), the second term with the teacher as target."""
    hard = soft_cross_entropy(student_logits, target)
    teacher_probs = F.softmax(teacher_logits.detach() / temperature, dim=1)
    soft = soft_cross_entropy(student_logits / temperature, teacher_probs)
    return (1 - alpha) * hard + 2 * alpha * temperature ** 2 * soft


def teacher_bound_loss(student_va: torch.Tensor, teacher_va: torch.Tensor, target_va: torch.Tensor,
                       margin: float) -> torch.Tensor:
    """Eq. 2: Lb = ‖Rs−y‖² where ‖Rs−y‖² > ‖Rt−y‖² + m, else 0 (per sample, then averaged)."""
    student_err = ((student_va - target_va) ** 2).sum(dim=1)
    teacher_err = ((teacher_va.detach() - target_va) ** 2).sum(dim=1)
    return torch.where(student_err > teacher_err + margin, student_err, torch.zeros_like(student_err)).mean()


def bounded_regression_loss(student_va: torch.Tensor, teacher_va: torch.Tensor | None, target_va: torch.Tensor,
                            margin: float, nu: float) -> torch.Tensor:
    """Eq. 3: Lreg = SmoothL1(Rs, y) + ν·Lb; without a teacher just SmoothL1(Rs, y)."""
    loss = F.smooth_l1_loss(student_va, target_va)
    if teacher_va is not None and nu > 0:
        loss = loss + nu * teacher_bound_loss(student_va, teacher_va, target_va, margin)
    return loss


def student_loss(student: tuple[torch.Tensor, torch.Tensor], teacher: tuple[torch.Tensor, torch.Tensor] | None,
                 target_probs: torch.Tensor, target_va: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    """Total loss Lcls + w·Lreg; with teacher=None it is plain soft-label CE + SmoothL1 (the no-KD baseline)."""
    logits, va = student
    if teacher is None:
        cls = soft_cross_entropy(logits, target_probs)
        reg = bounded_regression_loss(va, None, target_va, cfg.margin, cfg.nu)
    else:
        cls = kd_classification_loss(logits, teacher[0], target_probs, cfg.alpha, cfg.temperature)
        reg = bounded_regression_loss(va, teacher[1], target_va, cfg.margin, cfg.nu)
    return cls + cfg.va_weight * reg
