"""What a batch will do, decided before any model loads: the files (manifests read), their content hashes, the key
of the models and options that made a result, and the units of work (a file, or one part of a long video)."""
from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from affect_sdk.batch_inputs import expand_inputs, media_kind
from affect_sdk.errors import InputError
from affect_sdk.predict import PredictOptions, VideoSpan

MANIFEST_COLUMNS = ("path", "file")  # the column of a manifest CSV that names the files, first found wins
INF = float("inf")
# A part also reads this much video before its first kept frame, and drops what it gives: the fused stream's
# smoothing (tau 0.3 s) and the face tracker then start a part as they were in the whole file, within ~4 %
# of the first difference (e^-1/0.3), instead of afresh at the cut.
LEAD_S = 1.0


@dataclass(frozen=True)
class Unit:
    """One piece of work: a whole file (`span` None), or part `part` of `parts` of a long video. A part keeps the
    frames and fused results with t in `times` and the speech windows that start in `speech` (seconds, [start,
    end)), so the parts of a file add up to the file, each window and frame exactly once. `times` runs from half
    a frame before the part's first frame to half a frame before the next part's: records carry t rounded to the
    microsecond, and a frame's time is never that close to a cut."""

    file: str
    part: int = 0
    parts: int = 1
    span: VideoSpan | None = None
    times: tuple[float, float] = (0.0, INF)
    speech: tuple[float, float] = (0.0, INF)


def read_manifest(path: str | Path) -> list[Path]:
    """The files a manifest CSV names in its `path` (or `file`) column; relative paths are read from the
    manifest's folder. Files are not checked here: one that is missing becomes an error row, not a stop."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            column = next((c for c in MANIFEST_COLUMNS if c in (reader.fieldnames or ())), None)
            if column is None:
                raise InputError(f"Manifest {path} needs a 'path' column naming one file per row; its columns are "
                                 f"{', '.join(reader.fieldnames or ()) or 'none'}.")
            names = [row[column].strip() for row in reader if (row.get(column) or "").strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"Cannot read manifest {path}: {exc}.") from None
    if not names:
        raise InputError(f"Manifest {path} names no file.")
    return [p if p.is_absolute() else path.parent / p for p in map(Path, names)]


def batch_files(inputs: Iterable[str | Path]) -> list[Path]:
    """Absolute paths of every file to analyse, in the order given, each once: files, folders searched
    recursively, and manifest CSVs. Absolute, because workers (Ray's above all) do not share the caller's folder."""
    files: list[Path] = []
    for given in inputs:
        if Path(given).suffix.lower() == ".csv" and Path(given).is_file():
            files.extend(read_manifest(given))
        else:
            files.extend(expand_inputs([given]))  # a missing path here is one InputError, before any work
    return list(dict.fromkeys(p.resolve() for p in files))


def content_sha256(path: Path) -> str:
    from affect_sdk.registry import file_sha256

    return file_sha256(path)


def models_sha256(options: PredictOptions, segment_s: float) -> str:
    """One hash of what makes a file's rows: each model's weights (sha256 from the registry, and of its ONNX
    twin), and the options that change the rows. A rerun with other models or options redoes every file."""
    from affect_sdk.registry import default_model, get_spec, resolve_model

    def weights(name: str | None, task: str) -> list[Any]:
        spec = get_spec(resolve_model(name) or default_model(task))  # an unknown model is one ModelError here
        return [spec.name, spec.sha256, spec.onnx_sha256]

    o = options
    key = {"face": weights(o.face_model, "face"), "speech": weights(o.speech_model, "speech"),
           "voice": weights(o.voice_model, "speech"), "detector": weights(None, "detector"),
           "options": {"backend": o.backend, "threshold": o.threshold, "prior": o.prior, "step": o.step,
                       "fuse": o.fuse, "track": o.track, "segment_s": segment_s},
           "baseline": None if o.baseline is None else content_sha256(Path(o.baseline))}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def split_video(frames: int, fps: float, segment_s: float, hop_s: float, window_s: float) -> list[Unit]:
    """The parts of a video of `frames` frames at `fps` cut every `segment_s` seconds (file name left empty),
    or [] when it fits in one. Pure: the same video always gives the same parts, locally and on Ray.

    Cuts fall on frames; speech windows are given to parts by where they start, on the speech model's hop grid
    from 0 s. Each part reads LEAD_S of video before its first frame, and its sound track from a window (rounded
    up to hops) before that, so the voice fused with those frames is heard as in the whole file; and up to a
    window past its last kept window."""
    per = max(1, round(segment_s * fps))
    count = math.ceil(frames / per) if frames > 0 else 0
    if count <= 1:
        return []
    context = math.ceil(window_s / hop_s - 1e-9) * hop_s
    on_grid = lambda t: math.floor(t / hop_s + 1e-9) * hop_s  # noqa: E731 - the hop at or before t
    units = []
    for k in range(count):
        first, end = k * per, None if k == count - 1 else (k + 1) * per
        start_t, end_t = first / fps, INF if end is None else end / fps
        speech = (on_grid(start_t), INF if end is None else on_grid(end_t))
        lead = max(0, first - round(LEAD_S * fps))
        span = VideoSpan(lead, end, max(0.0, on_grid(lead / fps) - context),
                         None if end is None else speech[1] + window_s + hop_s / 2)
        units.append(Unit("", k, count, span, (start_t - 0.5 / fps, end_t - 0.5 / fps), speech))
    return units


def plan_file(path: Path, options: PredictOptions, segment_s: float) -> list[Unit]:
    """The units of one file: long videos (by their header) in parts, everything else whole."""
    if media_kind(path) != "video" or not math.isfinite(segment_s):
        return [Unit(str(path))]
    import cv2

    from affect_sdk.registry import default_model, speech_windows

    capture = cv2.VideoCapture(str(path))
    try:
        frames, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), capture.get(cv2.CAP_PROP_FPS) or 25.0
    finally:
        capture.release()
    windows = speech_windows(options.voice_model or default_model("speech"))
    parts = split_video(frames, fps, segment_s, windows.hop_s, windows.window_s)
    return [replace(u, file=str(path)) for u in parts] or [Unit(str(path))]
