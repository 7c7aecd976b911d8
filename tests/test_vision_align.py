"""FER-like aligned crops from YuNet detections."""
import numpy as np

from affect_sdk.vision.align import FER_EYE_CENTRE, crop_face, fer_crop_geometry
from affect_sdk.vision.detect import Detection


def _face(angle_deg: float, eye_dist: float = 40.0, centre=(200.0, 150.0)) -> Detection:
    a = np.radians(angle_deg)
    axis, down = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    c = np.array(centre)
    landmarks = np.stack([c - axis * eye_dist / 2, c + axis * eye_dist / 2, c + down * 20,
                          c + down * 39 - axis * 15, c + down * 39 + axis * 15]).astype(np.float32)
    return Detection((c[0] - 50, c[1] - 50, 100, 118), landmarks, 0.9)


def test_geometry_levels_tilted_eyes_and_scales_like_fer():
    angle, side = fer_crop_geometry(_face(15).landmarks, _face(15).box)
    assert abs(angle - 15) < 1e-3
    assert 100 < side < 125  # eyes 40 px apart -> about 109 px, as in FER crops (eyes 0.367 of the side)


def test_crop_is_square_uint8_bgr_and_puts_the_eyes_where_fer_has_them():
    frame = np.zeros((300, 400, 3), np.uint8)
    face = _face(20)
    for x, y in face.landmarks[:2]:  # two bright eye dots
        frame[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2] = 255
    crop = crop_face(frame, face, 96)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    ys, xs = np.nonzero(crop[:, :, 0] > 60)
    assert abs(ys.mean() - FER_EYE_CENTRE[1] * 96) < 3  # both eyes on the FER eye line: levelled
    assert abs(xs.mean() - FER_EYE_CENTRE[0] * 96) < 3
