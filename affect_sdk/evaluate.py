"""Paired audio-visual clip evaluation: face model on video frames, speech model on the audio track, fusion rules.

`evaluate_fusion(folder)` finds labelled clips (RAVDESS file names or a labels.csv of path,label), analyses each
clip once per modality (the face student on every k-th frame, mean of probabilities over frames with a face; the
speech model on the audio track, mean over voiced windows), then fuses them with every rule; "live" replays each
clip through the Session's FusionState (speech windows only once heard) and averages its fused stream. Clips missing
their face or audio are counted and go through the rules' fallback; unreadable files and unknown labels are counted
and named; nothing is dropped silently. Every system is scored by the one metrics core (affect_sdk.metrics).
"""
from __future__ import annotations

import csv
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from affect_sdk.errors import AffectError, InputError
from affect_sdk.fusion.fit import FitConfig, fit_weights
from affect_sdk.fusion.rules import DEFAULT_MASKS, RULE_NAMES, FittedWeights, confidence, fuse
from affect_sdk.fusion.sync import FusionState, SyncConfig, primary_face
from affect_sdk.labels import CLASS_INDEX, CLASSES, NUM_CLASSES, RAVDESS_CODES, canonical, va_from_probs
from affect_sdk.media import VIDEO_SUFFIXES
from affect_sdk.metrics import classification_report
from affect_sdk.results import FusedAffect

SYNTHETIC_MARKER = "SYNTHETIC_PAIRS.md"  # written by recipes/synthetic_pairs.py


@dataclass(frozen=True)
class FusionEvalConfig:
    frame_rate: float = 5.0  # analysed video frames per second (every k-th frame); 0 analyses every frame
    rules: tuple[str, ...] = RULE_NAMES
    fitted: FittedWeights | None = None  # given weights for rule 'fitted'; None: cross-fitted over the clips
    fit_folds: int = 5  # cross-fitting folds for 'fitted' when no weights are given
    min_fit_clips: int = 20  # fewer clips with both modalities: 'fitted' is skipped (said in notes)
    face_model: str | None = None
    speech_model: str | None = None
    backend: str | None = None
    device: str | None = None


@dataclass
class ClipResult:
    path: Path
    label: str
    face_probs: np.ndarray | None = None  # [8], mean over frames with a face
    speech_probs: np.ndarray | None = None  # [8], mean over voiced windows
    frames_analysed: int = 0
    frames_with_face: int = 0
    problems: list[str] = field(default_factory=list)
    frames: list[tuple[float, Any]] = field(default_factory=list)  # (t, largest FaceAffect or None) per analysed frame
    speech_windows: list[Any] = field(default_factory=list)  # every SpeechAffect window, in time order

    @property
    def face_track(self) -> list[tuple[float, float, float, float]]:
        """(t, valence, arousal, confidence) of the frames with a face."""
        return [(t, f.valence, f.arousal, f.confidence) for t, f in self.frames if f is not None]

    @property
    def speech_track(self) -> list[tuple[float, float, float, float]]:
        """(t, valence, arousal, confidence) of the windows with probabilities."""
        return [(w.t, w.valence, w.arousal, w.confidence) for w in self.speech_windows if w.probs is not None]


