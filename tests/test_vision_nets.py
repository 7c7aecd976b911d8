"""Teacher and student networks, the student's compute budget and the shipped, checksummed weights."""
import shutil
from dataclasses import replace

import pytest
import torch

from affect_sdk import registry
from affect_sdk.errors import ModelError
from affect_sdk.registry import create_model, get_spec, register, verified_path
from affect_sdk.vision.nets import count_gmac, create_student, create_teacher


@pytest.mark.parametrize("factory", [create_teacher, create_student])
def test_nets_take_gray_or_bgr_and_give_logits_and_bounded_va(factory):
    net = factory().eval()
    with torch.no_grad():
        for channels, size in ((1, 48), (3, 64)):
            logits, va = net(torch.rand(2, channels, size, size))
            assert logits.shape == (2, 8) and va.shape == (2, 2)
            assert va.abs().max() <= 1


def test_shipped_student_is_within_0_3_gmac_and_smaller_than_its_teacher_ensemble():
    def gmac(name: str) -> float:
        spec = get_spec(name)
        return count_gmac(create_model(name, pretrained=False), spec.preprocess["input_size"])

    student = gmac("face-student")
    assert 0 < student <= 0.30
    # the four-member ensemble its distilled twin learned from (the card's KD comparison)
    ensemble = ("face-teacher", "face-teacher-r64", "face-teacher-r64-s2", "face-mini-xception")
    assert student < sum(gmac(name) for name in ensemble)


@pytest.mark.parametrize("name", ["face-student", "face-teacher"])
def test_registered_face_weights_verify_and_load(name):
    assert verified_path(name).is_file()
    model = create_model(name)
    assert not model.training
    with torch.no_grad():
        probs = torch.softmax(model(torch.rand(1, 1, 48, 48))[0], 1)
    assert torch.isclose(probs.sum(), torch.tensor(1.0))


def test_replaced_weights_fail_their_checksum(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the tampered entry goes with the test
    spec = get_spec("face-student")
    copy = tmp_path / "student.safetensors"
    shutil.copy(spec.path, copy)
    with open(copy, "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x01\x02\x03")
    register(replace(spec, name="face-student-tampered", weights=str(copy)))
    with pytest.raises(ModelError, match="sha256"):
        create_model("face-student-tampered")


def test_a_deepened_resnet_computes_what_the_shallow_one_did_until_it_trains(tmp_path):
    import json

    import pytest
    import torch
    from safetensors.torch import save_file

    from affect_sdk.errors import InputError
    from affect_sdk.vision.train import warm_start

    arch = {"widths": [8, 16, 32, 64], "stem_stride": 2}
    torch.manual_seed(0)
    shallow = create_teacher(depths=[1, 1, 1, 1], **arch)
    for m in shallow.modules():  # trained-looking BatchNorm statistics, so the check means something
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0), m.weight.data.uniform_(0.5, 1.5)
    run = tmp_path / "run"
    run.mkdir()
    save_file(shallow.state_dict(), str(run / "best.safetensors"))
    (run / "model.json").write_text(json.dumps({"arch": {**arch, "depths": [1, 1, 1, 1]}}))
    deep = create_teacher(depths=[2, 2, 2, 1], **arch)
    said = warm_start(deep, str(run))
    assert "deepened from blocks per stage [1, 1, 1, 1]: 3 identity blocks added (features.2, features.4, " \
           "features.6)" in said
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        for a, b in zip(shallow.eval()(x), deep.eval()(x)):
            torch.testing.assert_close(a, b)
    with pytest.raises(InputError, match="does not fit this architecture: cannot deepen"):
        warm_start(create_teacher(depths=[1, 1, 1, 0], **arch), str(run))  # fewer blocks: nothing to map onto
