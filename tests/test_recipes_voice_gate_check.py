"""recipes/voice_gate_check.py: the gate's trade between speech in noise and noise alone, on real RAVDESS speech."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "voice_gate_check.py"


def load_recipe():
    sys.path.insert(0, str(RECIPE.parent))  # as when it runs as a script: it imports speech_cross_condition
    try:
        spec = importlib.util.spec_from_file_location("voice_gate_check", RECIPE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(RECIPE.parent))
    return module


def test_the_shipped_gate_hears_speech_in_noise_and_not_noise_alone(shared, tmp_path):
    out = tmp_path / "gate.json"
    recipe = load_recipe()
    assert recipe.main(["--data", str(shared / "data" / "ravdess_speech"), "--speakers", "15", "--limit", "3",
                        "--gates", "12/6,6/3", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clean"]["6/3"]["windows_voiced"] == 1.0
    # the earlier 12/6 dB gate lost speech 10 dB above pink noise; the shipped 6/3 keeps most of it
    assert report["noisy"]["6/3"]["windows_voiced"] > report["noisy"]["12/6"]["windows_voiced"] + 0.3
    assert all(row["6/3"] == 0.0 for row in report["noise_only"].values())
    from affect_sdk.audio.features import VadConfig

    assert (VadConfig().contrast_db, VadConfig().evidence_db) == (6.0, 3.0)


def test_bad_gates_are_one_sentence_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        load_recipe().main(["--gates", "six", "--out", str(tmp_path / "x.json")])
    assert stop.value.code == 2 and "ACTIVE/EVIDENCE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        load_recipe().main(["--gates", "6/nan", "--out", str(tmp_path / "x.json")])
    assert stop.value.code == 2 and "ACTIVE/EVIDENCE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        load_recipe().main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x.json")])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
