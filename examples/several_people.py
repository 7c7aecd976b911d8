"""Several people at once: one fused stream per person, told apart by their face track, from frames the app
reads itself (here two people side by side, built from the sample clip and its mirror image).

    python examples/several_people.py
"""
from collections import Counter, defaultdict

import cv2
import numpy as np

from affect_sdk import Session, demo_clip


def two_people():
    """(t, frame) pairs: the app owns the camera; here it reads a file and shows it twice, the copy mirrored."""
    capture = cv2.VideoCapture(str(demo_clip()))
    fps, index = capture.get(cv2.CAP_PROP_FPS) or 30.0, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        middle = frame[:, 120:520]
        yield index / fps, np.hstack([middle, cv2.flip(middle, 1)])
        index += 1
    capture.release()


labels = defaultdict(Counter)
with Session(frames=two_people(), fast=True, track="all") as session:  # fast: every frame, as fast as it goes
    for fused in session:
        if fused.track_id is not None and fused.label:
            labels[fused.track_id][fused.label] += 1
for track_id, counts in sorted(labels.items()):
    label, frames = counts.most_common(1)[0]
    print(f"person {track_id}: mostly {label} ({frames} of {sum(counts.values())} frames)")
