"""Face affect inference: frame -> YuNet faces -> FER-framed crops -> the face model -> FaceAffect per face."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from affect_sdk.checks import check_video_frame_size, finite_time, probability
from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES, NUM_CLASSES
from affect_sdk.media import VIDEO_SUFFIXES
from affect_sdk.registry import default_model, get_spec_for
from affect_sdk.results import FaceAffect
from affect_sdk.runtime import create_runner
from affect_sdk.vision.calibrate import PRIOR_MODES, baseline_offset, calibrated_logits, softmax
from affect_sdk.vision.temporal import SUSTAIN_SECONDS, sustained_expression

__all__ = ["FaceAnalyzer", "prepare_crops", "resting_crops", "softmax", "summarize_video", "video_frames"]


def prepare_crops(crops: np.ndarray | Sequence[np.ndarray], size: int) -> np.ndarray:
    """Grayscale or BGR uint8 crops of any size -> float32 [N, 1, size, size] in [0, 1] (the nets' input)."""
    if not isinstance(crops, (np.ndarray, list, tuple)) or (isinstance(crops, np.ndarray) and crops.ndim < 2):
        raise InputError(f"crops must be an image array or a list of uint8 images; got {type(crops).__name__} "
                         f"{getattr(crops, 'shape', '')}.")
    if isinstance(crops, np.ndarray) and crops.ndim in (2, 3) and (crops.ndim == 2 or crops.shape[-1] not in (3, 4)):
        crops = crops[None] if crops.ndim == 2 else crops  # one gray crop, or a gray batch [N, H, W]
    elif isinstance(crops, np.ndarray) and crops.ndim == 3:
        crops = crops[None]  # one colour crop
    out = np.empty((len(crops), 1, size, size), dtype=np.float32)
    for i, crop in enumerate(crops):
        crop = np.asarray(crop)
        if crop.dtype == np.uint16:
            crop = (crop >> 8).astype(np.uint8)
        if (crop.dtype != np.uint8 or crop.ndim not in (2, 3) or min(crop.shape[:2]) < 1
                or (crop.ndim == 3 and crop.shape[2] not in (1, 3, 4))):
            raise InputError(f"Face crop {i} has shape {crop.shape} and type {crop.dtype}; expected uint8 HxW "
                             f"(gray) or HxWx3 (BGR).")
        if crop.ndim == 3:
            crop = cv2.cvtColor(crop[:, :, :3], cv2.COLOR_BGR2GRAY) if crop.shape[2] >= 3 else crop[:, :, 0]
        if crop.shape != (size, size):
            shrink = crop.shape[0] > size or crop.shape[1] > size
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out[i, 0] = crop.astype(np.float32) / 255.0
    return out


class FaceAnalyzer:
    """Affect of every face in a frame (analyze) or of ready-made face crops (analyze_crops).

        analyzer = FaceAnalyzer()                         # shipped face model, prior="blend"
        faces = analyzer.analyze(frame_bgr, t=0.0)        # [FaceAffect], largest face first
        analyzer.set_baseline(resting_crops)              # this person's resting face reads neutral
        probs, va = analyzer.analyze_crops(crops)         # [N, 8] probabilities, [N, 2] valence/arousal

    `prior`: "balanced" divides FER+'s class frequencies out of the outputs (every expression equally likely a
    priori), "train" keeps them, "blend" (the default, chosen by measurement on FER+ Valid) goes halfway in log
    space. Probabilities are temperature-scaled as fitted on FER+ Valid; see affect_sdk.vision.calibrate for the math.
    """

    def __init__(self, model: str | None = None, backend: str | None = None, device: str | None = None,
                 detector_threshold: float | None = None, prior: str | None = None) -> None:
        self.model = model or default_model("face")
        spec = get_spec_for(self.model, "face")  # a speech model here is one ModelError
        self.input_size = int(spec.preprocess.get("input_size", 48))
        self.prior_mode = prior or spec.prior_mode
        if self.prior_mode not in PRIOR_MODES:
            raise InputError(f"prior must be one of {', '.join(PRIOR_MODES)}; got {prior!r}.")
        if spec.prior is None and self.prior_mode != "train":
            raise InputError(f"Model {self.model!r} records no training prior, so only prior='train' applies to it; "
                             f"got {self.prior_mode!r}.")
        self._prior = None if spec.prior is None else np.asarray(spec.prior, dtype=np.float32)
        self.temperature = float(spec.temperature.get(self.prior_mode, 1.0))
        self._neutral_reference = (None if spec.neutral_reference is None
                                   else np.asarray(spec.neutral_reference, dtype=np.float32))
        self.baseline: np.ndarray | None = None  # per-class logit offset of this person's resting face
        self.runner = create_runner(self.model, backend=backend, device=device)
        self.detector_threshold = probability("detector_threshold", detector_threshold)
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            from affect_sdk.vision.detect import FaceDetector

            self._detector = FaceDetector(score_threshold=self.detector_threshold)
        return self._detector

    def raw_outputs(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw class logits [N, 8] and (valence, arousal) [N, 2] of face crops, uncalibrated."""
        x = prepare_crops(crops, self.input_size)
        if len(x) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32), np.zeros((0, 2), np.float32)
        logits, vas = [], []
        for start in range(0, len(x), 256):
            out = self.runner(x[start:start + 256])
            logits.append(out[0].astype(np.float32))
            vas.append(np.clip(out[1].astype(np.float32), -1, 1))
        return np.concatenate(logits), np.concatenate(vas)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Raw logits -> the probabilities this analyzer reports (baseline, prior, temperature)."""
        return softmax(calibrated_logits(logits, prior=self._prior, mode=self.prior_mode,
                                         temperature=self.temperature, offset=self.baseline))

    def analyze_crops(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities [N, 8] and (valence, arousal) [N, 2] of face crops (gray or BGR, any size)."""
        logits, va = self.raw_outputs(crops)
        return self.calibrate(logits), va

    def set_baseline(self, crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Calibrate to one person: `crops` are their face at rest (from analyze's frames, or any crops).

        From now on that resting face reads as a typical neutral face does, and expressions are read against it
        (see affect_sdk.vision.calibrate). Returns the per-class logit offset; `clear_baseline()` undoes it.
        """
        if self._neutral_reference is None:
            raise InputError(f"Model {self.model!r} has no neutral reference in the registry, so it cannot take a "
                             f"personal baseline; fit one with `affect train vision-calibration`.")
        logits, _ = self.raw_outputs(crops)
        if len(logits) == 0:
            raise InputError("set_baseline needs at least one face crop of the person at rest; got none.")
        self.baseline = baseline_offset(logits, self._neutral_reference)
        return self.baseline

    def clear_baseline(self) -> None:
        self.baseline = None

    def analyze(self, image: np.ndarray | str | Path, t: float = 0.0) -> list[FaceAffect]:
        """Every face in a BGR frame or an image file (largest first); no face -> []. `t`: the frame's time."""
        return self.analyze_with_crops(image, t)[0]

    def analyze_with_crops(self, image: np.ndarray | str | Path, t: float = 0.0
                           ) -> tuple[list[FaceAffect], list[np.ndarray]]:
        """analyze(), plus the aligned crop of each face (what a personal baseline is taken from)."""
        from affect_sdk.vision.align import crop_face

        t = finite_time("t", t)
        if isinstance(image, (str, Path)):
            from affect_sdk.vision.data import load_image

            image = load_image(image)  # InputError naming the file when it is missing or not an image
        frame_bgr = image
        detections = self.detector.detect(frame_bgr)
        if not detections:
            return [], []
        crops = [crop_face(frame_bgr, d, self.input_size) for d in detections]
        probs, va = self.analyze_crops(crops)
        faces = [FaceAffect(t=float(t), probs=tuple(float(p) for p in probs[i]), valence=float(va[i, 0]),
                            arousal=float(va[i, 1]), confidence=float(probs[i].max()),
                            box=tuple(round(float(v), 2) for v in d.box), face_id=i)
                 for i, d in enumerate(detections)]
        return faces, crops


# ---------------------------------------------------------------- videos
def video_frames(path: str | Path, *, step: int = 1, first: int = 0,
                 end: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, media time in seconds, BGR frame) of every `step`-th frame of a video file; `first` and `end`
    keep frames first..end-1 (a part of a long video), counted and timed as in the whole file."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        return
    check_video_frame_size(capture, path)  # before any frame is decoded
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    if first > 0:
        # FFmpeg seeks to the keyframe before `first` and decodes forward; a container that cannot say where it
        # landed is read from the start instead, so a part never starts at the wrong frame
        capture.set(cv2.CAP_PROP_POS_FRAMES, first)
        index = first if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == first else 0
        if index == 0:
            capture.release()
            capture = cv2.VideoCapture(str(path))
    try:
        while end is None or index < end:
            if index < first:  # frames before the part (after a failed seek): decoded, never converted
                ok, frame = capture.grab(), None
            else:
                ok, frame = capture.read()
            if not ok:
                break
            if index >= first and index % step == 0:
                yield index, index / fps, frame
            index += 1
    finally:
        capture.release()


def resting_crops(analyzer: FaceAnalyzer, path: str | Path, *, max_frames: int = 300) -> np.ndarray:
    """Crops of the largest face in a reference video or image of a person at rest, for set_baseline()."""
    from affect_sdk.vision.align import crop_face
    from affect_sdk.vision.data import load_image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Baseline file {path} does not exist; expected a video or an image of the person at rest.")
    frames = (frame for _, _, frame in video_frames(path)) if path.suffix.lower() in VIDEO_SUFFIXES \
        else iter([load_image(path)])
    crops = []
    for frame in itertools.islice(frames, max_frames):
        detections = analyzer.detector.detect(frame)
        if detections:
            crops.append(crop_face(frame, detections[0], analyzer.input_size))
    if not crops:
        raise InputError(f"Baseline file {path} shows no face the detector can find; expected the person at rest.")
    return np.stack(crops)


def summarize_video(times: Sequence[float], probs: np.ndarray, va: np.ndarray, *,
                    min_seconds: float = SUSTAIN_SECONDS) -> dict:
    """The clip-level reading of one face: the sustained expression (vision.temporal), its probabilities, the
    window that decided it, and the mean valence/arousal over the frames."""
    if len(times) == 0:
        return {"label": None, "probs": None, "valence": None, "arousal": None, "evidence": None}
    label, pooled, (start, end) = sustained_expression(probs, np.asarray(times), min_seconds=min_seconds)
    mean_va = np.asarray(va, dtype=np.float64).mean(axis=0)
    return {"label": CLASSES[label], "probs": {c: round(float(p), 6) for c, p in zip(CLASSES, pooled)},
            "valence": round(float(mean_va[0]), 6), "arousal": round(float(mean_va[1]), 6),
            "evidence": {"rule": f"sustained >= {min_seconds:g} s (affect_sdk.vision.temporal)",
                         "start": round(start, 4), "end": round(end, 4),
                         "frame_mean": {c: round(float(p), 6) for c, p in zip(CLASSES, np.mean(probs, axis=0))}}}