# ------------------------------------------------------------------------------------------------ clips
def find_clips(folder: str | Path) -> tuple[list[tuple[Path, str]], list[dict[str, str]]]:
    """(clip path, canonical label) pairs and the skipped entries [{path, problem}] of a folder.

    A labels.csv (path,label; header optional, extra columns ignored) wins; otherwise video files with RAVDESS
    names (emotion code in the third field). An empty folder is one InputError.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"Clip folder {root} does not exist or is not a folder.")
    entries: list[tuple[Path, str]] = []
    skipped: list[dict[str, str]] = []
    labels_csv = root / "labels.csv"
    if labels_csv.is_file():
        with open(labels_csv, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
            rows = rows[1:]
        for row in rows:
            if len(row) < 2:
                skipped.append({"path": row[0], "problem": "labels.csv row has no label"})
                continue
            path = (root / row[0].strip()) if not Path(row[0].strip()).is_absolute() else Path(row[0].strip())
            try:
                label = canonical(row[1])
            except InputError:
                skipped.append({"path": str(path), "problem": f"unknown label {row[1].strip()!r}"})
                continue
            if label is None:
                skipped.append({"path": str(path), "problem": f"label {row[1].strip()!r} is excluded"})
            elif not path.is_file():
                skipped.append({"path": str(path), "problem": "file listed in labels.csv is missing"})
            else:
                entries.append((path, label))
    else:
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()):
            parts = path.stem.split("-")
            if len(parts) == 7 and parts[2] in RAVDESS_CODES:
                entries.append((path, RAVDESS_CODES[parts[2]]))
            else:
                skipped.append({"path": str(path), "problem": "no label: not a RAVDESS file name and no labels.csv"})
    if not entries and not skipped:
        raise InputError(f"No audio-visual clips in {root}: expected video files ({', '.join(sorted(VIDEO_SUFFIXES))}) "
                         "with RAVDESS names or a labels.csv of path,label.")
    return entries, skipped


def is_synthetic(folder: str | Path) -> bool:
    return (Path(folder) / SYNTHETIC_MARKER).is_file()


def synthetic_note(folder: str | Path) -> str | None:
    """One sentence on how a synthetic-pairs folder was made (from its marker's JSON block), if it says."""
    import json
    import re

    try:
        text = (Path(folder) / SYNTHETIC_MARKER).read_text(encoding="utf-8")
        info = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    except (OSError, AttributeError, ValueError):
        return None
    contempt = {"skip": "contempt skipped (no contempt speech)",
                "neutral": "contempt faces paired with neutral speech"}.get(info.get("contempt"), "")
    return (f"synthetic pairs: faces from {Path(str(info.get('faces'))).name}/{info.get('face_split')}, speech of "
            f"speakers {', '.join(map(str, info.get('speakers', [])))} from {Path(str(info.get('speech'))).name}; "
            f"{contempt}.")


def analyse_clip(path: Path, label: str, face_analyzer: Any, speech_analyzer: Any,
                 frame_rate: float = 5.0) -> ClipResult:
    """Face and speech analysis of one clip; problems are recorded on the result, never raised."""
    import av

    clip = ClipResult(path=path, label=label)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        clip.problems.append(f"unreadable file ({type(exc).__name__})")
        return clip
    with container:
        has_audio = bool(container.streams.audio)
        if not container.streams.video:
            clip.problems.append("no video track")
        else:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 30)
            step = 1 if frame_rate <= 0 else max(1, int(round(fps / frame_rate)))
            probs = []
            try:
                for i, frame in enumerate(container.decode(stream)):
                    if i % step:
                        continue
                    t = float(frame.time) if frame.time is not None else i / fps
                    faces = face_analyzer.analyze(frame.to_ndarray(format="bgr24"), t)
                    clip.frames_analysed += 1
                    face = primary_face(faces)
                    clip.frames.append((t, face))
                    if face is not None:
                        probs.append(face.probs)
            except (av.error.FFmpegError, ValueError) as exc:
                clip.problems.append(f"video decoding stopped early ({type(exc).__name__})")
            clip.frames_with_face = len(probs)
            if probs:
                clip.face_probs = np.asarray(probs, dtype=np.float64).mean(axis=0)
            elif clip.frames_analysed:
                clip.problems.append("no face found")
            else:
                clip.problems.append("no video frames decoded")
    if not has_audio:
        clip.problems.append("no audio track")
        return clip
    try:
        from affect_sdk.audio.infer import utterance_probs

        windows = speech_analyzer.analyze_file(path)
        clip.speech_windows = list(windows)
        probs = utterance_probs(windows)
        if probs is None:  # nothing voiced: the analyzer's own fallback (all windows, ungated)
            probs, _ = speech_analyzer.classify_file(path)
            clip.problems.append("no voiced speech (all windows used)")
        clip.speech_probs = np.asarray(probs, dtype=np.float64)
    except AffectError as exc:
        clip.problems.append(f"audio unusable: {exc}")
    return clip


def cross_fitted(face: np.ndarray, speech: np.ndarray, y: np.ndarray, masks, folds: int,
                 config: FitConfig = FitConfig()) -> tuple[np.ndarray, list[dict]]:
    """'fitted' probabilities where each clip's weights were fitted on the other folds (round-robin folds)."""
    out = np.full_like(face, np.nan)
    fold_of = np.arange(len(y)) % folds
    both = np.isfinite(face).all(axis=1) & np.isfinite(speech).all(axis=1)
    weights = []
    for k in range(folds):
        train, test = (fold_of != k) & both, fold_of == k
        params = fit_weights(face[train], speech[train], y[train], config=config, masks=masks)
        out[test] = fuse("fitted", face[test], speech[test], params=params, masks=masks)
        weights.append(params.to_dict())
    return out, weights


