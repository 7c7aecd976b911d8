"""Face affect inference: frame -> YuNet faces -> FER-framed crops -> the face model -> FaceAffect per face."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.labels import NUM_CLASSES
from affect_sdk.registry import default_model, get_spec
from affect_sdk.results import FaceAffect
from affect_sdk.runtime import create_runner


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def prepare_crops(crops: np.ndarray | Sequence[np.ndarray], size: int) -> np.ndarray:
    """Grayscale or BGR uint8 crops of any size -> float32 [N, 1, size, size] in [0, 1] (the nets' input)."""
    if isinstance(crops, np.ndarray) and crops.ndim in (2, 3) and (crops.ndim == 2 or crops.shape[-1] not in (3, 4)):
        crops = crops[None] if crops.ndim == 2 else crops  # one gray crop, or a gray batch [N, H, W]
    elif isinstance(crops, np.ndarray) and crops.ndim == 3:
        crops = crops[None]  # one colour crop
    out = np.empty((len(crops), 1, size, size), dtype=np.float32)
    for i, crop in enumerate(crops):
        crop = np.asarray(crop)
        if crop.dtype == np.uint16:
            crop = (crop >> 8).astype(np.uint8)
        if crop.dtype != np.uint8 or crop.ndim not in (2, 3) or min(crop.shape[:2]) < 1:
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
    """Affect of every face in a frame (analyze) or of ready-made face crops (analyze_crops)."""

    def __init__(self, model: str | None = None, backend: str | None = None, device: str | None = None,
                 detector_threshold: float | None = None) -> None:
        self.model = model or default_model("face")
        spec = get_spec(self.model)
        self.input_size = int(spec.preprocess.get("input_size", 48))
        self.runner = create_runner(self.model, backend=backend, device=device)
        self.detector_threshold = detector_threshold
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            from affect_sdk.vision.detect import FaceDetector

            self._detector = FaceDetector(score_threshold=self.detector_threshold)
        return self._detector

    def analyze_crops(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities [N, 8] and (valence, arousal) [N, 2] of face crops (gray or BGR, any size)."""
        x = prepare_crops(crops, self.input_size)
        if len(x) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32), np.zeros((0, 2), np.float32)
        probs, vas = [], []
        for start in range(0, len(x), 256):
            logits, va = self.runner(x[start:start + 256])[:2]
            probs.append(softmax(logits.astype(np.float32)))
            vas.append(np.clip(va.astype(np.float32), -1, 1))
        return np.concatenate(probs), np.concatenate(vas)

    def analyze(self, frame_bgr: np.ndarray, t: float) -> list[FaceAffect]:
        """Every face in a BGR frame (largest first); no face -> []."""
        from affect_sdk.vision.align import crop_face

        detections = self.detector.detect(frame_bgr)
        if not detections:
            return []
        crops = [crop_face(frame_bgr, d, self.input_size) for d in detections]
        probs, va = self.analyze_crops(crops)
        return [FaceAffect(t=float(t), probs=tuple(float(p) for p in probs[i]), valence=float(va[i, 0]),
                           arousal=float(va[i, 1]), confidence=float(probs[i].max()),
                           box=tuple(round(float(v), 2) for v in d.box), face_id=i)
                for i, d in enumerate(detections)]
