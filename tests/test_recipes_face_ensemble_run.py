"""recipes/face_ensemble_run.py and FaceEnsemble: two ResNet runs as one model, scored as the teacher ensemble is."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from affect_sdk import registry
from affect_sdk.registry import create_model, resolve_model
from affect_sdk.vision.nets import create_teacher
from affect_sdk.vision.teachers import combine_members

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "face_ensemble_run.py"
ARCH = {"widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "stem_stride": 2}
FACTORY = "affect_sdk.vision.nets:create_teacher"


def load_recipe():
    spec = importlib.util.spec_from_file_location("face_ensemble_run", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(folder: Path, seed: int, arch: dict = ARCH, size: int = 48) -> torch.nn.Module:
    folder.mkdir()
    torch.manual_seed(seed)
    net = create_teacher(**arch).eval()
    with torch.no_grad():  # a trained-looking head: the members must disagree for the test to mean anything
        net.heads.classes.weight.normal_(0, 0.5)
    save_file(net.state_dict(), str(folder / "best.safetensors"))
    (folder / "model.json").write_text(json.dumps({"factory": FACTORY, "arch": arch, "input_size": size,
                                                   "task": "face"}))
    return net


def test_the_ensemble_run_computes_the_teacher_ensemble_of_its_members(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # run folders registered here go with it
    nets = [write_run(tmp_path / f"m{i}", seed=i) for i in range(2)]
    out = tmp_path / "pair"
    assert load_recipe().main([str(tmp_path / "m0"), str(tmp_path / "m1"), "--out", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["arch"]["members"] == 2
    x = torch.from_numpy(np.random.default_rng(0).random((5, 1, 48, 48), dtype=np.float32))
    with torch.no_grad():
        logits, va = create_model(resolve_model(str(out)))(x)
        expected = combine_members([net(x) for net in nets], [1.0, 1.0], [torch.ones(8, dtype=torch.bool)] * 2)
        single = nets[0](x)[0]
    assert torch.allclose(logits, expected[0], atol=1e-5) and torch.allclose(va, expected[1], atol=1e-5)
    assert not torch.allclose(torch.softmax(logits, 1), torch.softmax(single, 1), atol=1e-3)  # both members count


def test_half_stores_fp16_and_mismatched_members_are_one_sentence_exit_2(tmp_path, capsys):
    write_run(tmp_path / "m0", seed=0)
    write_run(tmp_path / "wide", seed=1, arch={**ARCH, "widths": [16, 32, 64, 128]})
    recipe = load_recipe()
    with pytest.raises(SystemExit) as stop:
        recipe.main([str(tmp_path / "m0"), str(tmp_path / "wide"), "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2 and "must share architecture" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit) as stop:
        recipe.main([str(tmp_path / "m0"), "--out", str(tmp_path / "alone")])
    assert stop.value.code == 2 and "at least 2 members" in capsys.readouterr().err
    assert recipe.main([str(tmp_path / "m0"), str(tmp_path / "m0"), "--out", str(tmp_path / "h"), "--half"]) == 0
    from safetensors.torch import load_file

    assert {v.dtype for v in load_file(str(tmp_path / "h" / "best.safetensors")).values()
            if v.is_floating_point()} == {torch.float16}


def test_the_ensemble_exports_to_one_onnx_graph_that_matches_torch(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    from dataclasses import replace

    from affect_sdk.export import TOLERANCE, export_model
    from affect_sdk.registry import get_spec, register

    for i in range(2):
        write_run(tmp_path / f"m{i}", seed=i)
    load_recipe().main([str(tmp_path / "m0"), str(tmp_path / "m1"), "--out", str(tmp_path / "pair")])
    register(replace(get_spec(resolve_model(str(tmp_path / "pair"))), name="test-face-pair"))
    done = export_model("test-face-pair", tmp_path)
    assert done.path.is_file() and done.max_abs_diff <= TOLERANCE and done.quantization is None
