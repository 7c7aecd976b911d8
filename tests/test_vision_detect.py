"""YuNet face finding on a real RAVDESS video frame."""
import cv2
import numpy as np
import pytest

from affect_sdk.errors import InputError
from affect_sdk.vision.detect import FaceDetector


@pytest.fixture(scope="module")
def ravdess_frame(shared):
    clip = sorted((shared / "data/ravdess_av_clips").glob("*.mp4"))[0]
    capture = cv2.VideoCapture(str(clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 40)
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


def test_finds_the_face_with_five_landmarks_in_a_ravdess_frame(ravdess_frame):
    faces = FaceDetector().detect(ravdess_frame)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert w > 50 and h > 50 and 0 <= x < ravdess_frame.shape[1] and faces[0].score > 0.7
    assert faces[0].landmarks.shape == (5, 2)
    right_eye, left_eye = faces[0].landmarks[:2]
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left


def test_blank_frame_gives_no_faces_not_an_error():
    assert FaceDetector().detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert FaceDetector().detect(np.zeros((1, 1), np.uint8)) == []


def test_gray_bgra_and_downscaled_large_frames_are_accepted(ravdess_frame):
    detector = FaceDetector()
    assert len(detector.detect(cv2.cvtColor(ravdess_frame, cv2.COLOR_BGR2GRAY))) == 1
    assert len(detector.detect(cv2.cvtColor(ravdess_frame, cv2.COLOR_BGR2BGRA))) == 1
    big = cv2.resize(ravdess_frame, None, fx=4, fy=4)  # 2560x1440 -> detected at 1280, boxes scaled back
    (face,) = detector.detect(big)
    (small,) = detector.detect(ravdess_frame)
    assert abs(face.box[0] / 4 - small.box[0]) < 10


def test_a_float_frame_is_refused_with_one_sentence():
    with pytest.raises(InputError, match="uint8"):
        FaceDetector().detect(np.zeros((10, 10, 3), np.float32))
