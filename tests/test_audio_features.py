"""Audio front end: reading any file as mono 16 kHz, level-invariant features, voice activity, window schedule."""
import numpy as np
import pytest
import soundfile as sf
import soxr

from affect_sdk.audio.features import (FeatureConfig, active_fraction, is_voiced, load_audio, log_mel,
                                       model_input, to_mono, window_bounds)
from affect_sdk.errors import InputError


@pytest.fixture(scope="module")
def speech(speech_flac):
    return load_audio(speech_flac)


def test_load_flac_is_16k_mono_float(speech, speech_flac):
    raw, rate = sf.read(speech_flac, dtype="float32")
    assert rate == 16000 and speech.dtype == np.float32 and speech.ndim == 1
    np.testing.assert_array_equal(speech, raw)


def test_load_48k_stereo_and_8k_files_resample_to_16k(tmp_path, speech):
    stereo48 = np.stack([soxr.resample(speech, 16000, 48000)] * 2, axis=1)
    sf.write(tmp_path / "s48.wav", stereo48, 48000, subtype="FLOAT")
    back = load_audio(tmp_path / "s48.wav")
    assert abs(len(back) - len(speech)) <= 1
    n = min(len(back), len(speech))
    assert np.corrcoef(back[:n], speech[:n])[0, 1] > 0.99
    sf.write(tmp_path / "s8.wav", soxr.resample(speech, 16000, 8000), 8000)
    assert abs(len(load_audio(tmp_path / "s8.wav")) - len(speech)) <= 2


def test_load_mp4_audio_track_with_pyav(shared):
    wave = load_audio(shared / "data" / "ravdess_av_clips" / "01-01-08-01-01-02-01.mp4")
    assert wave.dtype == np.float32 and 2.5 < len(wave) / 16000 < 4.5 and np.abs(wave).max() > 0.01


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"this is not audio at all, just text\n" * 20, "Cannot read"),
])
def test_bad_files_raise_one_input_error(tmp_path, content, match):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        load_audio(path)


def test_missing_and_truncated_files(tmp_path, speech_flac):
    with pytest.raises(InputError, match="does not exist"):
        load_audio(tmp_path / "nope.flac")
    head = tmp_path / "head.flac"
    head.write_bytes(speech_flac.read_bytes()[:40])  # the header is cut: nothing decodable
    with pytest.raises(InputError):
        load_audio(head)
    half = tmp_path / "half.wav"
    sf.write(half, load_audio(speech_flac), 16000)
    whole = load_audio(half)
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])  # data cut: what is there is read
    cut = load_audio(half)
    assert 0.4 * len(whole) < len(cut) < 0.6 * len(whole)
    np.testing.assert_allclose(cut, whole[:len(cut)], atol=1e-4)


def test_nan_and_inf_samples_raise(tmp_path):
    x = np.zeros(16000, np.float32)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        load_audio(tmp_path / "nan.wav")
    with pytest.raises(InputError, match="NaN or infinite"):
        to_mono(np.array([0.0, np.inf]))


def test_to_mono_scales_integers_and_mixes_channels():
    np.testing.assert_allclose(to_mono(np.array([-32768, 0, 16384], np.int16)), [-1.0, 0.0, 0.5])
    np.testing.assert_allclose(to_mono(np.array([[1.0, 0.0], [0.5, 0.5]])), [0.5, 0.5])
    with pytest.raises(InputError):
        to_mono(np.zeros((2, 2, 2)))


