"""Data never names code: run folders' model.json and registry entries may only name affect-sdk's own factories;
a user's own factory comes in only through the explicit --teacher option."""
import json
import sys

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from affect_sdk import registry
from affect_sdk.cli import app
from affect_sdk.errors import InputError, ModelError
from affect_sdk.vision.teachers import load_run_model, load_teacher

runner = CliRunner()


def _run_folder(tmp_path, meta) -> "Path":
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    save_file({"w": torch.zeros(1)}, str(run / "best.safetensors"))
    return run


def test_a_model_json_naming_foreign_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "pwned"
    run = _run_folder(tmp_path, {"factory": "subprocess:run", "arch": {"args": ["touch", str(marker)]},
                                 "input_size": 48})
    result = runner.invoke(app, ["eval", "vision", "--data", str(tmp_path), "--model", str(run), "--json"])
    assert result.exit_code == 2 and not marker.exists()
    assert "subprocess:run" in result.output and "not one of affect-sdk's own" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ModelError, match="not one of affect-sdk's own"):
        load_run_model(run, torch.device("cpu"))
    with pytest.raises(ModelError, match="not one of affect-sdk's own"):  # a run folder given as --teacher too
        load_teacher(str(run), torch.device("cpu"))
    assert not marker.exists()


@pytest.mark.parametrize("meta", ["{not json", "[1, 2]",
                                  json.dumps({"factory": "affect_sdk.vision.nets:create_student"}),
                                  json.dumps({"factory": 3, "arch": {}}),
                                  json.dumps({"factory": "affect_sdk.vision.nets:create_student", "arch": {},
                                              "input_size": "big"})],
                         ids=["not-json", "not-object", "no-arch", "factory-not-text", "bad-input-size"])
def test_a_malformed_model_json_is_one_clear_line(tmp_path, meta):
    run = _run_folder(tmp_path, meta)
    result = runner.invoke(app, ["eval", "vision", "--data", str(tmp_path), "--model", str(run), "--json"])
    assert result.exit_code == 2, result.output
    assert "model.json" in result.output and len(result.output.strip().splitlines()) == 1
    with pytest.raises(InputError):
        load_run_model(run, torch.device("cpu"))


def test_an_arch_that_does_not_fit_the_factory_is_a_model_error(tmp_path):
    run = _run_folder(tmp_path, {"factory": "affect_sdk.vision.nets:create_student", "arch": {"no_such": 1}})
    with pytest.raises(ModelError, match="Cannot build"):
        load_run_model(run, torch.device("cpu"))


def test_registry_entries_may_only_name_the_packages_own_factories(tmp_path):
    spec = registry.register(registry.ModelSpec(name="test-foreign", task="face", weights=str(tmp_path / "w"),
                                                sha256="0" * 64, licence="x", factory="os:system"))
    try:
        with pytest.raises(ModelError, match="not one of affect-sdk's own"):
            registry.create_model(spec.name, pretrained=False)
    finally:
        registry._REGISTRY.pop(spec.name)
    for ref in registry.ALLOWED_FACTORIES:  # and every allowed one really exists
        assert callable(registry.resolve_factory(ref))
    # a newly registered model needs its factory on the list (a test failing here says which)
    assert {s.factory for s in registry.list_models() if s.factory} <= registry.ALLOWED_FACTORIES


def test_the_users_own_teacher_comes_in_through_the_explicit_option(tmp_path, monkeypatch):
    (tmp_path / "my_teacher.py").write_text(
        "import torch\n"
        "class Fixed(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.zeros(len(x), 8), torch.zeros(len(x), 2)\n"
        "def build():\n"
        "    return Fixed()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    teacher = load_teacher("my_teacher:build", torch.device("cpu"))
    logits, va = teacher(torch.rand(3, 1, 48, 48))
    assert logits.shape == (3, 8) and va.shape == (3, 2)
    sys.modules.pop("my_teacher", None)
    result = runner.invoke(app, ["train", "vision-student", "--help"], env={"COLUMNS": "200"})
    assert "imports and runs your own" in " ".join(result.output.split())


# ---------------------------------------------------------------- model integrity
def test_a_model_of_the_wrong_task_is_one_clear_line(shared, speech_flac):
    face = shared / "data/ferplus/FER2013Test/fer0032220.png"
    for model, path, wrong in (("speech-cnn", face, "speech"), ("face-student", speech_flac, "face")):
        result = runner.invoke(app, ["predict", "--model", model, str(path)])
        assert result.exit_code == 2, result.output
        assert f"is a {wrong} model" in result.output and len(result.output.strip().splitlines()) == 1


def test_doctor_checks_the_onnx_twin_the_default_backend_runs(tmp_path):
    from affect_sdk.doctor import model_checks

    shipped = registry.get_spec("face-student")
    broken = tmp_path / "face-student.onnx"
    broken.write_bytes((registry.WEIGHTS_DIR / shipped.onnx).read_bytes()[:-100] + b"\0" * 100)
    spec = registry.register(registry.ModelSpec(
        name="test-broken-twin", task="face", weights=str(shipped.path), sha256=shipped.sha256, licence="x",
        factory=shipped.factory, arch=shipped.arch, onnx=str(broken), onnx_sha256=shipped.onnx_sha256))
    try:
        rows = {row["name"]: row["state"] for row in model_checks()}
    finally:
        registry._REGISTRY.pop(spec.name)
    assert rows["face-student"] == "ok"
    assert str(broken) in rows["test-broken-twin"] and "corrupted" in rows["test-broken-twin"]
