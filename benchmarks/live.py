"""Live pipeline speed: frames per second, capture -> fused latency p50/p95, dropped frames, resident memory.

Drives the real `affect_sdk.session.Session` (camera thread, face thread, speech thread, fusion, JSONL writing)
with files standing in for the devices: a 640x480, 30 fps video of one face (the shipped RAVDESS demo clip,
letterboxed and looped) as the camera and its audio track, looped, as the microphone, both paced at real speed,
exactly like a webcam and a microphone. A short second run with `fast` (the camera never waits) shows the
throughput headroom. Memory is the process's resident set size at the end of the paced run.

    python benchmarks/live.py [--minutes 5] [--fast-seconds 20] [--json-out runs/live.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import Row, machine, meets, peak_rss_mb  # noqa: E402

WIDTH, HEIGHT, FPS, RATE = 640, 480, 30, 16000
GOALS = {"fps": ">= 30", "latency_p95": "<= 50", "rss": "<= 600"}
WORK = Path(__file__).resolve().parents[1] / "runs" / "bench-live"


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024.0
    except (OSError, StopIteration):
        return peak_rss_mb()


def make_inputs(seconds: float, folder: Path = WORK) -> tuple[Path, Path]:
    """A looped 640x480 30 fps H.264 video of the demo clip and its looped 16 kHz audio, `seconds` long."""
    import av
    import cv2
    import soundfile as sf

    from affect_sdk.audio.features import load_audio
    from affect_sdk.session import demo_clip

    folder.mkdir(parents=True, exist_ok=True)
    video, audio = folder / f"face_{WIDTH}x{HEIGHT}_{seconds:g}s.mp4", folder / f"voice_{seconds:g}s.wav"
    if video.is_file() and audio.is_file():
        return video, audio
    capture = cv2.VideoCapture(str(demo_clip()))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        scale = min(WIDTH / w, HEIGHT / h)
        frame = cv2.resize(frame, (round(w * scale), round(h * scale)))
        top, left = (HEIGHT - frame.shape[0]) // 2, (WIDTH - frame.shape[1]) // 2
        frames.append(cv2.copyMakeBorder(frame, top, HEIGHT - frame.shape[0] - top, left,
                                         WIDTH - frame.shape[1] - left, cv2.BORDER_CONSTANT))
    capture.release()
    frames += frames[-2:0:-1]  # play forwards then backwards: a loop without a jump
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(int(seconds * FPS)):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)], format="bgr24")))
        out.mux(stream.encode(None))
    voice = load_audio(demo_clip(), RATE)
    sf.write(str(audio), np.resize(voice, int(seconds * RATE)), RATE, subtype="PCM_16")
    return video, audio


def run_session(video: Path, audio: Path, *, fast: bool, seconds: float | None, jsonl: Path | None) -> dict:
    """One session over the stand-in devices; its summary plus memory and wall time."""
    from affect_sdk.session import Session

    rss_start = rss_mb()
    started = time.monotonic()
    with Session(camera=video, mic=audio, fast=fast, duration=seconds, jsonl=jsonl) as session:
        for _ in session:
            pass
    summary = session.summary()
    summary.update(wall_s=round(time.monotonic() - started, 2), rss_mb_start=round(rss_start, 1),
                   rss_mb_end=round(rss_mb(), 1), rss_mb_peak=round(peak_rss_mb(), 1))
    return summary


def measure(minutes: float, fast_seconds: float) -> dict:
    seconds = minutes * 60.0
    video, audio = make_inputs(max(seconds, fast_seconds))
    paced = run_session(video, audio, fast=False, seconds=seconds, jsonl=WORK / "live.jsonl")
    fast = run_session(video, audio, fast=True, seconds=fast_seconds, jsonl=None) if fast_seconds > 0 else None
    return {"paced": paced, "fast": fast, "minutes": minutes, "machine": machine()}


def rows_of(result: dict) -> list[Row]:
    paced, fast = result["paced"], result["fast"]
    where = f"{WIDTH}x{HEIGHT} one face, {result['minutes']:g} min paced at {FPS} fps"
    rows = [
        Row("live fps (analysed)", paced["fps"], "fps", GOALS["fps"], meets(paced["fps"], GOALS["fps"]),
            f"{where}; {paced['frames_dropped']} of {paced['frames_captured']} frames dropped"),
        Row("live latency p50", paced["latency_ms_p50"], "ms", "", None, "capture -> fused result"),
        Row("live latency p95", paced["latency_ms_p95"], "ms", GOALS["latency_p95"],
            meets(paced["latency_ms_p95"], GOALS["latency_p95"]), "capture -> fused result"),
        Row("live RSS at the end", paced["rss_mb_end"], "MiB", GOALS["rss"], meets(paced["rss_mb_end"], GOALS["rss"]),
            f"after {result['minutes']:g} min; peak {paced['rss_mb_peak']} MiB"),
    ]
    if fast is not None:
        rows.append(Row("live fps (fast, headroom)", fast["fps"], "fps", "", None,
                        f"{WIDTH}x{HEIGHT} file read as fast as analysed, {fast['frames_analysed']} frames"))
    return rows


def run(quick: bool = False) -> list[Row]:
    """The section for `python -m benchmarks`: 30 s paced + 10 s fast when quick, else 5 min + 20 s."""
    return rows_of(measure(0.5 if quick else 5.0, 10.0 if quick else 20.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the paced (real-time) run")
    parser.add_argument("--fast-seconds", type=float, default=20.0, help="length of the fast run (0: skip)")
    parser.add_argument("--json-out", type=Path, default=None, help="write the full result here")
    args = parser.parse_args(argv)
    result = measure(args.minutes, args.fast_seconds)
    for row in rows_of(result):
        state = "" if row.met is None else (" (goal met)" if row.met else f" (goal {row.goal} NOT met)")
        print(f"{row.item:28s} {row.value!s:>9} {row.unit:4s}{state}  {row.detail}")
    print(f"load average {result['machine']['load_avg']} on {result['machine']['cores']} cores")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    raise SystemExit(main())
