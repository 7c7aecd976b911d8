"""The ported fer mini-Xception: house input/output convention, no contempt, real accuracy on FER+ Test crops."""
import torch

from affect_sdk.labels import CLASS_INDEX
from affect_sdk.registry import create_model
from affect_sdk.vision.data import read_ferplus, to_input
from affect_sdk.vision.teachers import load_teacher


def test_any_size_gray_or_colour_in_eight_logits_and_va_out():
    teacher = load_teacher("face-mini-xception", torch.device("cpu"))  # by registry name, as distillation does
    for x in (torch.rand(2, 1, 48, 48), torch.rand(2, 3, 97, 80), torch.rand(2, 1, 64, 64)):
        logits, va = teacher(x)
        assert logits.shape == (2, 8) and va.shape == (2, 2)
        assert torch.isfinite(logits).all() and va.abs().max() <= 1


def test_fer_plus_test_crops_read_right_and_contempt_is_never_likely(shared):
    faces = read_ferplus(shared / "data" / "ferplus", "test", limit=200)
    model = create_model("face-mini-xception", device="cpu")
    with torch.no_grad():
        logits, _ = model(to_input(faces.images, 48))
    probs = torch.softmax(logits, dim=1)
    assert probs[:, CLASS_INDEX["contempt"]].max() < 1e-4
    accuracy = (probs.argmax(1).numpy() == faces.labels).mean()
    assert accuracy > 0.55, f"FER+ Test accuracy {accuracy:.3f} on 200 crops: the port is off"