def replay_live(clip: ClipResult, config: SyncConfig = SyncConfig()) -> list[FusedAffect]:
    """The clip's fused stream as a live Session makes it: the same FusionState, one fused result per analysed
    frame, each speech window known only once it has been fully heard, and with no video left each remaining
    window driving one result at its end."""
    state = FusionState(config, audio=bool(clip.speech_windows))
    heard = deque(sorted(clip.speech_windows, key=lambda w: w.end))
    fused: list[FusedAffect] = []

    def hear_until(t: float) -> None:
        while heard and heard[0].end <= t:
            state.add_speech(heard.popleft())

    for t, face in clip.frames:
        hear_until(t)
        state.add_faces([] if face is None else [face], t)
        if state.last_t is None or t > state.last_t:
            fused.append(state.fuse(t))
    while heard:
        t = heard[0].end
        hear_until(t)
        if state.last_t is None or t > state.last_t:
            fused.append(state.fuse(t))
    return fused


def live_clip_probs(clip: ClipResult) -> np.ndarray:
    """Mean fused probabilities of the clip's live replay; NaN when nothing could be fused."""
    rows = [r.probs for r in replay_live(clip) if r.probs is not None]
    return np.asarray(rows, dtype=np.float64).mean(axis=0) if rows else np.full(NUM_CLASSES, np.nan)


# ------------------------------------------------------------------------------------------------ main entry
@dataclass
class FusionEvaluation:
    summary: dict[str, Any]  # the JSON object printed by `affect eval fusion`
    clips: list[ClipResult]
    fused_probs: dict[str, np.ndarray]

    def trajectory(self, name: str | None = None) -> dict[str, Any] | None:
        """Face, speech and fused V/A over time for one clip (by file name; default: the first with both)."""
        candidates = [c for c in self.clips if name is None or c.path.name == name or str(c.path) == name]
        if name is not None and not candidates:
            raise InputError(f"No evaluated clip is named {name!r}.")
        chosen = next((c for c in candidates if c.face_track and c.speech_track), candidates[0] if candidates else None)
        if chosen is None:
            return None
        face = np.asarray(chosen.face_track, dtype=np.float64).reshape(-1, 4)
        speech = np.asarray(chosen.speech_track, dtype=np.float64).reshape(-1, 4)
        fused = [(r.t, None, None) if r.probs is None else (r.t, r.valence, r.arousal) for r in replay_live(chosen)]
        return {"clip": chosen.path.name, "label": chosen.label, "face": face.tolist(), "speech": speech.tolist(),
                "fused": fused}


