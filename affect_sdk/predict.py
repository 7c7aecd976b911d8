"""Offline prediction of files as records: images (faces), sounds (speech timeline), videos (faces, and with a
sound track the voice and their fusion, through the same Session and fusion as `affect live`).

    for record in analyze_files(["clips/", "face.png"]):     # dicts, each with its "file"
        ...
    rows = table_rows(analyze_files([...]))                   # affect_sdk.tables: one row per face per frame

Every record carries `file`. A file that cannot be read gives one `{"kind": "file_error", "file", "message"}`
record and the batch goes on with the next file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from affect_sdk.batch_inputs import expand_inputs, media_kind
from affect_sdk.errors import AffectError, InputError
from affect_sdk.labels import CLASSES, va_from_probs


@dataclass(frozen=True)
class PredictOptions:
    """The options of `affect predict` (each None keeps the analyzer's default)."""

    face_model: str | None = None  # images and videos
    speech_model: str | None = None  # sound files
    voice_model: str | None = None  # the voice of videos, fused with their faces
    backend: str | None = None
    device: str | None = None
    threshold: float | None = None  # face detector score threshold
    prior: str | None = None
    baseline: str | Path | None = None  # a video or image of the person at rest
    step: int = 1  # videos: every step-th frame
    fuse: bool = True  # videos with a sound track: voice and fused records too
    track: str | int = "largest"  # whom the fused stream follows


@dataclass(frozen=True)
class VideoSpan:
    """A part of a video analysed on its own (affect_sdk.batch splits long videos into parts): frames
    first_frame..end_frame-1 and the sound track from audio_start to audio_end seconds (None: to the end), all on
    the whole file's frame numbers and clock."""

    first_frame: int
    end_frame: int | None
    audio_start: float = 0.0
    audio_end: float | None = None


class Predictor:
    """Loaded models (on first need) applied to file after file: `records(path)` yields its records."""

    def __init__(self, options: PredictOptions = PredictOptions()) -> None:
        if options.step < 1:
            raise InputError(f"step must be 1 or more frames; got {options.step}.")
        self.options = options
        self._face = self._speech = self._voice = None

    @property
    def face(self):
        if self._face is None:
            from affect_sdk.vision.infer import FaceAnalyzer, resting_crops

            o = self.options
            face = FaceAnalyzer(o.face_model, backend=o.backend, device=o.device, detector_threshold=o.threshold,
                                prior=o.prior)
            if o.baseline is not None and media_kind(o.baseline) != "sound":  # a sound file calibrates the voice
                face.set_baseline(resting_crops(face, o.baseline))
            self._face = face
        return self._face

    @property
    def speech(self):
        if self._speech is None:
            from affect_sdk.audio.infer import SpeechAnalyzer

            o = self.options
            self._speech = SpeechAnalyzer(o.speech_model, backend=o.backend, device=o.device)
            set_voice_baseline(self._speech, o.baseline)
        return self._speech

    @property
    def voice(self):
        if self._voice is None:
            from affect_sdk.audio.infer import SpeechAnalyzer

            o = self.options
            if o.voice_model == o.speech_model:
                self._voice = self.speech
            else:
                self._voice = SpeechAnalyzer(o.voice_model, backend=o.backend, device=o.device)
                set_voice_baseline(self._voice, o.baseline)
        return self._voice

    def records(self, path: str | Path) -> Iterator[dict[str, Any]]:
        path = Path(path)
        kind = media_kind(path)
        if kind == "sound":
            yield from self.sound_records(path)
        elif kind == "video":
            yield from self.video_records(path)
        else:  # images, and files whose extension says nothing: the image reader names the problem
            yield self.image_record(path)

    def image_record(self, path: Path) -> dict[str, Any]:
        from affect_sdk.vision.track import FaceTracker

        faces = FaceTracker().update(self.face.analyze(path), 0.0)
        return {"kind": "image", "file": str(path), "model": self.face.model, "faces": [f.to_dict() for f in faces]}

    def sound_records(self, path: Path) -> Iterator[dict[str, Any]]:
        """The speech window timeline, then the utterance-level `speech_summary` (mean over voiced windows)."""
        analyzer = self.speech
        total, voiced, windows = np.zeros(len(CLASSES)), 0, 0
        for result in analyzer.iter_file(path):
            windows += 1
            if result.probs is not None and result.voiced:
                total += np.asarray(result.probs)
                voiced += 1
            yield {"file": str(path), **result.to_dict()}
        probs = total / voiced if voiced else None
        va = va_from_probs(probs) if probs is not None else (None, None)
        yield {"kind": "speech_summary", "file": str(path), "model": analyzer.model,
               "baseline": analyzer.baseline is not None, "windows": windows,
               "voiced_windows": voiced, "label": CLASSES[int(np.argmax(probs))] if probs is not None else None,
               "probs": _probs(probs), "valence": _num(va[0]), "arousal": _num(va[1])}

    def video_records(self, path: Path, span: VideoSpan | None = None) -> Iterator[dict[str, Any]]:
        """Frames (faces with track ids), speech windows and fused results in time order, then `fused_summary`
        (when the clip has a voice) and last the face's sustained reading, `video_summary`. With a `span`, only
        that part of the video is read (a session of its own: track ids start afresh)."""
        from affect_sdk.session import Session
        from affect_sdk.vision.infer import summarize_video, video_frames

        audio = self._audio_of(path, span) if self.options.fuse else None
        frame_index: dict[float, int] = {}
        first, end = (0, None) if span is None else (span.first_frame, span.end_frame)

        def frames() -> Iterator[tuple[float, np.ndarray]]:
            for index, t, image in video_frames(path, step=self.options.step, first=first, end=end):
                frame_index[round(t, 6)] = index  # records carry t rounded to the microsecond
                yield t, image

        out: list[dict[str, Any]] = []
        assembler = _FrameAssembler(path, frame_index)
        session = Session(frames=frames(), audio=audio[1] if audio else None, audio_rate=audio[0] if audio else 16000,
                          fast=True, detect_side=None, face_analyzer=self.face,
                          speech_analyzer=self.voice if audio else None, track=self.options.track,
                          on_record=lambda record: out.extend(assembler.add(record)))
        with session:
            for _ in session:
                yield from _drain(out)
        yield from _drain(out)
        yield from _drain(assembler.finish())
        if assembler.frames == 0:
            if span is not None:  # the header counted more frames than the file holds: an empty part
                return
            if audio is None:
                raise InputError(f"Video file {path} could not be decoded or has no video frames.")
            yield from self.sound_records(path)  # e.g. an .mp4 that only carries sound
            return
        if audio is not None:
            yield fused_summary(path, assembler.fused)
        largest = [(r["t"], r["faces"][0]) for r in assembler.frame_records if r["faces"]]
        times = [t for t, _ in largest]
        probs = np.asarray([[face["probs"][c] for c in CLASSES] for _, face in largest])
        vas = np.asarray([(face["valence"], face["arousal"]) for _, face in largest])
        face = self.face
        yield {"kind": "video_summary", "file": str(path), "model": face.model, "prior": face.prior_mode,
               "baseline": face.baseline is not None, "analysed_frames": assembler.frames,
               "frames_with_faces": len(times), "sources": sorted({s for r in assembler.fused for s in r["sources"]}),
               **summarize_video(times, probs, vas)}

    def _audio_of(self, path: Path, span: VideoSpan | None = None) -> tuple[float, Iterator] | None:
        """(rate, (t, mono block) pairs) of a video's sound track, or of the span's part of it; None when it has
        none."""
        from affect_sdk.audio.features import iter_audio_blocks

        try:
            rate, blocks = iter_audio_blocks(path)
        except InputError:  # no sound track (or an unreadable one): the video is read from its faces alone
            return None
        start, end = (0.0, None) if span is None else (span.audio_start, span.audio_end)
        return rate, _timed_blocks((block[:, 0] if block.ndim == 2 else block for block in blocks), rate, start, end)


class _FrameAssembler:
    """Session records -> predict's records: the face records of one frame become one `frame` record (faces of
    that frame, largest first, each with its track_id), so a frame without a face still has a line."""

    def __init__(self, path: Path, frame_index: dict[float, int]) -> None:
        self.file, self.frame_index = str(path), frame_index
        self.faces: dict[float, list[dict[str, Any]]] = {}
        self.done: set[float] = set()
        self.frame_records: list[dict[str, Any]] = []
        self.fused: list[dict[str, Any]] = []
        self.frames = 0

    def add(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        kind, t = record["kind"], record.get("t")
        if kind == "session" or (kind == "event" and record["message"] in ("audio ended", "video ended")):
            return []  # the session's plumbing: the file itself is the context here
        if kind == "face":
            self.faces.setdefault(t, []).append(record)
            return []
        out = []
        if kind == "fused" and t in self.frame_index and t not in self.done:
            out.append(self._frame(t))
        if kind == "fused":
            self.fused.append(record)
        return out + [{"file": self.file, **record}]

    def _frame(self, t: float) -> dict[str, Any]:
        self.done.add(t)
        self.frames += 1
        faces = sorted(self.faces.pop(t, []), key=lambda f: f["face_id"])
        record = {"kind": "frame", "file": self.file, "frame": self.frame_index[t], "t": round(t, 6),
                  "faces": faces}
        self.frame_records.append(record)
        return record

    def finish(self) -> list[dict[str, Any]]:
        """Frames no fused result came for (the session fuses each analysed frame; this is a safety net)."""
        return [self._frame(t) for t in sorted(self.frame_index) if t not in self.done]


def _timed_blocks(blocks: Iterable[np.ndarray], rate: float, start: float,
                  end: float | None) -> Iterator[tuple[float, np.ndarray]]:
    """(t, samples) of the mono blocks between start and end seconds (None: to the last sample), each stamped with
    the time of its first sample, so a part of a sound track keeps the whole file's clock."""
    first, last = int(round(start * rate)), None if end is None else int(round(end * rate))
    seen = 0
    for block in blocks:
        lo, hi = max(first - seen, 0), len(block) if last is None else min(last - seen, len(block))
        if hi > lo:
            yield (seen + lo) / rate, block[lo:hi]
        seen += len(block)
        if last is not None and seen >= last:
            break


def _drain(items: list) -> Iterator:
    while items:
        yield items.pop(0)


def fused_summary(path: Path, fused: list[dict[str, Any]]) -> dict[str, Any]:
    """A clip's fused reading: mean fused probabilities and V/A over the results that had something to fuse."""
    rows = [r for r in fused if r["probs"] is not None]
    sources = sorted({s for r in rows for s in r["sources"]})
    if not rows:
        return {"kind": "fused_summary", "file": str(path), "label": None, "probs": None, "valence": None,
                "arousal": None, "sources": sources, "fused": 0, "both": 0}
    probs = np.mean([[r["probs"][c] for c in CLASSES] for r in rows], axis=0)
    va = np.nanmean([[_nan(r["valence"]), _nan(r["arousal"])] for r in rows], axis=0)
    return {"kind": "fused_summary", "file": str(path), "label": CLASSES[int(np.argmax(probs))],
            "probs": _probs(probs), "valence": _num(va[0]), "arousal": _num(va[1]), "sources": sources,
            "fused": len(rows), "both": sum(len(r["sources"]) == 2 for r in rows),
            "rule": rows[-1]["rule"]}


def set_voice_baseline(analyzer: Any, baseline: str | Path | None) -> None:
    """The voice's personal baseline from `--baseline`: a sound file must hold calm speech (0.5 s voiced at
    least); a video's sound track is used when it has voiced speech (a silent resting video calibrates the face
    alone); an image calibrates the face alone."""
    if baseline is None or media_kind(baseline) == "image":
        return
    if not Path(baseline).is_file():
        raise InputError(f"Baseline file {baseline} does not exist; expected a recording of the person at rest.")
    if media_kind(baseline) == "sound":
        analyzer.set_baseline(baseline)
        return
    try:
        analyzer.set_baseline(baseline)
    except InputError:  # no sound track, or no voiced speech in it
        pass


def analyze_files(paths: Iterable[str | Path], options: PredictOptions = PredictOptions(), *,
                  on_file: Callable[[Path, int, int], Any] | None = None) -> Iterator[dict[str, Any]]:
    """Records of every file under `paths` (files, and folders searched recursively by extension), each with its
    `file`; a file that fails gives a `file_error` record and the next file goes on. `on_file(path, i, n)` is
    called before each file (progress)."""
    files = expand_inputs(paths)
    predictor = Predictor(options)
    for i, path in enumerate(files):
        if on_file is not None:
            on_file(path, i, len(files))
        try:
            yield from predictor.records(path)
        except AffectError as exc:
            if not _is_file_problem(exc):
                raise  # a model or device problem would fail every file alike: stop at the first
            yield {"kind": "file_error", "file": str(path), "message": str(exc)}


def _is_file_problem(exc: AffectError) -> bool:
    from affect_sdk.errors import DeviceError, ModelError

    return not isinstance(exc, (DeviceError, ModelError))


def _probs(probs: Any) -> dict[str, float] | None:
    return None if probs is None else {c: round(float(p), 6) for c, p in zip(CLASSES, probs)}


def _num(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
