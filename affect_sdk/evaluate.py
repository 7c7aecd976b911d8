"""Paired audio-visual clip evaluation: face model on video frames, speech model on the audio track, fusion rules.

`evaluate_fusion(folder)` finds labelled clips (RAVDESS file names or a labels.csv of path,label), analyses each
clip once per modality (the face student on every k-th frame, mean of probabilities over frames with a face; the
speech model on the audio track, mean over voiced windows), then fuses them with every rule. Clips missing their
face or audio are counted and go through the rules' fallback; unreadable files and unknown labels are counted and
named; nothing is dropped silently.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from affect_sdk.errors import AffectError, InputError
from affect_sdk.fusion.fit import FitConfig, fit_weights
from affect_sdk.fusion.rules import (
    DEFAULT_MASKS, RULE_NAMES, FittedWeights, class_mask, confidence, fuse, fuse_va,
)
from affect_sdk.labels import CLASS_INDEX, CLASSES, NUM_CLASSES, RAVDESS_CODES, canonical, va_from_probs

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"}
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
    face_track: list[tuple[float, float, float, float]] = field(default_factory=list)  # t, valence, arousal, conf
    speech_track: list[tuple[float, float, float, float]] = field(default_factory=list)  # voiced windows only


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


def _largest(faces: Sequence[Any]):
    return max(faces, key=lambda f: (f.box[2] * f.box[3]) if f.box else 0.0)


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
                    if faces:
                        face = _largest(faces)
                        probs.append(face.probs)
                        clip.face_track.append((t, face.valence, face.arousal, face.confidence))
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
        clip.speech_track = [(w.t, w.valence, w.arousal, w.confidence) for w in windows if w.probs is not None]
        probs = utterance_probs(windows)
        if probs is None:  # nothing voiced: the analyzer's own fallback (all windows, ungated)
            probs, _ = speech_analyzer.classify_file(path)
            clip.problems.append("no voiced speech (all windows used)")
        clip.speech_probs = np.asarray(probs, dtype=np.float64)
    except AffectError as exc:
        clip.problems.append(f"audio unusable: {exc}")
    return clip


# ------------------------------------------------------------------------------------------------ metrics
def scores(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the classes present in y_true, per-class recall, confusion [8, 9].

    y_pred = -1 means no prediction (the modality was missing): it counts as wrong and lands in the last
    confusion column ('none').
    """
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), dtype=int)
    for t, p in zip(y_true, y_pred):
        confusion[t, p if p >= 0 else NUM_CLASSES] += 1
    present = sorted(set(y_true.tolist()))
    per_class, f1s = {}, []
    for c in present:
        tp = confusion[c, c]
        support, predicted = confusion[c].sum(), confusion[:, c].sum()
        recall = tp / support if support else 0.0
        precision = tp / predicted if predicted else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        per_class[CLASSES[c]] = round(float(recall), 4)
    return {
        "accuracy": round(float((y_true == y_pred).mean()), 4) if len(y_true) else 0.0,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def _predictions(probs: np.ndarray) -> np.ndarray:
    ok = np.isfinite(probs).all(axis=1)
    return np.where(ok, np.nan_to_num(probs).argmax(axis=1), -1)


def _model_masks(face_model: str | None, speech_model: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Class masks from the registry (preprocess['classes']) when a model states them, else the defaults."""
    from affect_sdk.registry import default_model, get_spec

    masks = list(DEFAULT_MASKS)
    for i, (name, task) in enumerate(((face_model, "face"), (speech_model, "speech"))):
        try:
            classes = get_spec(name or default_model(task)).preprocess.get("classes")
        except AffectError:
            classes = None
        if classes:
            masks[i] = class_mask([c for c in classes if c in CLASSES])
    return masks[0], masks[1]


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
        times = np.unique(np.concatenate([face[:, 0], speech[:, 0]]))
        fused = []
        for t in times:
            f = face[np.argmin(np.abs(face[:, 0] - t))] if len(face) else None
            s = speech[np.argmin(np.abs(speech[:, 0] - t))] if len(speech) else None
            f = f if f is not None and abs(f[0] - t) <= 0.5 else None  # a face result older than 0.5 s is stale
            s = s if s is not None and abs(s[0] - t) <= 1.0 else None
            if f is None and s is None:
                fused.append((float(t), None, None))
                continue
            va = fuse_va(None if f is None else f[1:3], None if s is None else s[1:3],
                         face_reliability=1.0 if f is None else f[3], speech_reliability=1.0 if s is None else s[3])
            fused.append((float(t), float(va[0]), float(va[1])))
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
    masks = _model_masks(config.face_model, config.speech_model)

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
        "vision": scores(y, _predictions(face)),
        "audio": scores(y, _predictions(speech)),
        "fused": {rule: scores(y, _predictions(p)) for rule, p in fused_probs.items()},
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
