"""`affect live` as a user meets it: the shipped demo runs headless and ends by itself; bad devices are one line."""
import json

from typer.testing import CliRunner

from affect_sdk.cli import app

runner = CliRunner()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_demo_runs_headless_ends_by_itself_and_records_everything(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "demo.jsonl"
    result = runner.invoke(app, ["live", "--demo", "--fast", "--preview", "--jsonl", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert "preview is unavailable" in result.output
    summary = last_json(result.output)
    assert summary["frames_analysed"] == 97 and summary["faces"] >= 90 and summary["voiced_windows"] >= 1
    assert summary["warnings"] == []
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["kind"] == "fused" for r in lines) == summary["fused"]
    assert any(r["kind"] == "fused" and r["sources"] == ["face", "speech"] for r in lines)


def test_the_readme_command_plays_the_demo_in_real_time_and_prints_a_summary():
    result = runner.invoke(app, ["live", "--demo"])
    assert result.exit_code == 0, result.output
    assert "summary" in result.output and "frames_analysed" in result.output
    seconds = float(next(line for line in result.output.splitlines() if "seconds" in line).split()[-2])
    assert 3.0 <= seconds <= 6.0  # the 3.3 s clip, paced at its own speed


def test_camera_that_does_not_open_is_one_red_line():
    result = runner.invoke(app, ["live", "--camera", "7", "--no-audio"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Camera 7 could not be opened")
    assert "Traceback" not in result.output


def test_unknown_microphone_is_one_red_line(pulse_mic):
    result = runner.invoke(app, ["live", "--no-video", "--mic", "no-such-mic"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: No microphone named 'no-such-mic'")


def test_turning_everything_off_is_one_red_line():
    result = runner.invoke(app, ["live", "--no-audio", "--no-video"])
    assert result.exit_code == 2 and "leave nothing to analyse" in result.output


def test_a_voice_baseline_from_the_first_seconds_is_announced_in_the_record(speech_flac, tmp_path):
    out = tmp_path / "voice.jsonl"
    result = runner.invoke(app, ["live", "--no-video", "--mic", str(speech_flac), "--fast", "--baseline-seconds",
                                 "2", "--baseline-voice", "--jsonl", str(out), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["options"]["baseline_seconds"] == 2 and records[0]["options"]["baseline_voice"] is True
    assert any(r["kind"] == "event" and r["message"].startswith("voice baseline set: the voice of the first 2 s")
               for r in records)
    refused = runner.invoke(app, ["live", "--no-video", "--mic", str(speech_flac), "--baseline-seconds", "2"])
    assert refused.exit_code == 2 and "--baseline-voice" in refused.output and "Traceback" not in refused.output
