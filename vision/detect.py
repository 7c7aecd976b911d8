"""Face finding with YuNet (cv2.FaceDetectorYN, weights shipped in the package): boxes, five landmarks, scores."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from affect_sdk.checks import probability
from affect_sdk.errors import InputError, ModelError
from affect_sdk.registry import get_spec, verified_path


@dataclass(frozen=True)
class Detection:
    """One face: box (x, y, w, h) in frame pixels; landmarks [5, 2] (right eye, left eye, nose tip, right and
    left mouth corner, in the subject's sense); detector score in 0..1."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float


def as_bgr_frame(frame: np.ndarray, what: str = "frame") -> np.ndarray:
    """Any uint8/uint16 gray, BGR or BGRA image -> contiguous uint8 BGR; InputError for anything else."""
    frame = np.asarray(frame)
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    if frame.dtype != np.uint8:
        raise InputError(f"The {what} has pixel type {frame.dtype}; expected 8-bit (uint8) pixels.")
    if frame.ndim in (2, 3) and min(frame.shape[:2]) < 1:
        raise InputError(f"The {what} is empty (shape {frame.shape}); expected an image of at least 1x1 pixels.")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3])
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.ascontiguousarray(frame)
    raise InputError(f"The {what} has shape {frame.shape}; expected HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA).")


class FaceDetector:
    """Every face in a BGR frame; no face -> [].

    Small frames (e.g. 48x48 face crops) are upscaled and padded, since YuNet needs faces of roughly 20+ pixels
    with some context; very large frames are downscaled to `max_side` for speed. Boxes come back in the
    caller's pixel coordinates.
    """

    def __init__(self, score_threshold: float | None = None, nms_threshold: float | None = None,
                 top_k: int | None = None, max_side: int = 1280, min_side: int = 192) -> None:
        pre = get_spec("yunet").preprocess
        score_threshold, nms_threshold = (probability("score_threshold", score_threshold),
                                          probability("nms_threshold", nms_threshold))
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a whole number of faces of at least 1; got {top_k!r}.")
        self.score_threshold = float(pre["score_threshold"] if score_threshold is None else score_threshold)
        self.max_side, self.min_side = max_side, min_side
        # OpenCV 5 warns on stderr that the new graph engine ignores target settings: noise for users.
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(verified_path("yunet")), "", (320, 320), self.score_threshold,
                float(pre["nms_threshold"] if nms_threshold is None else nms_threshold),
                int(pre["top_k"] if top_k is None else top_k))
        except cv2.error as exc:
            raise ModelError(f"OpenCV could not load the YuNet face detector: {exc}.") from None
        finally:
            cv2.utils.logging.setLogLevel(previous)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        frame = as_bgr_frame(frame_bgr)
        h, w = frame.shape[:2]
        if min(h, w) < 2:
            return []
        scale = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
        elif max(h, w) < self.min_side:
            scale = self.min_side / max(h, w)
        work = frame if scale == 1.0 else cv2.resize(
            frame, (max(1, round(w * scale)), max(1, round(h * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        wh, ww = work.shape[:2]
        pad_to = 320 if max(h, w) < self.min_side else 0  # a face filling the whole input is missed otherwise
        if pad_to and (wh < pad_to or ww < pad_to):
            work = cv2.copyMakeBorder(work, 0, max(0, pad_to - wh), 0, max(0, pad_to - ww), cv2.BORDER_CONSTANT)
        self._net.setInputSize((work.shape[1], work.shape[0]))
        _, faces = self._net.detect(work)
        if faces is None:
            return []
        found = []
        for row in faces:
            x, y, bw, bh = (float(v) / scale for v in row[:4])
            landmarks = (row[4:14].reshape(5, 2) / scale).astype(np.float32)
            found.append(Detection((x, y, bw, bh), landmarks, float(row[14])))
        found.sort(key=lambda d: -d.box[2] * d.box[3])  # largest face first
        return found
