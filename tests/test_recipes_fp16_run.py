"""recipes/fp16_run.py: a run folder copied as fp16 is a run folder the registry reads, with the same outputs."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from affect_sdk.registry import create_model, resolve_model
from affect_sdk.vision.nets import create_teacher

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "fp16_run.py"
ARCH = {"widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "stem_stride": 2}


def load_recipe():
    spec = importlib.util.spec_from_file_location("fp16_run", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fp16_copy_halves_floats_keeps_the_meta_and_the_outputs(tmp_path):
    run, out = tmp_path / "run", tmp_path / "run-fp16"
    run.mkdir()
    torch.manual_seed(0)
    net = create_teacher(**ARCH).eval()
    save_file(net.state_dict(), str(run / "best.safetensors"))
    (run / "model.json").write_text(json.dumps({"factory": "affect_sdk.vision.nets:create_teacher", "arch": ARCH,
                                                "input_size": 48, "task": "face"}))
    assert load_recipe().main([str(run), str(out)]) == 0
    halved = load_file(str(out / "best.safetensors"))
    assert all(v.dtype == torch.float16 for v in halved.values() if v.is_floating_point())
    assert (out / "model.json").read_text() == (run / "model.json").read_text() and not (out / "config.json").exists()
    x = torch.from_numpy(np.random.default_rng(0).random((4, 1, 48, 48), dtype=np.float32))
    with torch.no_grad():
        before, after = net(x)[0], create_model(resolve_model(str(out)))(x)[0]
    assert torch.allclose(before, after, atol=2e-2)


def test_a_folder_without_weights_is_one_sentence_and_exit_2(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as stop:
        load_recipe().main([str(tmp_path / "nothing"), str(tmp_path / "out")])
    assert stop.value.code == 2 and "has no best.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
