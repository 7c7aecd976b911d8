"""Face tracks: a stable `track_id` per person across frames, from box overlap and centre distance.

Pure functions over explicit state: `assign_tracks(state, boxes, t)` gives each box a track id and the next state.
A track that goes unseen keeps its id for `memory_s` seconds (a blink of the detector, a head turn), so a face that
comes back near where it was gets its old id; after that a new face gets a new id. `FaceTracker` wraps the state for
callers that feed frames one after another (Session, `affect predict`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

from affect_sdk.errors import InputError
from affect_sdk.results import Box, FaceAffect

__all__ = ["TrackConfig", "Track", "TrackState", "assign_tracks", "FaceTracker", "iou"]


@dataclass(frozen=True)
class TrackConfig:
    """When a box continues a track. Defaults measured on two faces side by side at 30 fps (tests/test_vision_track)."""

    min_iou: float = 0.2  # overlap that continues a track outright
    max_centre_shift: float = 0.6  # or: centre moved at most this many box widths since last seen
    memory_s: float = 1.5  # an unseen track keeps its id this long

    def __post_init__(self) -> None:
        if not (0.0 <= self.min_iou <= 1.0 and self.max_centre_shift >= 0.0 and self.memory_s >= 0.0):
            raise InputError("TrackConfig needs 0 <= min_iou <= 1, max_centre_shift >= 0 and memory_s >= 0.")


@dataclass(frozen=True)
class Track:
    track_id: int
    box: Box  # where it was last seen
    last_t: float


@dataclass(frozen=True)
class TrackState:
    tracks: tuple[Track, ...] = ()
    next_id: int = 0


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _centre_shift(a: Box, b: Box) -> float:
    """Distance between the centres in units of the larger box width (scale-free: near and far faces alike)."""
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    return (dx * dx + dy * dy) ** 0.5 / max(a[2], b[2], 1e-6)


def _match_cost(track: Track, box: Box, config: TrackConfig) -> float | None:
    """Lower is better; None when the box cannot continue the track."""
    overlap = iou(track.box, box)
    shift = _centre_shift(track.box, box)
    if overlap < config.min_iou and shift > config.max_centre_shift:
        return None
    return (1.0 - overlap) + shift


def assign_tracks(state: TrackState, boxes: Sequence[Box], t: float,
                  config: TrackConfig = TrackConfig()) -> tuple[list[int], TrackState]:
    """The track id of each box in a frame at time t, and the state after it.

    Pairs are taken greedily, best match first (enough for the few faces of an HCI scene), so two boxes never share
    an id; a box nothing matches starts a new track.
    """
    live = [tr for tr in state.tracks if t - tr.last_t <= config.memory_s]
    pairs = sorted((cost, ti, bi) for ti, tr in enumerate(live) for bi, box in enumerate(boxes)
                   if (cost := _match_cost(tr, box, config)) is not None)
    ids: list[int | None] = [None] * len(boxes)
    used: set[int] = set()
    for _, ti, bi in pairs:
        if ti in used or ids[bi] is not None:
            continue
        used.add(ti)
        ids[bi] = live[ti].track_id
    next_id = state.next_id
    for bi in range(len(boxes)):
        if ids[bi] is None:
            ids[bi], next_id = next_id, next_id + 1
    seen = {tid: Track(tid, tuple(float(v) for v in boxes[bi]), t) for bi, tid in enumerate(ids)}
    kept = tuple(seen.pop(tr.track_id, tr) for tr in live) + tuple(seen.values())
    return [int(i) for i in ids], TrackState(tracks=kept, next_id=next_id)


class FaceTracker:
    """The explicit state of one camera's tracks: `update(faces, t)` returns the faces with their `track_id`."""

    def __init__(self, config: TrackConfig = TrackConfig()) -> None:
        self.config = config
        self.state = TrackState()

    def update(self, faces: Sequence[FaceAffect], t: float) -> list[FaceAffect]:
        boxes = [f.box if f.box is not None else (0.0, 0.0, 0.0, 0.0) for f in faces]
        ids, self.state = assign_tracks(self.state, boxes, t, self.config)
        return [dataclasses.replace(face, track_id=tid) for face, tid in zip(faces, ids)]

    def reset(self) -> None:
        self.state = TrackState()
