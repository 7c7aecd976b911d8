"""Bad input at the public edge is one InputError naming the argument, and memory stays bounded: huge images are
refused from their header, long audio goes through the model in bounded batches."""
import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from affect_sdk import Session
from affect_sdk.audio.infer import SpeechAnalyzer
from affect_sdk.audio.stream import MAX_BATCH_WINDOWS
from affect_sdk.cli import app
from affect_sdk.errors import InputError
from affect_sdk.vision.data import load_image
from affect_sdk.vision.image_header import image_size
from affect_sdk.vision.infer import FaceAnalyzer

runner = CliRunner()


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR declares width x height gray pixels, with a small (zero-row) IDAT: decoding it would need
    width x height bytes, reading its header needs 24."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    body = zlib.compress(b"\0" * (width + 1) * 64)  # the first 64 rows; enough for a decoder to start allocating
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_a_30000_by_30000_png_is_refused_from_its_header_without_decoding(tmp_path):
    path = _png_header_only(tmp_path / "huge.png", 30000, 30000)
    # a fresh process, so its peak memory is this load alone (decoding would need 900 MB for the pixels); VmHWM,
    # not ru_maxrss, which also counts the peak of the pytest process the child was forked from
    code = ("import sys\nfrom affect_sdk.errors import InputError\nfrom affect_sdk.vision.data import "
            "load_image\ntry:\n    load_image(sys.argv[1])\nexcept InputError as exc:\n    print(exc)\n"
            "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:'))"
            " // 1024)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    message, peak_mb = done.stdout.strip().splitlines()
    assert "30000x30000" in message and str(path) in message
    assert int(peak_mb) < 700, f"peak {peak_mb} MB: the image was decoded"


def test_the_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.full((100, 80), 128, np.uint8))
    assert load_image(path).shape == (100, 80)
    with pytest.raises(InputError, match="80x100 pixels"):
        load_image(path, max_pixels=7999)
    monkeypatch.setenv("AFFECT_MAX_PIXELS", "5000")
    with pytest.raises(InputError, match="80x100"):
        load_image(path)
    with pytest.raises(InputError, match="max_pixels"):
        load_image(path, max_pixels=-1)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff", ".pgm", ".ppm"])
def test_header_sizes_agree_with_what_opencv_writes(ext):
    for height, width in ((48, 48), (31, 77), (300, 17)):
        image = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
        if ext == ".pgm":
            image = image[:, :, 0]
        ok, data = cv2.imencode(ext, image)
        assert ok and image_size(data.tobytes()) == (width, height)


def test_a_file_that_is_not_an_image_is_one_clear_line(tmp_path):
    path = tmp_path / "notes.png"
    path.write_bytes(b"GIF? no, just text " * 20)
    with pytest.raises(InputError, match="notes.png"):
        load_image(path)


# ---------------------------------------------------------------- audio: channels, batches, durations
def test_channels_first_chunks_give_the_same_results_as_channels_last(speech_flac):
    analyzer = SpeechAnalyzer()
    import soundfile as sf

    wave, rate = sf.read(str(speech_flac), dtype="float32")
    stereo = np.stack([wave, wave * 0.5], axis=1)  # [n, 2]
    last = analyzer.stream(rate).push(stereo)
    first = analyzer.stream(rate).push(stereo.T.copy())  # [2, n]
    assert len(first) == len(last) > 0
    assert [r.probs for r in first] == [r.probs for r in last]
    stream = analyzer.stream(rate)
    for bad, name in ((np.zeros((100, 100)), "no channel axis"), (np.zeros((2, 2, 2)), "shape"),
                      (np.array(["a", "b"]), "numbers"), (np.array([0.0, np.nan]), "NaN")):
        with pytest.raises(InputError, match=name):
            stream.push(bad)


def test_a_long_recording_goes_through_the_model_in_bounded_batches():
    analyzer = SpeechAnalyzer()
    seen = []
    real = analyzer.runner

    def recording_runner(x):  # the real model, noting each batch size
        seen.append(len(x))
        return real(x)

    analyzer.runner = recording_runner
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000 * 60) * np.repeat(rng.random(60 * 4) > 0.3, 4000)).astype(np.float32)
    results = analyzer.analyze_wave(wave, gate=False)
    assert len(results) == sum(seen) >= 110
    assert max(seen) <= MAX_BATCH_WINDOWS


