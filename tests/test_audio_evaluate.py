"""`affect eval audio` on a tiny RAVDESS subset: utterance-level scores as the last stdout line."""
import json

from typer.testing import CliRunner

from affect_sdk.cli import app


def test_eval_audio_cli_prints_one_json_line(tmp_path, shared):
    actor = shared / "data" / "ravdess_speech" / "Actor_07"
    for name in ("03-01-03-01-02-01-07", "03-01-03-01-02-02-07", "03-01-05-02-01-01-07", "03-01-04-01-01-01-07"):
        (tmp_path / f"{name}.flac").symlink_to(actor / f"{name}.flac")
    out = CliRunner().invoke(app, ["eval", "audio", "--data", str(tmp_path), "--json", "--backend", "torch"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output.strip().splitlines()[-1])
    assert {"accuracy", "balanced_accuracy", "macro_f1", "ece", "n", "per_class", "confusion", "classes"} <= set(result)
    assert result["n"] == 3 and result["layout"] == "ravdess"
    assert result["duplicates_dropped"] == ["03-01-03-01-02-02-07.flac"]


def test_eval_audio_cli_bad_folder_is_one_error_line(tmp_path):
    out = CliRunner().invoke(app, ["eval", "audio", "--data", str(tmp_path / "missing"), "--json"])
    assert out.exit_code == 2 and "does not exist" in out.output


def test_eval_audio_prior_option(tmp_path, shared):
    actor = shared / "data" / "ravdess_speech" / "Actor_15"
    for name in ("03-01-01-01-01-01-15", "03-01-05-02-01-01-15"):
        (tmp_path / f"{name}.flac").symlink_to(actor / f"{name}.flac")
    out = CliRunner().invoke(app, ["eval", "audio", "--data", str(tmp_path), "--json", "--backend", "torch",
                                   "--prior", "balanced"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output.strip().splitlines()[-1])
    assert result["prior"] == "balanced" and result["low_evidence"] == 0 and 0 <= result["ece"] <= 1
    bad = CliRunner().invoke(app, ["eval", "audio", "--data", str(tmp_path), "--prior", "even"])
    assert bad.exit_code == 2 and "prior must be one of" in bad.output
