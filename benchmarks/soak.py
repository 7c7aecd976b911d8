"""Live soak: one long `Session` with a video file as the camera and a real PulseAudio microphone, watched for
leaks. Reports resident memory growth, threads, open files, dropped frames, and JSONL records against frames.

The camera is the shipped demo clip, letterboxed to 640x480 and looped (benchmarks/live.py make_inputs), paced at
30 fps like a webcam. The microphone is a private PulseAudio server (null sink `vsink`, its monitor as the default
source, as in tests/conftest.py) into which the clip's voice, looped, is played: the session records it through
PortAudio exactly like a real microphone.

    python -m benchmarks.soak [--minutes 30] [--json-out runs/soak.json]

Goal (issue 14): RSS growth under 5 % over 30 minutes, measured from a warm point (a quarter of the run, at most
60 s: models, allocator pools and caches have settled) to the end; threads and open files flat.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.live import make_inputs, rss_mb  # noqa: E402

GOALS = {"rss_growth_pct": "< 5", "threads_growth": "<= 0", "open_files_growth": "<= 0"}


def process_counters() -> dict[str, float]:
    """Resident memory (MiB), threads (all native ones, and Python's) and open file descriptors of this process."""
    threads = files = 0
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        threads = next((int(line.split()[1]) for line in fh if line.startswith("Threads:")), 0)
    with contextlib.suppress(OSError):
        files = len(os.listdir("/proc/self/fd"))
    return {"rss_mb": round(rss_mb(), 1), "threads": threads, "python_threads": threading.active_count(),
            "open_files": files}


@contextlib.contextmanager
def private_pulseaudio(folder: Path) -> Iterator[Callable[[Path], subprocess.Popen]]:
    """A private PulseAudio server whose default source hears what is played into sink `vsink`; yields play(path).

    The same setup as the tests' `pulse_mic` fixture; this process's PortAudio reaches it through ALSA `default`.
    """
    if not all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "paplay")):
        raise SystemExit("the soak needs PulseAudio: apt install pulseaudio pulseaudio-utils libasound2-plugins")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(folder), "HOME": str(folder),
           "PULSE_SERVER": f"unix:{folder}/pulse/native"}
    server = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
         "-L", "module-native-protocol-unix auth-anonymous=1",
         "-L", "module-null-sink sink_name=vsink rate=16000 channels=1",
         "-L", "module-remap-source master=vsink.monitor source_name=vmic"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    players: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the private PulseAudio server did not start")
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-source", "vmic"], env=env, check=True, capture_output=True)
        os.environ.update(XDG_RUNTIME_DIR=env["XDG_RUNTIME_DIR"], PULSE_SERVER=env["PULSE_SERVER"])

        def play(path: Path) -> subprocess.Popen:
            players.append(subprocess.Popen(["paplay", "-d", "vsink", str(path)], env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            return players[-1]

        yield play
    finally:
        for process in [*players, server]:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def open_file_targets() -> set[str]:
    """What this process's file descriptors point at (paths, sockets, pipes), to name what a run left open."""
    targets = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            targets.add(os.readlink(f"/proc/self/fd/{fd}"))
    return targets


def jsonl_counts(path: Path) -> dict[str, int]:
    """Records per kind in a JSONL file; 'invalid' counts lines that are not whole JSON objects."""
    counts: dict[str, int] = {"invalid": 0}
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        try:
            kind = json.loads(line)["kind"]
        except (ValueError, KeyError, TypeError):
            kind = "invalid"
        counts[kind] = counts.get(kind, 0) + 1
    counts["invalid"] += int(bool(text) and not text.endswith("\n"))
    return counts


def soak(video: Path, mic: str, seconds: float, jsonl: Path, *, play: Callable[[], object] | None = None,
         sample_every_s: float = 5.0) -> dict:
    """Run one live session for `seconds`, sampling the process counters; the report (see module docstring)."""
    from affect_sdk.session import Session

    before, files_before = process_counters(), open_file_targets()
    warm_at = min(60.0, seconds / 4)
    samples: list[dict] = []
    with Session(camera=video, mic=mic, duration=seconds, jsonl=jsonl) as session:
        if play is not None:
            play()
        next_sample = 0.0
        for _ in session:
            now = session.clock.now()
            if now >= next_sample:
                samples.append({"t": round(now, 1), **process_counters()})
                next_sample = now + sample_every_s
        # (no sample after the loop: the iterator has closed the session by then)
    after = process_counters()
    summary = session.summary()
    samples = samples or [{"t": 0.0, **process_counters()}]  # a session that gave no result at all
    warm = next((s for s in samples if s["t"] >= warm_at), samples[-1])
    end = samples[-1]
    records = jsonl_counts(jsonl)
    return {
        "seconds": seconds, "warm_at_s": warm["t"], "samples": samples, "before": before, "after_close": after,
        "rss_mb_warm": warm["rss_mb"], "rss_mb_end": end["rss_mb"],
        "rss_growth_pct": round(100.0 * (end["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"], 2),
        "threads_warm": warm["threads"], "threads_end": end["threads"],
        "threads_max": max(s["threads"] for s in samples),
        "threads_growth": end["threads"] - warm["threads"], "threads_after_close": after["threads"],
        "python_threads_before": before["python_threads"], "python_threads_after_close": after["python_threads"],
        "open_files_warm": warm["open_files"], "open_files_end": end["open_files"],
        "open_files_growth": end["open_files"] - warm["open_files"], "open_files_after_close": after["open_files"],
        "open_files_left": sorted(open_file_targets() - files_before),
        "frames_captured": summary["frames_captured"], "frames_analysed": summary["frames_analysed"],
        "frames_dropped": summary["frames_dropped"], "fps": summary["fps"], "faces": summary["faces"],
        "speech_windows": summary["speech_windows"], "voiced_windows": summary["voiced_windows"],
        "fused": summary["fused"], "audio_overflows": summary["audio_overflows"], "warnings": summary["warnings"],
        "jsonl": records,
        # every result the session counted is in the file, once
        "jsonl_matches_counts": (records.get("face", 0) == summary["faces"]
                                 and records.get("fused", 0) == summary["fused"]
                                 and records.get("speech", 0) == summary["speech_windows"]
                                 and records["invalid"] == 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the live session")
    parser.add_argument("--json-out", type=Path, default=None, help="write the full report here")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60.0
    with tempfile.TemporaryDirectory(prefix="affect-soak-") as tmp:
        video, voice = make_inputs(seconds + 10.0, Path(tmp))
        with private_pulseaudio(Path(tmp)) as play:
            report = soak(video, "default", seconds, Path(tmp) / "soak.jsonl", play=lambda: play(voice))
    for key in ("rss_mb_warm", "rss_mb_end", "rss_growth_pct", "threads_warm", "threads_end", "threads_after_close",
                "python_threads_before", "python_threads_after_close",
                "open_files_warm", "open_files_end", "open_files_after_close", "frames_captured", "frames_analysed",
                "frames_dropped", "fused", "speech_windows", "voiced_windows", "audio_overflows",
                "jsonl_matches_counts"):
        goal = GOALS.get(key, "")
        print(f"{key:24s} {report[key]!s:>10}  {('goal ' + goal) if goal else ''}")
    print(f"jsonl records {report['jsonl']}; warnings {report['warnings'] or 'none'}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    raise SystemExit(main())
