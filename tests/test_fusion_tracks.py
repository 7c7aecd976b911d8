"""Whom fusion follows: the largest face, one track, or everyone (one fused stream per person, one shared voice)."""
import pytest

from affect_sdk.errors import InputError
from affect_sdk.fusion.sync import SyncConfig
from affect_sdk.fusion.tracks import TrackedFusion, parse_follow
from affect_sdk.results import FaceAffect, SpeechAffect

HAPPY = (0.05, 0.8, 0.03, 0.03, 0.03, 0.02, 0.02, 0.02)
SAD = (0.05, 0.02, 0.8, 0.03, 0.03, 0.03, 0.02, 0.02)


def face(t, track_id, probs, width):
    return FaceAffect(t=t, probs=probs, valence=0.0, arousal=0.0, confidence=max(probs), box=(0, 0, width, width),
                      track_id=track_id)


def test_all_gives_one_stream_per_person_and_ends_a_stream_when_its_person_leaves():
    fusion = TrackedFusion(SyncConfig(smoothing_tau_s=None), audio=True, follow="all")
    calm = (0.2, 0.12, 0.1, 0.1, 0.12, 0.12, 0.12, 0.12)  # an unsure voice: each face decides its own label
    voice = SpeechAffect(t=0.0, probs=calm, valence=0.0, arousal=0.0, confidence=0.2, voiced=True, start=-1.0,
                         end=0.05)
    fusion.add_speech(voice)
    fusion.add_faces([face(0.1, 0, HAPPY, 100), face(0.1, 1, SAD, 60)], 0.1)
    both = fusion.fuse(0.1)
    assert [f.track_id for f in both] == [0, 1] and [f.label for f in both] == ["happy", "sad"]
    assert all(f.sources == ("face", "speech") for f in both)  # the voice is paired with each person
    fusion.add_faces([face(0.2, 0, HAPPY, 100)], 0.2)
    assert [f.track_id for f in fusion.fuse(0.2)] == [0, 1]  # person 1 missed for a moment: still followed
    fusion.add_faces([face(1.0, 0, HAPPY, 100)], 1.0)
    assert [f.track_id for f in fusion.fuse(1.0)] == [0]  # gone longer than max_face_age_s
    fusion.add_faces([], 2.0)
    alone = fusion.fuse(2.0)
    assert len(alone) == 1 and alone[0].track_id is None  # nobody in view: one stream, whatever the voice gives


def test_following_one_track_ignores_larger_faces():
    fusion = TrackedFusion(SyncConfig(smoothing_tau_s=None), audio=False, follow="1")
    fusion.add_faces([face(0.0, 0, HAPPY, 100), face(0.0, 1, SAD, 50)], 0.0)
    (fused,) = fusion.fuse(0.0)
    assert fused.track_id == 1 and fused.label == "sad" and dict(fused.weights) == {"face": 1.0}
    largest = TrackedFusion(SyncConfig(smoothing_tau_s=None), audio=False)
    largest.add_faces([face(0.0, 0, HAPPY, 100), face(0.0, 1, SAD, 50)], 0.0)
    assert largest.fuse(0.0)[0].track_id == 0


@pytest.mark.parametrize("bad", ["tallest", -1, True, 1.5])
def test_a_bad_choice_is_one_clear_error(bad):
    with pytest.raises(InputError, match="track"):
        parse_follow(bad)
