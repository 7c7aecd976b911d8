"""Live sessions with real parts: video files and image sequences as the camera, a private PulseAudio server as the
microphone, the shipped models, fusion on one session clock and a JSON Lines record of everything."""
import json
import threading
import time

import cv2
import numpy as np
import pytest

from affect_sdk.errors import DeviceError, InputError
from affect_sdk.fusion.sync import SyncConfig
from affect_sdk.session import Frame, FrameSlot, Session, demo_clip


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def kinds(records):
    out = {}
    for r in records:
        out.setdefault(r["kind"], []).append(r)
    return out


def assert_paired_within_ages(fused, config=SyncConfig()):
    for f in fused:
        if f.face_age is not None:
            assert 0.0 <= f.face_age <= config.max_face_age_s + 1e-6
        if f.speech_age is not None:
            assert 0.0 <= f.speech_age <= config.max_speech_age_s + 1e-6


def assert_strictly_increasing(times):
    assert all(b > a for a, b in zip(times, times[1:]))


@pytest.fixture()
def faceless_frames(tmp_path):
    """An image sequence with no face in it: 2 s of a moving grey gradient at 25 fps (OpenCV's sequence rate)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    for i in range(50):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.dstack([np.roll(ramp, 4 * i, axis=1)] * 3))
    return str(folder / "%04d.png")


def test_demo_clip_as_camera_and_microphone_pairs_face_and_voice(tmp_path):
    out = tmp_path / "demo.jsonl"
    with Session(demo=True, fast=True, jsonl=out) as session:
        fused = list(session)
    summary = session.summary()
    assert summary["frames_analysed"] == 97 and summary["frames_dropped"] == 0  # fast: every frame, none dropped
    assert summary["faces"] >= 90 and summary["voiced_windows"] >= 1
    assert fused, "no fused results"
    assert_strictly_increasing([f.t for f in fused])
    assert_paired_within_ages(fused)
    both = [f for f in fused if f.sources == ("face", "speech")]
    assert both, "face and voice were never fused"
    assert all(f.note == "" for f in both)
    assert all(f.sources == ("face",) and f.note for f in fused if f.t < 2.0)  # the first 2 s window is not heard yet
    records = kinds(read_jsonl(out))
    assert len(records["fused"]) == len(fused)
    assert len(records["face"]) == summary["faces"] and len(records["speech"]) == summary["speech_windows"]
    face_times = [r["t"] for r in records["face"]]
    assert face_times == sorted(face_times)


def test_pulseaudio_microphone_and_video_file_run_in_real_time(pulse_mic, speech_flac, tmp_path):
    out = tmp_path / "live.jsonl"
    with Session(camera=demo_clip(), mic=pulse_mic.device, duration=3.0, jsonl=out) as session:
        player = pulse_mic.play(speech_flac)
        started = time.monotonic()
        fused = list(session)
        wall = time.monotonic() - started
    player.wait(timeout=10)
    summary = session.summary()
    assert 2.8 <= wall <= 6.0  # paced at the clip's own frame rate, ended by the duration
    assert summary["voiced_windows"] >= 1, summary  # the speech played into PulseAudio was heard
    assert summary["frames_analysed"] + summary["frames_dropped"] == summary["frames_captured"]
    assert_strictly_increasing([f.t for f in fused])
    assert_paired_within_ages(fused)
    assert any(f.sources == ("face", "speech") for f in fused)
    speech = kinds(read_jsonl(out))["speech"]
    assert all(0.0 < s["t"] < 3.5 for s in speech)  # stamped on the session clock
    assert summary["latency_ms_p95"] is not None


def test_silent_microphone_gives_face_only_results_that_say_so(pulse_mic):
    with Session(camera=demo_clip(), mic=pulse_mic.device, duration=2.6) as session:
        fused = list(session)
    assert session.summary()["speech_windows"] >= 1
    assert fused and all(f.sources == ("face",) for f in fused)
    assert any(f.note == "face only: speech unvoiced" for f in fused)


def test_faceless_video_gives_speech_only_results(faceless_frames, speech_flac, tmp_path):
    out = tmp_path / "faceless.jsonl"
    with Session(camera=faceless_frames, mic=speech_flac, fast=True, jsonl=out) as session:
        fused = list(session)
    summary = session.summary()
    assert summary["frames_analysed"] == 50 and summary["faces"] == 0
    assert fused and all(f.sources in (("speech",), ()) for f in fused)
    assert any(f.sources == ("speech",) and f.note == "speech only: no face in view" for f in fused)
    assert_strictly_increasing([f.t for f in fused])
    assert "face" not in kinds(read_jsonl(out))


@pytest.fixture()
def one_second_video(tmp_path):
    """The first second (30 frames) of the demo clip, as a video file that ends while its audio goes on."""
    path = tmp_path / "one_second.avi"
    reader = cv2.VideoCapture(str(demo_clip()))
    writer = None
    for _ in range(30):
        ok, frame = reader.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    writer.release()
    reader.release()
    return path


def test_video_that_ends_mid_run_leaves_audio_going_and_keeps_the_record(one_second_video, speech_flac, tmp_path):
    out = tmp_path / "ends.jsonl"
    with Session(camera=one_second_video, mic=speech_flac, fast=True, jsonl=out,
                 sync=SyncConfig(smoothing_tau_s=None)) as session:
        fused = list(session)
    assert_strictly_increasing([f.t for f in fused])
    after = [f for f in fused if f.t > 1.0 + SyncConfig().max_face_age_s]
    assert after and all(f.sources == ("speech",) for f in after)
    assert all(f.note == "speech only: no video frame in the last 0.5 s" for f in after)
    by_kind = kinds(read_jsonl(out))
    assert len(by_kind["face"]) >= 25 and len(by_kind["fused"]) == len(fused)
    assert sorted(r["message"] for r in by_kind["event"]) == ["audio ended", "video ended"]
    assert max(r["end"] for r in by_kind["speech"]) >= 3.0  # audio went on for 2 s after the video ended


def test_callback_mode_calls_back_for_every_fused_result(speech_flac):
    seen = []
    summary = Session(camera=None, mic=speech_flac, fast=True, on_result=seen.append).run()
    assert seen and summary["fused"] == len(seen)
    assert all(f.sources in (("speech",), ()) for f in seen)
    assert_strictly_increasing([f.t for f in seen])


def test_a_slow_reader_gets_the_newest_frame_and_older_ones_are_counted_as_dropped():
    stop = threading.Event()
    live, fast = FrameSlot(drop=True), FrameSlot(drop=False)
    frames = [Frame(image=np.zeros((2, 2, 3), np.uint8), t=i / 30, captured=time.monotonic(), index=i)
              for i in range(3)]
    for frame in frames:
        live.put(frame, stop)
    assert live.get(timeout=0.1).index == 2 and live.dropped == 2
    fast.put(frames[0], stop)
    waiting = threading.Thread(target=fast.put, args=(frames[1], stop))
    waiting.start()
    assert fast.get(timeout=0.1).index == 0  # the reader waited instead of dropping
    waiting.join(timeout=2)
    assert fast.get(timeout=0.1).index == 1 and fast.dropped == 0
    live.end()
    assert live.get(timeout=0.1) is False


def test_camera_that_does_not_open_is_one_clear_device_error():
    with pytest.raises(DeviceError, match=r"^Camera 7 could not be opened; .*\.$"):
        Session(camera=7, mic=None)


def test_missing_video_file_and_bad_options_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="neither a camera index nor an existing video file"):
        Session(camera=tmp_path / "nope.mp4", mic=None)
    with pytest.raises(InputError, match="no such file"):
        Session(camera=None, mic=tmp_path / "nope.wav")
    with pytest.raises(InputError, match="Both camera and microphone are turned off"):
        Session(camera=None, mic=None)
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video")
    with pytest.raises(InputError, match="Cannot read"):
        Session(camera=not_a_video, mic=None)


def test_unknown_microphone_name_is_one_clear_device_error(pulse_mic):
    with pytest.raises(DeviceError, match=r"^No microphone named 'no-such-mic'; input devices here: .*default"):
        Session(camera=None, mic="no-such-mic")


def test_a_file_read_fast_fuses_its_voice_all_along_however_far_ahead_the_audio_runs(speech_flac):
    """Fast mode hears a long file's sound far ahead of its frames (on a video, the voice is analysed far faster
    than the faces): every frame is still fused with the voice heard by its own time, not only the last 16 s."""
    from affect_sdk.audio.features import load_audio

    wave = np.tile(load_audio(speech_flac), 12)  # about 40 s, an utterance every 3.4 s
    chunks = ((i / 16000, wave[i:i + 16000]) for i in range(0, len(wave), 16000))

    def frames_after_the_audio():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (session.latest_speech is None or session.latest_speech.end < 25):
            time.sleep(0.05)  # 25 s of sound are analysed before the first frame comes
        for i in range(int(len(wave) / 16000 * 2)):  # 2 fps of an empty room
            yield i / 2, np.zeros((120, 160, 3), np.uint8)

    fused = []
    session = Session(frames=frames_after_the_audio(), audio=chunks, fast=True, on_result=fused.append)
    session.run()
    assert session.latest_speech.end >= 38
    spans = {int(f.t // 10) for f in fused if "speech" in f.sources}
    assert {0, 1, 2, 3} <= spans


def test_a_file_read_fast_keeps_the_voice_a_bounded_lead_ahead_of_the_faces(speech_flac):
    """Speech is analysed far faster than faces: in fast mode it may run FAST_AUDIO_LEAD_S ahead, no further, so
    what waits in memory for its frames is bounded however long the file."""
    from affect_sdk.audio.features import load_audio
    from affect_sdk.session import FAST_AUDIO_LEAD_S

    wave = np.tile(load_audio(speech_flac), 24)  # about 80 s: unbounded, all of it is heard before frame 1
    chunks = ((i / 16000, wave[i:i + 16000]) for i in range(0, len(wave), 16000))
    leads = []

    def slow_frames():
        time.sleep(3.0)  # far longer than the whole sound track takes to analyse
        for i in range(int(len(wave) / 16000 * 2)):  # 2 fps of an empty room
            if session.latest_speech is not None:
                leads.append(session.latest_speech.end - i / 2)
            yield i / 2, np.zeros((120, 160, 3), np.uint8)

    fused = []
    session = Session(frames=slow_frames(), audio=chunks, fast=True, on_result=fused.append)
    session.run()
    assert session.latest_speech.end > 75  # everything was still heard
    assert FAST_AUDIO_LEAD_S - 5 < max(leads) <= FAST_AUDIO_LEAD_S + 2.5  # the lead reached its bound, not beyond
    assert {int(f.t // 10) for f in fused if "speech" in f.sources} >= set(range(8))