def evaluate_fusion(folder: str | Path, config: FusionEvalConfig = FusionEvalConfig(), *,
                    face_analyzer: Any = None, speech_analyzer: Any = None,
                    progress: Callable[[ClipResult], None] | None = None) -> FusionEvaluation:
    """Vision-only, audio-only and fused accuracy over the labelled clips of a folder."""
    unknown = [r for r in config.rules if r not in RULE_NAMES]
    if unknown:
        raise InputError(f"Unknown fusion rule(s) {', '.join(unknown)}; expected some of {', '.join(RULE_NAMES)}.")
    entries, skipped = find_clips(folder)
    found = len(entries) + len(skipped)
    if face_analyzer is None:
        from affect_sdk.vision.infer import FaceAnalyzer

        face_analyzer = FaceAnalyzer(model=config.face_model or "face-student", backend=config.backend,
                                     device=config.device)
    if speech_analyzer is None:
        from affect_sdk.audio.infer import SpeechAnalyzer

        speech_analyzer = SpeechAnalyzer(model=config.speech_model, backend=config.backend, device=config.device)
    masks = DEFAULT_MASKS

    clips: list[ClipResult] = []
    for path, label in entries:
        clip = analyse_clip(path, label, face_analyzer, speech_analyzer, config.frame_rate)
        if progress is not None:
            progress(clip)
        if clip.problems and clip.problems[0].startswith("unreadable"):
            skipped.append({"path": str(path), "problem": clip.problems[0]})
        else:
            clips.append(clip)
    notes: list[str] = []
    y = np.array([CLASS_INDEX[c.label] for c in clips], dtype=int)
    nan_row = np.full(NUM_CLASSES, np.nan)
    face = np.array([c.face_probs if c.face_probs is not None else nan_row for c in clips]).reshape(-1, NUM_CLASSES)
    speech = np.array([c.speech_probs if c.speech_probs is not None else nan_row
                       for c in clips]).reshape(-1, NUM_CLASSES)

    fused_probs: dict[str, np.ndarray] = {}
    fitted_weights: Any = None
    for rule in config.rules:
        if not len(clips):
            break
        if rule != "fitted":
            fused_probs[rule] = _fuse_rows(rule, face, speech, masks=masks)
        elif config.fitted is not None:
            fused_probs[rule] = _fuse_rows(rule, face, speech, masks=masks, params=config.fitted)
            fitted_weights = config.fitted.to_dict()
            notes.append("fitted: weights given by the user (--weights).")
        else:
            both = int((np.isfinite(face).all(1) & np.isfinite(speech).all(1)).sum())
            if both < max(config.min_fit_clips, config.fit_folds):
                notes.append(f"fitted: skipped, only {both} clips have both modalities (cross-fitting needs "
                             f"{config.min_fit_clips}); pass --weights to use fitted weights.")
                continue
            fused_probs[rule], fitted_weights = cross_fitted(face, speech, y, masks, config.fit_folds)
            notes.append(f"fitted: product-of-experts weights cross-fitted over {config.fit_folds} folds of clips "
                         "(each clip scored with weights fitted on the other folds).")

    if clips:  # what a live Session makes of each clip: its fused stream, averaged over the clip
        fused_probs["live"] = np.array([live_clip_probs(c) for c in clips]).reshape(-1, NUM_CLASSES)
        notes.append("live: each clip replayed through the Session's FusionState (entropy_weighted, 0.3 s smoothing, "
                     "a speech window used only once fully heard); the mean of its fused probabilities.")
    counts = {
        "found": found,
        "evaluated": len(clips),
        "skipped": len(skipped),
        "no_face": sum(c.face_probs is None for c in clips),
        "no_audio": sum(c.speech_probs is None for c in clips),
        "no_face_no_audio": sum(c.face_probs is None and c.speech_probs is None for c in clips),
    }
    if is_synthetic(folder) and synthetic_note(folder):
        notes.append(synthetic_note(folder))
    if not masks[1][CLASS_INDEX["contempt"]]:
        notes.append("speech covers no contempt: the fusion rules let the face decide contempt alone "
                     "(class mask), speech probabilities are renormalised over its 7 classes.")
    present = sorted(set(y.tolist()))
    summary: dict[str, Any] = {
        "title": "Fusion evaluation" + (" (synthetic pairs)" if is_synthetic(folder) else ""),
        "synthetic_pairs": is_synthetic(folder),
        "data": str(folder),
        "n": len(clips),
        "classes": [CLASSES[i] for i in present],
        "frame_rate": config.frame_rate,
        "vision": classification_report(y, face),
        "audio": classification_report(y, speech),
        "fused": {rule: classification_report(y, p) for rule, p in fused_probs.items()},
        "counts": counts,
        "problems": skipped + [{"path": str(c.path), "problem": "; ".join(c.problems)} for c in clips if c.problems],
        "notes": notes,
    }
    if fitted_weights is not None:
        summary["fitted_weights"] = fitted_weights
    summary["clips"] = [_clip_row(c, fused_probs, i) for i, c in enumerate(clips)]
    return FusionEvaluation(summary=summary, clips=clips, fused_probs=fused_probs)


def _fuse_rows(rule: str, face: np.ndarray, speech: np.ndarray, **kwargs) -> np.ndarray:
    if not len(face):
        return face.copy()
    return fuse(rule, face, speech, **kwargs)


def _label_of(probs: np.ndarray | None) -> str | None:
    if probs is None or not np.isfinite(probs).all():
        return None
    return CLASSES[int(np.argmax(probs))]


def _clip_row(clip: ClipResult, fused: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "path": str(clip.path), "label": clip.label, "vision": _label_of(clip.face_probs),
        "audio": _label_of(clip.speech_probs), "fused": {r: _label_of(p[i]) for r, p in fused.items()},
        "frames_analysed": clip.frames_analysed, "frames_with_face": clip.frames_with_face,
    }
    if clip.face_probs is not None:
        row["face_confidence"] = round(float(confidence(clip.face_probs)), 4)
        row["face_va"] = [round(float(v), 4) for v in va_from_probs(clip.face_probs)]
    if clip.speech_probs is not None:
        row["speech_va"] = [round(float(v), 4) for v in va_from_probs(clip.speech_probs)]
    if clip.problems:
        row["problems"] = clip.problems
    return row
