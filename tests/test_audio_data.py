"""Corpus readers (RAVDESS, EmoDB, labels.csv), layout detection, speaker selection and duplicate removal."""
import numpy as np
import pytest
import soundfile as sf

from affect_sdk.audio.data import (build_cache, content_hash, drop_duplicates, load_cache, read_dataset,
                                   read_emodb, read_labels_csv, read_ravdess, select_speakers)
from affect_sdk.audio.features import load_audio
from affect_sdk.errors import InputError


@pytest.fixture(scope="module")
def ravdess(shared):
    return shared / "data" / "ravdess_speech"


def test_ravdess_names_calm_is_neutral(ravdess):
    items = read_ravdess(ravdess / "Actor_01")
    assert len(items) == 60 and {u.speaker for u in items} == {"01"}
    by_name = {u.path.stem: u.label for u in items}
    assert by_name["03-01-02-01-01-01-01"] == "neutral"  # calm
    assert by_name["03-01-05-02-01-01-01"] == "anger"
    assert by_name["03-01-08-02-01-01-01"] == "surprise"


def test_emodb_names_boredom_left_out(tmp_path):
    for name in ("03a01Fa", "03a01Wa", "08b02La", "16a05Tc", "09a01Nc", "11b03Ab", "13a04Ed"):
        sf.write(tmp_path / f"{name}.wav", np.zeros(1600, np.float32), 16000)
    items = read_emodb(tmp_path)
    assert {u.path.stem: u.label for u in items} == {
        "03a01Fa": "happy", "03a01Wa": "anger", "16a05Tc": "sad", "09a01Nc": "neutral", "11b03Ab": "fear",
        "13a04Ed": "disgust"}
    assert {u.speaker for u in items} == {"03", "16", "09", "11", "13"}
    assert read_dataset(tmp_path)[0] == "emodb"


def test_labels_csv_folder(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav"):
        sf.write(tmp_path / name, np.zeros(1600, np.float32), 16000)
    (tmp_path / "labels.csv").write_text("path,label,speaker\na.wav,Angry,s1\nb.wav,boredom,s1\nc.wav,calm,s2\n")
    layout, items = read_dataset(tmp_path)
    assert layout == "labels.csv"
    assert [(u.path.name, u.label, u.speaker) for u in items] == [("a.wav", "anger", "s1"), ("c.wav", "neutral", "s2")]
    (tmp_path / "labels.csv").write_text("path,label\na.wav,grumpy\n")
    with pytest.raises(InputError, match="line 2"):
        read_labels_csv(tmp_path)


def test_unknown_layout_and_missing_folder(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"")
    with pytest.raises(InputError, match="No labelled audio"):
        read_dataset(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "nope")


def test_select_speakers_by_number(ravdess):
    items = read_ravdess(ravdess / "Actor_17") + read_ravdess(ravdess / "Actor_18")
    assert {u.speaker for u in select_speakers(items, ["17"])} == {"17"}
    assert len(select_speakers(items, None)) == 120


def test_known_ravdess_duplicate_is_found(ravdess):
    names = ["03-01-03-01-02-01-07", "03-01-03-01-02-02-07", "03-01-03-01-01-01-07"]
    items = [u for u in read_ravdess(ravdess / "Actor_07") if u.path.stem in names]
    items.sort(key=lambda u: names.index(u.path.stem))
    keep, dropped = drop_duplicates(items, [content_hash(load_audio(u.path)) for u in items])
    assert keep == [0, 2] and dropped == [(0, 1)]


def test_cache_round_trip(tmp_path, ravdess):
    src = tmp_path / "data"
    src.mkdir()
    for name in ("03-01-03-01-02-01-07", "03-01-03-01-02-02-07", "03-01-05-01-01-01-07"):
        (src / f"{name}.flac").symlink_to(ravdess / "Actor_07" / f"{name}.flac")
    cache = build_cache(src, tmp_path / "c.npz")
    again = load_cache(tmp_path / "c.npz")
    assert len(again) == 2 and again.dropped.tolist() == ["03-01-03-01-02-02-07"]
    assert np.abs(again.wave(1) - load_audio(src / "03-01-05-01-01-01-07.flac")).max() < 1e-4
    assert cache.labels.tolist() == again.labels.tolist()
