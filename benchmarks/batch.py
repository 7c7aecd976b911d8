"""Batch throughput: files per hour and real-time factor of `affect batch`, local processes against Ray Data, and
what one file's analysis spends its time on (decode, detection, face model, voice), for a scaling estimate.

The corpus is the RAVDESS audio-visual clips in ../shared (640x360, 30 fps, about 3.2 s each, with a voice),
copied round-robin to --files files; every file is analysed in full (each frame, faces fused with the voice).
Wall times include starting the workers (and Ray) and loading the models, as a user's run does; the real-time
factor is wall time over the media seconds of the corpus (below 1: faster than real time). The stage split
times one clip in this process, one core: decode (OpenCV), YuNet on the full frame (as `affect predict` and
`affect batch` search it), the face model per face, and the voice per second of sound.

    python -m benchmarks.batch [--files 16] [--workers 2] [--json-out runs/batch.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import Row, machine  # noqa: E402

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess_av_clips"


def corpus(folder: Path, files: int) -> float:
    """`files` copies of the RAVDESS clips in `folder`; returns their media seconds."""
    import cv2

    clips = sorted(CLIPS.glob("*.mp4"))
    if not clips:
        raise RuntimeError(f"no clips in {CLIPS}: the batch benchmark needs ../shared beside the repo")
    seconds = 0.0
    for i in range(files):
        source = clips[i % len(clips)]
        shutil.copy(source, folder / f"{i:04d}-{source.name}")
        capture = cv2.VideoCapture(str(source))
        seconds += capture.get(cv2.CAP_PROP_FRAME_COUNT) / capture.get(cv2.CAP_PROP_FPS)
        capture.release()
    return seconds


def run_mode(folder: Path, out: Path, media_s: float, workers: int, ray: str | None) -> dict:
    from affect_sdk.batch import BatchOptions, run_batch

    start = time.perf_counter()
    summary = run_batch([folder], out, BatchOptions(workers=workers, ray=ray))
    wall = time.perf_counter() - start
    if summary.failed:
        raise RuntimeError(f"{summary.failed} files failed: {summary.errors[0]['message']}")
    return {"mode": f"ray ({ray}) x{workers}" if ray else f"local x{workers}", "workers": workers, "files": summary.ok,
            "media_s": round(media_s, 1), "wall_s": round(wall, 2), "work_s": round(summary.work_seconds, 2),
            "files_per_hour": round(summary.ok / wall * 3600, 1), "rtf": round(wall / media_s, 4),
            "work_rtf": round(summary.work_seconds / media_s, 4), "rows": summary.rows}


def stages(clip: Path) -> dict:
    """Seconds per second of media, on one core, of each stage of one clip's analysis, and the driver's cost per
    file (content hash, part file, journal line)."""
    import cv2
    import numpy as np

    from affect_sdk.audio.infer import SpeechAnalyzer
    from affect_sdk.batch.plan import content_sha256
    from affect_sdk.batch.store import BatchStore
    from affect_sdk.predict import PredictOptions, analyze_files
    from affect_sdk.tables import table_rows
    from affect_sdk.vision.align import crop_face
    from affect_sdk.vision.infer import FaceAnalyzer, video_frames

    face = FaceAnalyzer()
    frames = [frame for _, _, frame in video_frames(clip)]
    media_s = len(frames) / (cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FPS) or 25.0)
    face.detector.detect(frames[0])  # its default size searches these frames whole, as predict and batch do

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    decode = timed(lambda: list(video_frames(clip)))
    detections = []
    detect = timed(lambda: detections.extend(face.detector.detect(f) for f in frames))
    crops = [crop_face(f, d[0], face.input_size) for f, d in zip(frames, detections) if d]
    model = timed(lambda: [face.analyze_crops(np.stack([c])) for c in crops])
    speech = SpeechAnalyzer()
    list(speech.iter_file(clip))
    voice = timed(lambda: list(speech.iter_file(clip)))
    whole = timed(lambda: list(analyze_files([clip], PredictOptions())))
    rows = table_rows(analyze_files([clip], PredictOptions()))
    with tempfile.TemporaryDirectory() as tmp:
        store = BatchStore(tmp)
        driver = timed(lambda: [store.finish({"file": f"{clip}{i}", "status": "ok",
                                              "content_sha256": content_sha256(clip)}, rows) for i in range(20)]) / 20
        store.close()
    per = {"decode": decode, "detection": detect, "face model": model, "voice": voice}
    return {"clip": clip.name, "media_s": round(media_s, 2), "frames": len(frames),
            "per_media_s": {k: round(v / media_s, 4) for k, v in per.items()},
            "whole_file_per_media_s": round(whole / media_s, 4),
            "driver_s_per_file": round(driver, 4), "rows_per_file": len(rows),
            "bound": max(per, key=per.get)}


def measure(files: int, workers: int, ray: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        media_s = corpus(folder, files)
        runs = [run_mode(folder, Path(tmp) / "local.parquet", media_s, workers, None)]
        if workers > 1:
            runs.insert(0, run_mode(folder, Path(tmp) / "local1.parquet", media_s, 1, None))
        if ray:
            try:
                import ray as _  # noqa: F401
            except ImportError:
                runs.append({"mode": "ray", "skipped": "ray is not installed: pip install 'affect-sdk[ray]'"})
            else:
                runs.append(run_mode(folder, Path(tmp) / "ray.parquet", media_s, workers, "local"))
        split = stages(sorted(CLIPS.glob("*.mp4"))[0])
    return {"benchmark": "batch", "files": files, "media_s": round(media_s, 1), "runs": runs, "stages": split,
            "machine": machine()}


def rows_of(result: dict) -> list[Row]:
    rows = []
    for run in result["runs"]:
        if "skipped" in run:
            rows.append(Row(f"batch {run['mode']}", None, "", detail=run["skipped"]))
            continue
        detail = (f"{run['files']} RAVDESS clips, {run['media_s']:.0f} s of 640x360 video with voice, every frame; "
                  f"wall {run['wall_s']:.1f} s with start-up; RTF {run['rtf']:.3f} (wall / media), worker time "
                  f"{run['work_rtf']:.3f} per media second")
        rows.append(Row(f"batch {run['mode']}", run["files_per_hour"], "files/h", detail=detail, extra=run))
    s = result["stages"]
    cost = ", ".join(f"{k} {v:.3f}" for k, v in s["per_media_s"].items())
    driver_ms = s["driver_s_per_file"] * 1e3
    rows.append(Row("batch stage split (bound)", max(s["per_media_s"].values()), "s per media s",
                    detail=f"one core, {s['clip']}: {cost}; bound: {s['bound']}; driver {driver_ms:.0f} ms per file "
                    f"(hash, part file, journal)", extra=s))
    return rows


def run(quick: bool = False) -> list[Row]:
    """The section for `python -m benchmarks`: 6 files when quick, else 16; 2 workers."""
    return rows_of(measure(6 if quick else 16, 2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16, help="files in the corpus (RAVDESS clips, round-robin)")
    parser.add_argument("--workers", type=int, default=2, help="local processes and Ray actors")
    parser.add_argument("--no-ray", action="store_true", help="local mode only")
    parser.add_argument("--json-out", type=Path, default=None, help="write the full result here")
    args = parser.parse_args(argv)
    result = measure(args.files, args.workers, ray=not args.no_ray)
    for row in rows_of(result):
        value = "-" if row.value is None else f"{row.value:,.4g}"
        print(f"{row.item:34s} {value:>10s} {row.unit:14s} {row.detail}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
