"""A one-minute live soak (benchmarks/soak.py; the 30-minute one is run by hand): a video file as the camera and
the private PulseAudio microphone; memory, threads and open files stay flat and the JSONL holds every result."""
import pytest

from benchmarks.live import make_inputs
from benchmarks.soak import soak

SECONDS = 45.0  # with encoding the clip and loading the models, the test takes under a minute


@pytest.mark.soak
def test_a_one_minute_live_session_does_not_leak_and_records_everything(pulse_mic, tmp_path):
    video, voice = make_inputs(SECONDS + 5.0, tmp_path)
    report = soak(video, pulse_mic.device, SECONDS, tmp_path / "soak.jsonl", play=lambda: pulse_mic.play(voice))
    # memory: a minute is too short for the 5 % goal of the 30-minute soak to be meaningful; 10 % catches a leak
    # of a frame or a window per step (a 640x480 frame per analysed frame would grow ~1 GB here)
    assert report["rss_growth_pct"] < 10, report["samples"]
    assert report["threads_growth"] <= 0 and report["open_files_growth"] <= 0, report["samples"]
    # the session's own threads are gone after close (native pools of torch/onnxruntime/PulseAudio may stay)
    assert report["python_threads_after_close"] == report["python_threads_before"]
    assert report["threads_after_close"] < report["threads_warm"]
    assert not [f for f in report["open_files_left"] if str(tmp_path) in f], report["open_files_left"]
    assert report["open_files_after_close"] < report["open_files_warm"], report["open_files_left"]
    assert report["frames_analysed"] > 0.5 * SECONDS and report["speech_windows"] > 0.5 * SECONDS / 0.5 * 0.8
    assert report["voiced_windows"] > 0 and report["faces"] > 0
    assert report["jsonl_matches_counts"], report["jsonl"]
    assert report["fused"] >= report["frames_analysed"] - 2  # one fused record per analysed frame
