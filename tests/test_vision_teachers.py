import pytest
import torch
import torch.nn.functional as F

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES
from affect_sdk.vision.teachers import combine_members, load_teacher, load_teacher_ensemble, parse_teacher_members

CONTEMPT = CLASSES.index("contempt")


def test_members_and_weights_are_read_from_the_command_line():
    members = parse_teacher_members("face-teacher, runs/t1 ,face-mini-xception@0.25")
    assert [(m.ref, m.weight) for m in members] == [("face-teacher", 1.0), ("runs/t1", 1.0),
                                                    ("face-mini-xception", 0.25)]
    for bad in ("face-teacher@0", "face-teacher@-1", "face-teacher@x", " , "):
        with pytest.raises(InputError):
            parse_teacher_members(bad)


def test_members_that_know_every_class_combine_as_the_mean_of_their_logits():
    torch.manual_seed(0)
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    va = torch.zeros(4, 2)
    everything = torch.ones(8, dtype=torch.bool)
    logits, _ = combine_members([(a, va), (b, va + 1)], [1.0, 1.0], [everything, everything])
    assert torch.allclose(torch.softmax(logits, 1), torch.softmax((a + b) / 2, 1), atol=1e-6)


def test_a_member_that_never_learned_a_class_abstains_on_it():
    torch.manual_seed(1)
    knows_all, lacks_contempt = torch.randn(4, 8), torch.randn(4, 8)
    lacks_contempt[:, CONTEMPT] = -30.0  # what a 7-class model reports for the class it never saw
    va_a, va_b = torch.full((4, 2), 0.2), torch.full((4, 2), -0.4)
    known = [torch.ones(8, dtype=torch.bool), torch.tensor([c != "contempt" for c in CLASSES])]
    logits, va = combine_members([(knows_all, va_a), (lacks_contempt, va_b)], [1.0, 0.25], known)
    assert torch.allclose(logits[:, CONTEMPT], F.log_softmax(knows_all, 1)[:, CONTEMPT])
    assert torch.allclose(va, (va_a + 0.25 * va_b) / 1.25)


def test_a_registered_ensemble_runs_each_member_at_its_own_input_size():
    x = torch.rand(3, 1, 48, 48)
    teacher = load_teacher("face-teacher", torch.device("cpu"))
    ensemble = load_teacher_ensemble("face-teacher,face-mini-xception@0.25", torch.device("cpu"))
    logits, va = ensemble(x)
    assert logits.shape == (3, 8) and va.shape == (3, 2)
    at_64 = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    expected = (F.log_softmax(teacher(x)[0], 1) + 0.25 * F.log_softmax(load_teacher(
        "face-mini-xception", torch.device("cpu"))(at_64)[0], 1)) / 1.25
    assert torch.allclose(logits[:, :CONTEMPT], expected[:, :CONTEMPT], atol=1e-5)
    contempt_alone = F.log_softmax(teacher(x)[0], 1)[:, CONTEMPT]
    assert torch.allclose(logits[:, CONTEMPT], contempt_alone, atol=1e-5)  # mini-Xception abstained
    with pytest.raises(InputError, match="no member knows contempt"):
        load_teacher_ensemble("face-mini-xception", torch.device("cpu"))