@pytest.mark.parametrize("duration", [float("nan"), 0, -1, "5"])
def test_bad_durations_name_the_argument(duration):
    with pytest.raises(InputError, match="duration"):
        Session(demo=True, duration=duration)


def test_an_infinite_duration_means_no_limit_and_keeps_the_audio(tmp_path):
    out = tmp_path / "s.jsonl"
    result = runner.invoke(app, ["live", "--demo", "--fast", "--duration", "inf", "--json", "--jsonl", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["speech_windows"] > 0 and summary["frames_analysed"] > 50 and not summary["warnings"]


# ---------------------------------------------------------------- faces: frames, crops, thresholds
@pytest.mark.parametrize("threshold", [1.5, -0.1, float("nan"), "high"])
def test_thresholds_out_of_range_name_the_argument(threshold):
    with pytest.raises(InputError, match="detector_threshold"):
        FaceAnalyzer(detector_threshold=threshold)


def test_cli_threshold_out_of_range_is_one_red_line(shared):
    face = shared / "data/ferplus/FER2013Test/fer0032220.png"
    result = runner.invoke(app, ["predict", str(face), "--threshold", "2"])
    assert result.exit_code == 2 and "detector_threshold" in result.output


def test_bad_frames_crops_and_times_name_the_argument():
    analyzer = FaceAnalyzer()
    frame = np.zeros((120, 160, 3), np.uint8)
    for t in (math.nan, math.inf, "now"):
        with pytest.raises(InputError, match="t must be"):
            analyzer.analyze(frame, t)
    for bad in (None, np.zeros((120, 160, 3), np.float32), np.zeros((120, 160, 5), np.uint8), "frame.png"):
        with pytest.raises(InputError, match="frame"):
            analyzer.analyze(bad, 0.0)
    for bad in (None, 3, "crop", [np.zeros((48, 48), np.float64)], [np.zeros((0, 48), np.uint8)]):
        with pytest.raises(InputError, match="crop"):
            analyzer.analyze_crops(bad)
    probs, va = analyzer.analyze_crops([])
    assert probs.shape == (0, 8) and va.shape == (0, 2)


def test_video_frames_over_the_pixel_limit_are_refused_before_decoding(monkeypatch):
    from affect_sdk.session import demo_clip

    monkeypatch.setenv("AFFECT_MAX_PIXELS", "10000")  # the demo clip's frames are larger
    with pytest.raises(InputError, match="frames, more than the 10,000 pixels"):
        Session(camera=demo_clip(), mic=None)
    # predict degrades gracefully: one line about the video, then the clip's speech
    result = runner.invoke(app, ["predict", str(demo_clip()), "--json"])
    assert result.exit_code == 0 and "frames, more than the 10,000 pixels" in result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["kind"] == "speech_summary"


def test_junk_audio_and_non_numeric_votes_are_one_line_naming_the_file(tmp_path):
    from affect_sdk.audio.features import load_audio
    from affect_sdk.vision.data import read_ferplus_votes

    for suffix in (".flac", ".mp3", ".wav", ".m4a"):
        junk = tmp_path / f"junk{suffix}"
        junk.write_bytes(np.random.default_rng(3).integers(0, 256, 4000, np.uint8).tobytes())
        with pytest.raises(InputError, match=f"junk\\{suffix}"):
            load_audio(junk)
    (tmp_path / "label.csv").write_text("fer0000000.png,\"(0, 0, 48, 48)\",4,0,0,1,3,2,0,0,0,0\n"
                                        "fer0000001.png,\"(0, 0, 48, 48)\",4,x,0,1,3,2,0,0,0,0\n")
    with pytest.raises(InputError, match="label.csv line 2: votes must be whole numbers"):
        read_ferplus_votes(tmp_path)


@pytest.mark.parametrize("field, value", [("min_active", 1.5), ("min_active", float("nan")), ("floor_db", math.inf),
                                          ("contrast_db", "loud"), ("evidence_db", float("nan")),
                                          ("range_db", math.inf), ("frame", 0), ("hop", 2.5)])
def test_voice_gate_thresholds_out_of_range_name_the_field(field, value):
    from affect_sdk.audio.features import VadConfig

    with pytest.raises(InputError, match=field):
        VadConfig(**{field: value})
