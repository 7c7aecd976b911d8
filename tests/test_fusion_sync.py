"""Pairing face and speech results on the session clock, falling back when one is missing, smoothing over time."""
import math

import numpy as np
import pytest

from affect_sdk.errors import InputError
from affect_sdk.fusion.sync import (
    FusionState, SyncConfig, fuse_results, latest_known_speech, primary_face, smooth, smoothing_alpha,
)
from affect_sdk.labels import CLASS_INDEX, NUM_CLASSES
from affect_sdk.results import FaceAffect, SpeechAffect


def probs_for(label: str, mass: float = 0.8) -> tuple[float, ...]:
    p = np.full(NUM_CLASSES, (1.0 - mass) / (NUM_CLASSES - 1))
    p[CLASS_INDEX[label]] = mass
    return tuple(p)


def face(t: float, label: str = "happy", box=(0, 0, 100, 100), mass: float = 0.8) -> FaceAffect:
    return FaceAffect(t=t, probs=probs_for(label, mass), valence=0.6, arousal=0.1, confidence=0.7, box=box)


def speech(centre: float, label: str = "surprise", voiced: bool = True, window: float = 2.0) -> SpeechAffect:
    return SpeechAffect(t=centre, probs=probs_for(label) if voiced else None,
                        valence=0.2 if voiced else float("nan"), arousal=0.7 if voiced else float("nan"),
                        confidence=0.6 if voiced else 0.0, voiced=voiced,
                        start=centre - window / 2, end=centre + window / 2)


NO_SMOOTHING = SyncConfig(smoothing_tau_s=None)


def test_face_and_speech_within_their_ages_are_fused():
    state = FusionState(NO_SMOOTHING)
    state.add_speech(speech(1.0))  # window 0..2 s, known from t = 2.0
    state.add_faces([face(2.2)], 2.2)
    fused = state.fuse(2.2)
    assert fused.sources == ("face", "speech")
    assert fused.face_age == pytest.approx(0.0) and fused.speech_age == pytest.approx(1.2)
    assert fused.speech_age <= NO_SMOOTHING.max_speech_age_s
    assert math.isclose(sum(fused.probs), 1.0, rel_tol=1e-6)
    assert fused.note == "" and fused.rule == "entropy_weighted"


def test_speech_is_only_used_once_its_window_has_been_heard():
    state = FusionState(NO_SMOOTHING)
    state.add_speech(speech(1.0))
    state.add_speech(speech(1.5))  # ends at 2.5: not known at 2.2
    assert latest_known_speech(state.speech, 2.2).t == 1.0
    assert latest_known_speech(state.speech, 2.5).t == 1.5
    assert latest_known_speech(state.speech, 1.9) is None


def test_silent_microphone_gives_face_only_results_that_say_so():
    state = FusionState(NO_SMOOTHING)
    state.add_speech(speech(1.0, voiced=False))
    state.add_faces([face(2.1)], 2.1)
    fused = state.fuse(2.1)
    assert fused.sources == ("face",)
    assert fused.label == "happy" and fused.speech_age is None
    assert fused.note == "face only: speech unvoiced"


def test_no_face_in_view_gives_speech_only_results_that_say_so():
    state = FusionState(NO_SMOOTHING)
    state.add_speech(speech(1.0))
    state.add_faces([], 2.1)
    fused = state.fuse(2.1)
    assert fused.sources == ("speech",) and fused.label == "surprise"
    assert fused.note == "speech only: no face in view"
    assert fused.face_age is None


def test_results_older_than_their_age_are_left_out():
    state = FusionState(SyncConfig(max_face_age_s=0.3, max_speech_age_s=1.2, smoothing_tau_s=None))
    state.add_faces([face(1.0)], 1.0)
    state.add_speech(speech(1.0))
    state.add_faces([], 1.2)
    assert state.fuse(1.2).sources == ("face",)  # the face from 0.2 s ago still counts
    fused = state.fuse(3.5)  # face 2.5 s old, speech 2.5 s old
    assert fused.sources == () and fused.probs is None and fused.label is None
    assert "no video frame in the last 0.3 s" in fused.note and "no speech result in the last 1.2 s" in fused.note
    assert fused.to_dict()["valence"] is None  # NaN is written as null in JSON


def test_a_missing_device_is_named():
    state = FusionState(NO_SMOOTHING)
    state.add_speech(speech(1.0))
    assert state.fuse(2.0).note == "speech only: no video"
    camera_only = FusionState(NO_SMOOTHING, audio=False)
    camera_only.add_faces([face(0.1)], 0.1)
    assert camera_only.fuse(0.1).note == "face only: no audio"


def test_the_largest_face_is_fused():
    small, large = face(1.0, "sad", box=(0, 0, 40, 40)), face(1.0, "happy", box=(50, 50, 120, 120))
    assert primary_face([small, large]) is large
    assert primary_face([]) is None


def test_fused_probabilities_come_from_the_chosen_rule():
    f, s = face(2.0, "happy", mass=0.9), speech(1.0, "surprise")
    for rule in ("weighted_mean", "product_of_experts", "entropy_weighted"):
        probs, va, conf = fuse_results(f, s, SyncConfig(rule=rule))
        assert probs.shape == (NUM_CLASSES,) and va.shape == (2,)
        assert 0.0 <= conf <= 1.0
    probs, _, _ = fuse_results(f, s, SyncConfig(rule="entropy_weighted"))
    assert np.argmax(probs) == CLASS_INDEX["happy"]  # the more certain face dominates
    assert probs[CLASS_INDEX["surprise"]] > probs[CLASS_INDEX["sad"]]  # the voice still counts
    _, va, _ = fuse_results(f, None)
    assert va == pytest.approx([0.6, 0.1])


def test_smoothing_depends_on_time_not_on_the_number_of_updates():
    tau = 0.5
    one_step = smooth(np.zeros(2), np.ones(2), 0.3, tau)
    state = np.zeros(2)
    for _ in range(10):  # the same 0.3 s in ten steps
        state = smooth(state, np.ones(2), 0.03, tau)
    assert state == pytest.approx(one_step)
    assert smoothing_alpha(0.3, None) == 1.0
    assert smoothing_alpha(10.0, 0.3) == pytest.approx(1.0, abs=1e-9)  # a long gap forgets the past


def test_smoothed_stream_moves_towards_a_new_state_at_the_time_constant():
    state = FusionState(SyncConfig(smoothing_tau_s=0.5))
    for i in range(30):  # one second of happy faces at 30 fps
        t = i / 30
        state.add_faces([face(t, "happy")], t)
        state.fuse(t)
    state.add_faces([face(1.0, "sad")], 1.0)
    fused = state.fuse(1.0)
    assert fused.label == "happy"  # one sad frame does not flip the state
    for i in range(31, 75):
        t = i / 30
        state.add_faces([face(t, "sad")], t)
        fused = state.fuse(t)
    assert fused.label == "sad"
    assert math.isclose(sum(fused.probs), 1.0, rel_tol=1e-6)


def test_time_going_backwards_and_bad_config_are_clear_errors():
    state = FusionState()
    state.fuse(2.0)
    with pytest.raises(InputError, match="backwards"):
        state.fuse(1.0)
    with pytest.raises(InputError, match="Unknown fusion rule"):
        SyncConfig(rule="vote")
    with pytest.raises(InputError, match="fitted weights"):
        SyncConfig(rule="fitted")
