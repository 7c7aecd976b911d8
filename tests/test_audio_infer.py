"""SpeechAnalyzer on real files: window timelines, utterance-level classification, bad files."""
import numpy as np
import pytest
import soundfile as sf

from affect_sdk.audio.features import load_audio
from affect_sdk.audio.infer import SpeechAnalyzer, utterance_probs
from affect_sdk.errors import AffectError
from affect_sdk.labels import CLASSES, va_from_probs


@pytest.fixture(scope="module")
def analyzer():
    return SpeechAnalyzer(backend="torch")


def test_file_timeline_and_utterance_result(analyzer, speech_flac):
    timeline = analyzer.analyze_file(speech_flac, t0=5.0)
    assert len(timeline) >= 3 and timeline[0].start == 5.0
    probs, va = analyzer.classify_file(speech_flac)
    assert probs.shape == (len(CLASSES),) and va.shape == (2,)
    np.testing.assert_allclose(probs, utterance_probs(timeline), atol=1e-6)
    np.testing.assert_allclose(va, va_from_probs(probs), atol=1e-6)
    np.testing.assert_allclose(analyzer.classify_wave(load_audio(speech_flac))[0], probs, atol=1e-5)


def test_video_file_audio_track(analyzer, shared):
    clip = shared / "data" / "ravdess_av_clips" / "01-01-08-01-01-02-01.mp4"
    timeline = analyzer.analyze_file(clip)
    assert timeline and any(r.voiced for r in timeline)


def test_silent_file_still_classifies_and_is_unvoiced(analyzer, tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.int16), 16000)
    assert all(not r.voiced for r in analyzer.analyze_file(tmp_path / "silence.wav"))
    probs, _ = analyzer.classify_file(tmp_path / "silence.wav")  # falls back to all windows
    assert np.isclose(probs.sum(), 1, atol=1e-4)


@pytest.mark.parametrize("content", [b"", b"RIFF....WAVEfmt garbage", b"plain text, not audio\n" * 40])
def test_bad_files_give_one_affect_error(analyzer, tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AffectError):
        analyzer.analyze_file(path)


def test_header_only_wav_has_no_samples(analyzer, tmp_path):
    sf.write(tmp_path / "none.wav", np.zeros(0, np.int16), 16000)
    with pytest.raises(AffectError, match="no audio samples"):
        analyzer.analyze_file(tmp_path / "none.wav")


def test_too_little_speech_is_marked_low_evidence(analyzer, speech_flac):
    wave = load_audio(speech_flac)
    blip = analyzer.classify_wave(wave[20000:20800])  # 50 ms
    assert blip.low_evidence and blip.voiced_windows == 0
    full = analyzer.classify_wave(wave)
    assert not full.low_evidence and full.voiced_windows > 0 and full.bandwidth == 8000


def test_voice_baseline_reads_the_resting_voice_as_neutral_and_clears(analyzer, shared):
    actor = shared / "data" / "ravdess_speech" / "Actor_17"
    angry = actor / "03-01-05-02-01-01-17.flac"
    before = analyzer.classify_file(angry)
    analyzer.set_baseline(angry)  # an absurd "rest": the speaker's anger becomes their baseline
    assert analyzer.baseline is not None and analyzer.classify_file(angry).label == "neutral"
    assert analyzer.stream().calibration.offset is analyzer.baseline  # new streams carry it
    analyzer.clear_baseline()
    assert analyzer.baseline is None
    np.testing.assert_allclose(analyzer.classify_file(angry)[0], before[0], atol=1e-6)


def test_prior_option_and_a_wrong_one(shared):
    from affect_sdk.errors import InputError

    balanced = SpeechAnalyzer(backend="torch", prior="balanced")
    assert balanced.prior_mode == "balanced" and balanced.calibration.temperature > 0
    with pytest.raises(InputError, match="prior must be one of"):
        SpeechAnalyzer(backend="torch", prior="flat")
