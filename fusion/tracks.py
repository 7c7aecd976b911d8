"""Whom the fused stream follows: the largest face, one face track, or every track (one fused stream per person).

Each followed person has their own FusionState (own smoothing), all sharing the same voice: the voice cannot be
told apart by person, so with several people it is paired with each of them.
"""
from __future__ import annotations

from typing import Sequence

from affect_sdk.errors import InputError
from affect_sdk.fusion.sync import FusionState, SyncConfig
from affect_sdk.results import FaceAffect, FusedAffect, SpeechAffect

FOLLOW_CHOICES = ("largest", "all")
FORGET_S = 60.0  # a person unseen this long has left; their stream ends


def parse_follow(track: str | int | None) -> str | int:
    """"largest" (default), "all", or a track id (int, or its digits as text) -> the normalised choice."""
    if track is None:
        return "largest"
    if isinstance(track, bool):
        raise InputError(f"track must be 'largest', 'all' or a track id (an integer >= 0); got {track!r}.")
    if isinstance(track, int):
        if track < 0:
            raise InputError(f"A track id is an integer >= 0; got {track}.")
        return track
    text = str(track).strip().lower()
    if text.isdigit():
        return int(text)
    if text not in FOLLOW_CHOICES:
        raise InputError(f"track must be 'largest', 'all' or a track id (an integer >= 0); got {track!r}.")
    return text


class TrackedFusion:
    """FusionState for the chosen face(s): `add_faces`, `add_speech`, then `fuse(t)` -> a list of FusedAffect
    (one entry, or with follow="all" one per person in view; a voice alone gives one result with no track)."""

    def __init__(self, config: SyncConfig = SyncConfig(), *, audio: bool = True,
                 follow: str | int | None = "largest") -> None:
        self.config, self.audio = config, audio
        self.follow = parse_follow(follow)
        track = self.follow if isinstance(self.follow, int) else None
        self.main = FusionState(config, audio=audio, track_id=track)  # the one stream unless following all
        self.per_track: dict[int, FusionState] = {}
        self.last_t: float | None = None

    def add_faces(self, faces: Sequence[FaceAffect], t: float) -> None:
        self.main.add_faces(faces, t)
        if self.follow != "all":
            return
        for face in faces:
            if face.track_id is not None and face.track_id not in self.per_track:
                state = self.per_track[face.track_id] = FusionState(self.config, audio=self.audio,
                                                                    track_id=face.track_id)
                for speech in self.main.speech:
                    state.add_speech(speech)
        for track_id, state in list(self.per_track.items()):
            state.add_faces(faces, t)
            if state.face is not None and t - state.face.t > FORGET_S:  # gone for good: free its state
                del self.per_track[track_id]

    def add_speech(self, result: SpeechAffect) -> None:
        self.main.add_speech(result)
        for state in self.per_track.values():
            state.add_speech(result)

    def fuse(self, t: float) -> list[FusedAffect]:
        self.last_t = t
        if self.follow != "all":
            return [self.main.fuse(t)]
        in_view = [state for _, state in sorted(self.per_track.items())
                   if state.face is not None and t - state.face.t <= self.config.max_face_age_s + 1e-6]
        if not in_view:
            return [self.main.fuse(t)]
        return [state.fuse(t) for state in in_view]
