"""The synthetic-pairing recipe writes real, readable clips and refuses to reuse speakers across splits."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from affect_sdk.errors import InputError

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "synthetic_pairs.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("synthetic_pairs", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_clip_is_640x480_video_with_moving_face_and_speech(recipe, shared, tmp_path):
    import av
    import cv2

    from affect_sdk.audio.features import load_audio

    speech = next((shared / "data/ravdess_speech/Actor_17").glob("03-01-03-*.flac"))
    face_file = sorted((shared / "data/ferplus/FER2013Test").glob("*.png"))[0]
    wave = load_audio(speech)[:16000]
    frames = recipe.face_frames(cv2.imread(str(face_file), cv2.IMREAD_GRAYSCALE), 15, 15, np.random.default_rng(0))
    assert frames.shape == (15, 480, 640, 3) and not np.array_equal(frames[0], frames[7])  # mild motion
    recipe.write_clip(tmp_path / "clip.mp4", frames, 15, wave, 16000)
    with av.open(str(tmp_path / "clip.mp4")) as container:
        assert container.streams.audio[0].rate == 16000
        assert sum(1 for _ in container.decode(video=0)) == 15
    assert abs(len(load_audio(tmp_path / "clip.mp4")) - len(wave)) < 2048


def test_speakers_are_never_reused_across_splits(recipe, shared, tmp_path):
    earlier = tmp_path / "val"
    earlier.mkdir()
    (earlier / "labels.csv").write_text("path,label,face,speech,speaker\nx.mp4,happy,/f.png,/s.flac,17\n")
    with pytest.raises(InputError, match="already used"):
        recipe.generate(shared / "data/ferplus", "FER2013Test", shared / "data/ravdess_speech", ["17", "18"],
                        tmp_path / "test", disjoint_from=[earlier])
    assert recipe.speech_label(Path("03-01-05-01-01-01-17.flac")) == ("anger", "17")
    assert recipe.speech_label(Path("03a01Wa.wav")) == ("anger", "03")
