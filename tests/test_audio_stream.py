"""SpeechStream with the shipped speech-cnn: chunked == offline, level invariance, silence gate, any rate/channels."""
import math

import numpy as np
import pytest
import soxr

from affect_sdk.audio.features import load_audio, window_bounds
from affect_sdk.audio.stream import SpeechStream
from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES


@pytest.fixture(scope="module")
def speech(speech_flac):
    return load_audio(speech_flac)


def offline(wave, **kwargs):
    stream = SpeechStream(backend="torch", **kwargs)
    return stream.push(wave) + stream.flush()


def probs(results):
    return np.array([r.probs for r in results])


def test_chunked_equals_offline(speech):
    whole = offline(speech)
    stream, chunked, rng, i = SpeechStream(backend="torch"), [], np.random.default_rng(1), 0
    while i < len(speech):
        n = int(rng.integers(1, 4000))
        chunked += stream.push(speech[i:i + n])
        i += n
    chunked += stream.flush()
    assert [(r.start, r.end, r.t, r.voiced) for r in chunked] == [(r.start, r.end, r.t, r.voiced) for r in whole]
    np.testing.assert_allclose(probs(chunked), probs(whole), atol=1e-5)
    assert [(round(r.start * 16000), round(r.end * 16000)) for r in whole] == window_bounds(len(speech), 32000, 8000)


def test_results_are_stamped_at_window_centres_on_the_session_clock(speech):
    results = offline(speech, t0=100.0, window_s=1.0, hop_s=0.25)
    assert results[0].start == 100.0 and results[0].end == 101.0 and results[0].t == 100.5
    assert all(math.isclose(r.t, (r.start + r.end) / 2) for r in results)
    assert all(math.isclose(b.start - a.start, 0.25) for a, b in zip(results[:-2], results[1:-1]))
    speaking = [r for r in results if 100.5 <= r.start <= 101.75]  # windows inside the sentence (1 s each)
    assert all(r.voiced and len(r.probs) == len(CLASSES) and math.isclose(sum(r.probs), 1, abs_tol=1e-5)
               for r in speaking)
    assert all(r.probs is None for r in results if not r.voiced)


@pytest.mark.parametrize("gain_db", [20.0, -20.0])
def test_twenty_db_louder_or_quieter_gives_nearly_the_same_probabilities(speech, gain_db):
    scaled = np.clip(speech * 10 ** (gain_db / 20), -1, 1)
    base, other = offline(speech), offline(scaled)
    assert [r.voiced for r in other] == [r.voiced for r in base]
    np.testing.assert_allclose(probs(other), probs(base), atol=0.02)


def test_silence_and_quiet_noise_are_unvoiced_with_no_emotion():
    rng = np.random.default_rng(0)
    for wave in (np.zeros(48000, np.float32), (rng.standard_normal(48000) * 3e-4).astype(np.float32)):
        results = offline(wave)
        assert results and all(not r.voiced and r.probs is None and r.label is None for r in results)
        assert all(math.isnan(r.valence) and r.confidence == 0.0 for r in results)
        assert results[0].to_dict()["valence"] is None


def test_48k_stereo_and_8k_input(speech):
    base = offline(speech)
    stereo48 = np.stack([soxr.resample(speech, 16000, 48000)] * 2, axis=1)
    stream = SpeechStream(input_rate=48000, backend="torch")
    out48 = []
    for i in range(0, len(stereo48), 4800):  # 100 ms chunks, like a microphone
        out48 += stream.push(stereo48[i:i + 4800])
    out48 += stream.flush()
    assert [r.label for r in out48] == [r.label for r in base]
    np.testing.assert_allclose(probs(out48), probs(base), atol=0.05)
    out8 = offline(soxr.resample(speech, 16000, 8000), input_rate=8000)
    assert len(out8) == len(base) and all(r.voiced for r in out8)


def test_int16_chunks_and_short_input(speech):
    pcm = np.round(speech * 32767).astype(np.int16)
    np.testing.assert_allclose(probs(offline(pcm)), probs(offline(speech)), atol=1e-3)
    short = offline(speech[20000:21600])  # 0.1 s
    assert len(short) == 1 and short[0].end == pytest.approx(0.1)


def test_bad_chunks_and_options_raise_input_errors(speech):
    stream = SpeechStream(backend="torch")
    with pytest.raises(InputError, match="NaN"):
        stream.push(np.array([0.0, np.nan], np.float32))
    stream.flush()
    with pytest.raises(InputError, match="flushed"):
        stream.push(speech[:100])
    with pytest.raises(InputError):
        SpeechStream(window_s=0)
    with pytest.raises(InputError):
        SpeechStream(input_rate=0)


def test_a_50_ms_blip_gets_no_label(speech):
    blip = speech[20000:20800]  # 50 ms of loud speech: once read as "anger 0.36"
    results = offline(blip)
    assert len(results) == 1 and results[0].probs is None and results[0].label is None and not results[0].voiced
    padded = np.zeros(48000, np.float32)
    padded[24000:24800] = blip
    assert all(r.label is None and r.speech_s < 0.5 for r in offline(padded))


def test_narrowband_input_is_resampled_and_flagged_not_silently_degraded(speech):
    from affect_sdk.audio.augment import telephone

    assert {r.bandwidth for r in offline(speech)} == {8000}
    at8k = offline(soxr.resample(speech, 16000, 8000), input_rate=8000)
    assert {r.bandwidth for r in at8k} == {4000} and all(r.narrowband for r in at8k)
    assert {r.bandwidth for r in offline(telephone(speech, 16000))} == {4000}  # telephone band inside 16 kHz
    at11k = offline(soxr.resample(speech, 16000, 11025), input_rate=11025)
    assert {r.bandwidth for r in at11k} == {5512}
    record = at8k[1].to_dict()
    assert record["bandwidth"] == 4000 and record["speech_s"] > 0.5


def test_chunked_equals_offline_for_bandwidth_and_evidence(speech):
    wave = np.concatenate([speech, np.zeros(8000, np.float32), speech[:4000]])
    whole = offline(wave)
    stream, chunked = SpeechStream(backend="torch"), []
    for i in range(0, len(wave), 1234):
        chunked += stream.push(wave[i:i + 1234])
    chunked += stream.flush()
    assert [(r.bandwidth, r.speech_s, r.voiced) for r in chunked] == [(r.bandwidth, r.speech_s, r.voiced) for r in whole]


def test_prior_and_personal_baseline_on_a_stream(speech):
    plain, balanced = offline(speech), offline(speech, prior="balanced")
    assert not np.allclose(probs(plain), probs(balanced))
    stream = SpeechStream(backend="torch")
    offset = stream.set_baseline(speech)  # this very voice taken as the speaker at rest
    assert offset.shape == (len(CLASSES),) and abs(float(offset.mean())) < 1e-5
    rest = stream.push(speech) + stream.flush()
    assert np.mean(probs([r for r in rest if r.probs is not None]), axis=0).argmax() == CLASSES.index("neutral")
    with pytest.raises(InputError, match="prior"):
        SpeechStream(prior="uniform")
    with pytest.raises(InputError, match="0.5 s of voiced speech"):
        SpeechStream(backend="torch").set_baseline(np.zeros(32000, np.float32))
