"""Aligned face crops that mimic FER framing, from a YuNet detection (eyes levelled, FER-like scale and position).

FER2013 crops are loose: measured with YuNet on 300 FER+ Test images (48x48), the eye midpoint sits at
(0.495, 0.371) of the side, the eyes are 0.367 of the side apart and the mouth centre is 0.361 of the side below
the eyes. crop_face places a detected face the same way, so the student sees what it was trained on.
"""
from __future__ import annotations

import cv2
import numpy as np

from affect_sdk.vision.detect import Detection, as_bgr_frame

FER_EYE_CENTRE = (0.495, 0.371)  # eye midpoint, as a fraction of the crop side
FER_EYE_DISTANCE = 0.367  # distance between the eyes / crop side
FER_EYE_MOUTH = 0.361  # vertical eye-midpoint-to-mouth-centre distance / crop side


def fer_crop_geometry(landmarks: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """The angle in degrees that levels the eyes and the FER-like crop side in pixels for one face."""
    right_eye, left_eye = landmarks[0], landmarks[1]
    dx, dy = left_eye - right_eye
    angle = float(np.degrees(np.arctan2(dy, dx)))
    eye_dist = float(np.hypot(dx, dy))
    eye_mid, mouth_mid = (right_eye + left_eye) / 2, (landmarks[3] + landmarks[4]) / 2
    eye_mouth = float(np.linalg.norm(mouth_mid - eye_mid))
    side = 0.5 * (eye_dist / FER_EYE_DISTANCE + eye_mouth / FER_EYE_MOUTH)
    box_side = 1.03 * max(box[2], box[3])
    if not np.isfinite(side) or side < 0.5 * box_side or side > 2.0 * box_side:  # implausible landmarks
        side = box_side
    return angle, side


def crop_face(frame_bgr: np.ndarray, detection: Detection, size: int = 48) -> np.ndarray:
    """A size x size uint8 BGR crop of one detected face, eyes levelled and framed like FER2013."""
    frame = as_bgr_frame(frame_bgr)
    landmarks = np.asarray(detection.landmarks, dtype=np.float64).reshape(5, 2)
    angle, side = fer_crop_geometry(landmarks, detection.box)
    eye_mid = (landmarks[0] + landmarks[1]) / 2
    # Rotate about the eye midpoint, scale the side to `size`, then move the eye midpoint to its FER position.
    m = cv2.getRotationMatrix2D((float(eye_mid[0]), float(eye_mid[1])), angle, size / side)
    m[0, 2] += FER_EYE_CENTRE[0] * size - eye_mid[0]
    m[1, 2] += FER_EYE_CENTRE[1] * size - eye_mid[1]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, m, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
