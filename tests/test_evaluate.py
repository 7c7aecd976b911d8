"""`affect eval fusion` end to end on real RAVDESS audio-visual clips, with the shipped face and speech models."""
import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affect_sdk.cli import app
from affect_sdk.errors import ModelError
from affect_sdk.registry import get_spec

runner = CliRunner()
CLIPS = ("01-01-01-01-01-01-01.mp4", "01-01-08-01-01-02-01.mp4")


@pytest.fixture(scope="module")
def models():
    try:
        get_spec("face-student"), get_spec("speech-cnn")
    except ModelError as exc:
        pytest.skip(f"shipped models not registered yet: {exc}")


@pytest.fixture
def real_clips(shared, tmp_path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in CLIPS:
        shutil.copy(shared / "data/ravdess_av_clips" / name, folder / name)
    return folder


def _write_video(path: Path, frames: np.ndarray, fps: int = 15, wave: np.ndarray | None = None, rate: int = 16000):
    """A real mp4 (H.264, and AAC when `wave` is given) written with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = None
        if wave is not None:
            audio = container.add_stream("aac", rate=rate)
            audio.layout = "mono"
        for img in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        container.mux(video.encode())
        if audio is not None:
            for start in range(0, len(wave), 1024):
                frame = av.AudioFrame.from_ndarray(wave[None, start:start + 1024].astype(np.float32),
                                                   format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                container.mux(audio.encode(frame))
            container.mux(audio.encode())


def _real_frames(path: Path, n: int) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(n), container.decode(video=0))]
    return np.stack(frames)


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_eval_fusion_on_real_clips_prints_json_and_writes_a_report(models, real_clips, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "fusion", "--data", str(real_clips), "--frame-rate", "1",
                                 "--report", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.stdout)
    assert summary["n"] == 2 and summary["classes"] == ["neutral", "surprise"]
    assert not summary["synthetic_pairs"] and "synthetic" not in summary["title"]
    systems = [summary["vision"], summary["audio"], *summary["fused"].values()]
    assert {"weighted_mean", "product_of_experts", "entropy_weighted"} <= set(summary["fused"])
    for s in systems:
        assert 0.0 <= s["accuracy"] <= 1.0 and 0.0 <= s["macro_f1"] <= 1.0
        assert set(s["per_class"]) == {"neutral", "surprise"}
    assert summary["counts"]["no_face"] == 0 and summary["counts"]["no_audio"] == 0
    assert any("fitted: skipped" in n for n in summary["notes"])  # 2 clips are too few to fit weights
    for name in ("report.md", "fusion.json", "confusion.png", "per_class.png", "trajectory.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "fusion.json").read_text())
    assert len(saved["clips"]) == 2 and saved["trajectory"]["fused"]
    assert "| vision |" in (out / "report.md").read_text()


def test_missing_audio_missing_face_unreadable_file_and_unknown_label_are_counted(models, shared, tmp_path):
    from affect_sdk.audio.features import load_audio

    folder = tmp_path / "mixed"
    folder.mkdir()
    source = shared / "data/ravdess_av_clips" / CLIPS[1]
    _write_video(folder / "silent_film.mp4", _real_frames(source, 30), fps=15)  # a face, no audio track
    grey = np.full((30, 240, 320, 3), 128, np.uint8)
    _write_video(folder / "no_face.mp4", grey, fps=15, wave=load_audio(source)[:32000])  # a voice, no face
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    shutil.copy(source, folder / "weird.mp4")
    (folder / "labels.csv").write_text("path,label\nsilent_film.mp4,surprised\nno_face.mp4,surprise\n"
                                       "broken.mp4,neutral\nweird.mp4,sarcasm\n")
    (folder / "SYNTHETIC_PAIRS.md").write_text("# synthetic pairs\n")  # as written by recipes/synthetic_pairs.py
    result = runner.invoke(app, ["eval", "fusion", "--data", str(folder), "--frame-rate", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.stdout)
    assert summary["synthetic_pairs"] and "synthetic pairs" in summary["title"]
    counts = summary["counts"]
    assert counts == {"found": 4, "evaluated": 2, "skipped": 2, "no_face": 1, "no_audio": 1, "no_face_no_audio": 0}
    problems = {Path(p["path"]).name: p["problem"] for p in summary["problems"]}
    assert "unknown label" in problems["weird.mp4"] and "unreadable" in problems["broken.mp4"]
    assert "no audio track" in problems["silent_film.mp4"] and "no face" in problems["no_face.mp4"]
    # the fallback fuses each clip from the modality it has: every fused rule predicts both clips
    for rule in summary["fused"].values():
        assert sum(rule["confusion"][i][-1] for i in range(8)) == 0
    assert sum(summary["vision"]["confusion"][i][-1] for i in range(8)) == 1  # vision alone: one 'none'


def test_empty_folder_is_one_clear_error_line(tmp_path):
    result = runner.invoke(app, ["eval", "fusion", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "No audio-visual clips" in lines[0]
