"""The distillation losses of Lee, Kim & Lee 2023 (eq. 1-3) behave as the paper defines them."""
import math

import torch
import torch.nn.functional as F

from affect_sdk.vision.distill import (DistillConfig, bounded_regression_loss, kd_classification_loss,
                                       soft_cross_entropy, student_loss, teacher_bound_loss)


def test_eq1_is_plain_cross_entropy_when_alpha_is_zero():
    logits, teacher = torch.randn(6, 8), torch.randn(6, 8)
    target = torch.randint(0, 8, (6,))
    assert torch.allclose(kd_classification_loss(logits, teacher, target, alpha=0.0, temperature=4.0),
                          F.cross_entropy(logits, target))


def test_eq1_teacher_term_is_scaled_by_2_alpha_t_squared():
    logits, teacher = torch.randn(5, 8), torch.randn(5, 8)
    target = torch.softmax(torch.randn(5, 8), 1)
    alpha, t = 0.3, 3.0
    expected = (1 - alpha) * soft_cross_entropy(logits, target) + 2 * alpha * t ** 2 * soft_cross_entropy(
        logits / t, torch.softmax(teacher / t, 1))
    assert torch.allclose(kd_classification_loss(logits, teacher, target, alpha, t), expected)


def test_eq1_pulls_the_student_towards_the_teacher():
    teacher = torch.tensor([[4.0, 0, 0, 0, 0, 0, 0, 0]])
    target = torch.full((1, 8), 1 / 8)
    near, far = teacher.clone(), torch.tensor([[0.0, 4, 0, 0, 0, 0, 0, 0]])
    assert kd_classification_loss(near, teacher, target, 1.0, 2.0) < kd_classification_loss(far, teacher, target,
                                                                                           1.0, 2.0)


def test_eq2_bound_is_zero_when_the_student_beats_the_teacher_plus_margin():
    y = torch.tensor([[0.5, -0.2], [0.1, 0.3]])
    student = y + 0.01  # nearly perfect
    teacher = y + 0.5  # far off
    assert teacher_bound_loss(student, teacher, y, margin=0.02).item() == 0.0


def test_eq2_bound_is_the_student_error_when_worse_than_teacher_plus_margin():
    y = torch.zeros(1, 2)
    student, teacher = torch.tensor([[0.6, 0.8]]), torch.tensor([[0.1, 0.0]])
    assert math.isclose(teacher_bound_loss(student, teacher, y, margin=0.02).item(), 1.0, rel_tol=1e-6)
    # within the margin of the teacher: no bound
    assert teacher_bound_loss(torch.tensor([[0.1, 0.05]]), teacher, y, margin=0.02).item() == 0.0


def test_eq3_adds_nu_times_the_bound_to_smooth_l1():
    y = torch.zeros(2, 2)
    student, teacher = torch.tensor([[0.6, 0.8], [0.0, 0.1]]), torch.zeros(2, 2)
    plain = F.smooth_l1_loss(student, y)
    bound = teacher_bound_loss(student, teacher, y, 0.02)
    assert torch.allclose(bounded_regression_loss(student, teacher, y, 0.02, nu=0.5), plain + 0.5 * bound)
    assert torch.allclose(bounded_regression_loss(student, None, y, 0.02, nu=0.5), plain)


def test_student_loss_without_teacher_is_the_no_kd_baseline_and_has_gradients():
    logits = torch.randn(4, 8, requires_grad=True)
    va = torch.tanh(torch.randn(4, 2, requires_grad=True))
    target, target_va = torch.softmax(torch.randn(4, 8), 1), torch.rand(4, 2) - 0.5
    cfg = DistillConfig()
    base = student_loss((logits, va), None, target, target_va, cfg)
    assert torch.allclose(base, soft_cross_entropy(logits, target) + F.smooth_l1_loss(va, target_va))
    kd = student_loss((logits, va), (torch.randn(4, 8), torch.zeros(4, 2)), target, target_va, cfg)
    kd.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
