"""Results serialise to plain JSON; the JSON Lines writer flushes every record."""
import dataclasses
import json

import pytest

from affect_sdk.labels import CLASSES
from affect_sdk.results import FaceAffect, FusedAffect, JsonlWriter, SpeechAffect

PROBS = (0.1, 0.6, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05)


def test_face_result_to_dict_is_json():
    face = FaceAffect(t=1.25, probs=PROBS, valence=0.5, arousal=0.1, confidence=0.6, box=(10, 20, 30, 40))
    d = json.loads(json.dumps(face.to_dict()))
    assert d["kind"] == "face" and d["label"] == "happy" and d["t"] == 1.25
    assert list(d["probs"]) == list(CLASSES) and d["box"] == [10, 20, 30, 40]


def test_unvoiced_speech_has_no_label():
    speech = SpeechAffect(t=3.0, probs=None, valence=float("nan"), arousal=float("nan"), confidence=0.0,
                          voiced=False, start=2.0, end=4.0)
    d = speech.to_dict()
    assert d["label"] is None and d["probs"] is None and d["valence"] is None and d["voiced"] is False
    json.dumps(d, allow_nan=False)


def test_results_are_frozen():
    fused = FusedAffect(t=0.0, probs=PROBS, valence=0, arousal=0, confidence=1, sources=("face",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fused.t = 1.0


def test_jsonl_writer_flushes_each_record(tmp_path):
    path = tmp_path / "out" / "session.jsonl"
    writer = JsonlWriter(path)
    writer.write(FusedAffect(t=0.5, probs=PROBS, valence=0.1, arousal=0.2, confidence=0.7, sources=("face",)))
    # readable before close: a crash now loses nothing written so far
    assert json.loads(path.read_text().splitlines()[0])["sources"] == ["face"]
    writer.write({"kind": "summary"})
    writer.close()
    assert len(path.read_text().splitlines()) == 2