def test_log_mel_shape_and_level_invariance(speech):
    cfg = FeatureConfig()
    window = speech[8000:40000]
    assert log_mel(window, cfg).shape == (cfg.n_mels, 1 + (32000 - cfg.n_fft) // cfg.hop_length)
    loud, quiet = model_input(window * 10.0), model_input(window * 0.1)  # +-20 dB
    np.testing.assert_allclose(loud, model_input(window), atol=1e-4, rtol=0)
    np.testing.assert_allclose(quiet, model_input(window), atol=1e-4, rtol=0)


def test_voice_activity(speech):
    rng = np.random.default_rng(0)
    window = speech[8000:40000]
    assert is_voiced(window) and is_voiced(window * 0.1) and is_voiced(np.clip(window * 100, -1, 1))  # quiet, clipped
    assert not is_voiced(np.zeros(32000))  # digital silence
    assert not is_voiced(rng.standard_normal(32000) * 1e-4)  # quiet hiss
    assert not is_voiced(rng.standard_normal(32000) * 0.05)  # loud but stationary noise
    assert not is_voiced(np.cumsum(rng.standard_normal(32000)) * 1e-4)  # low-frequency rumble
    assert active_fraction(np.zeros(10)) == 0.0


def test_speech_in_a_noisy_room_is_voiced_and_the_noise_alone_is_not(speech):
    from affect_sdk.audio.augment import add_noise
    from affect_sdk.audio.features import speech_seconds

    window = speech[8000:40000]
    for seed in range(3):
        noisy = add_noise(window, 10.0, np.random.default_rng(seed))  # pink noise 10 dB below the speech
        assert is_voiced(noisy) and speech_seconds(noisy) >= 0.5
        assert not is_voiced(noisy - window)  # the same noise without the speech


def test_window_bounds():
    assert window_bounds(0, 100, 25) == []
    assert window_bounds(60, 100, 25) == [(0, 60)]
    assert window_bounds(150, 100, 25) == [(0, 100), (25, 125), (50, 150)]
    assert window_bounds(165, 100, 25) == [(0, 100), (25, 125), (50, 150), (65, 165)]  # tail >= hop/2
    assert window_bounds(160, 100, 25) == [(0, 100), (25, 125), (50, 150)]


def test_telephone_band_is_detected_at_8_and_16_khz_and_silence_is_not(speech):
    from affect_sdk.audio.augment import telephone
    from affect_sdk.audio.features import bandwidth_hz, is_narrowband

    windows = np.stack([speech[:32000], telephone(speech, 16000)[:32000], np.zeros(32000, np.float32)])
    narrow = is_narrowband(log_mel(windows))
    assert narrow.tolist() == [False, True, False]
    assert [bandwidth_hz(n, 16000) for n in narrow] == [8000, 4000, 8000]
    assert bandwidth_hz(False, 8000) == 4000 and bandwidth_hz(False, 11025) == 5512
    assert bandwidth_hz(False, 48000) == 8000 and bandwidth_hz(True, 48000) == 4000


def test_narrowband_windows_are_normalised_over_their_band_and_masked_above_it(speech):
    from affect_sdk.audio.augment import telephone
    from affect_sdk.audio.features import band_keep, normalize_level, window_features

    phone = telephone(speech, 16000)[:32000]
    plain, narrow = window_features(phone, FeatureConfig())
    masked, _ = window_features(phone, FeatureConfig(narrowband_mask=True))
    keep = band_keep(narrow, FeatureConfig())
    assert narrow and 40 <= keep.sum() < 64 and keep[:keep.sum()].all()  # the low bands, up to 4 kHz
    assert (masked[0, ~keep] == 0).all() and abs(masked[0, keep].mean()) < 1e-5  # mean 0 over the band it has
    assert not np.allclose(plain, masked)
    np.testing.assert_allclose(masked[0, keep], normalize_level(log_mel(phone)[keep]), atol=1e-5)
    wide, _ = window_features(speech[:32000], FeatureConfig(narrowband_mask=True))  # wideband: as before
    np.testing.assert_allclose(wide, model_input(speech[:32000]), atol=1e-6)


def test_minimum_evidence_half_a_second_of_speech(speech):
    from affect_sdk.audio.features import VadConfig, speech_seconds

    blip = np.zeros(32000, np.float32)
    blip[16000:16800] = speech[20000:20800]  # 50 ms of speech in 2 s of silence
    assert speech_seconds(blip) <= 0.1 and not is_voiced(blip)
    assert not is_voiced(speech[20000:20800])  # a 50 ms clip on its own
    assert not is_voiced(speech[20000:24800])  # 0.3 s, even all of it speech
    assert speech_seconds(speech[16000:48000]) > 0.5 and is_voiced(speech[16000:48000])
    assert is_voiced(speech[20000:24800], VadConfig(min_speech_s=0.1))  # the threshold is a parameter
    with pytest.raises(InputError):
        VadConfig(min_speech_s=-1)


def test_per_band_normalisation_removes_a_microphones_fixed_colouring(speech):
    from scipy.signal import lfilter

    window = speech[8000:40000]
    coloured = lfilter([1.0, -0.9], [1.0], window).astype(np.float32)  # a pre-emphasis-like tilt, as a cheap mic's
    banded = FeatureConfig(band_norm=True)
    plain = [model_input(w) for w in (window, coloured)]
    per_band = [model_input(w, banded) for w in (window, coloured)]
    assert np.abs(per_band[0].mean(axis=-1)).max() < 1e-5  # every band is centred on its own mean
    gap_plain, gap_band = (float(np.abs(a - b).mean()) for a, b in (plain, per_band))
    assert gap_band < 0.5 * gap_plain  # the tilt is mostly gone (floor and frame edges keep a little of it)
    np.testing.assert_allclose(model_input(window * 10.0, banded), per_band[0], atol=1e-4, rtol=0)  # +20 dB


def test_voice_activity_is_the_gate_and_the_evidence_in_one_pass(speech):
    from affect_sdk.audio.features import speech_seconds, voice_activity

    rng = np.random.default_rng(3)
    for window in (speech[16000:48000], speech[20000:20800], np.zeros(32000), rng.standard_normal(32000) * 0.05,
                   np.zeros(0)):
        activity = voice_activity(window)
        assert activity == (is_voiced(window), speech_seconds(window))
    assert voice_activity(speech[16000:48000]).voiced and voice_activity(np.zeros(0)) == (False, 0.0)
