"""Speech augmentation: channels on waveforms (telephone, mu-law, Opus, microphone, noise, rooms) and the fast
log-mel effects the training loop applies per crop."""
import numpy as np
import pytest
import torch

from affect_sdk.audio import augment as A
from affect_sdk.audio.features import is_narrowband, load_audio, log_mel, mel_basis


@pytest.fixture(scope="module")
def speech(speech_flac):
    return load_audio(speech_flac)


def band_power_db(wave, rate, low, high):
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / rate)
    return 10 * np.log10(spectrum[(freqs >= low) & (freqs < high)].sum() + 1e-30)


def test_telephone_keeps_300_to_3400_hz_at_the_same_rate_and_length(speech):
    phone = A.telephone(speech, 16000)
    assert phone.shape == speech.shape and phone.dtype == np.float32
    speech_band = band_power_db(phone, 16000, 300, 3400)
    assert band_power_db(phone, 16000, 4200, 8000) < speech_band - 60  # nothing above the 8 kHz line's Nyquist
    assert band_power_db(phone, 16000, 0, 150) < speech_band - 20  # the low end is cut too
    assert is_narrowband(log_mel(phone)) and not is_narrowband(log_mel(speech))


def test_mu_law_is_a_fine_quantiser_at_every_level():
    x = np.linspace(-1, 1, 10001, dtype=np.float32)
    y = A.mu_law(x)
    assert (np.abs(y - x) <= 0.025 * np.abs(x) + 1e-4).all()  # about 2 % of the level, loud or quiet
    assert len(np.unique(A.mu_law(np.random.default_rng(0).uniform(-1, 1, 100000)))) <= 256


def test_opus_round_trip_keeps_length_and_the_signal(speech):
    coded = A.opus(speech, 16000, bitrate=16000)
    assert coded.shape == speech.shape
    spectrum = lambda w: np.abs(np.fft.rfft(w))[:4000]  # noqa: E731  (codec delay: compare magnitude spectra)
    assert np.corrcoef(spectrum(coded), spectrum(speech))[0, 1] > 0.8


def test_microphone_level_noise_floor_and_clipping(speech):
    rng = np.random.default_rng(0)
    loud = A.microphone(speech, 16000, rng, low_hz=100, high_hz=6000, level_dbfs=0.0, noise_floor_db=-80)
    assert np.abs(loud).max() == 1.0  # clipped at full scale
    quiet = A.microphone(np.zeros(16000, np.float32), 16000, rng, low_hz=100, high_hz=6000, level_dbfs=-40,
                         noise_floor_db=-80)
    assert 10 * np.log10(np.mean(quiet ** 2)) == pytest.approx(-80, abs=0.5)  # silence keeps the mic's own noise
    assert 10 * np.log10(np.mean(A.set_level(speech, -26.0) ** 2)) == pytest.approx(-26.0, abs=0.01)


def test_noise_at_a_given_snr_and_a_reverberant_room(speech):
    rng = np.random.default_rng(0)
    noisy = A.add_noise(speech, 10.0, rng)
    assert 10 * np.log10(A.active_power(speech) / np.mean((noisy - speech) ** 2)) == pytest.approx(10.0, abs=0.5)
    burst = np.zeros(16000, np.float32)
    burst[:4000] = speech[20000:24000]  # a quarter second of speech, then silence
    wet = A.reverberate(burst, 16000, 0.6, rng)
    assert wet.shape == burst.shape
    after = wet[4800:6400] ** 2  # 50-150 ms after the speech stopped: the room still rings, about 20 dB down
    assert 10 * np.log10(np.mean(after) / np.mean(burst[:4000] ** 2)) > -30
    rir = A.room_impulse_response(16000, 0.6, rng)
    assert rir[0] == 1.0 and np.sum(rir[1:] ** 2) == pytest.approx(1.0, rel=1e-3)  # 0 dB direct-to-reverberant


def test_channel_copies_and_their_weights(speech):
    rng = np.random.default_rng(0)
    for kind in A.CHANNELS:
        copy = A.channel_copy(kind, speech, 16000, rng)
        assert copy.shape == speech.shape and np.isfinite(copy).all()
    assert is_narrowband(log_mel(A.channel_copy("telephone", speech, 16000, rng)))
    np.testing.assert_allclose(A.AugmentConfig(telephone_p=0.25, mic_p=0.25).channel_weights(), [0.5, 0.25, 0, 0.25])
    with pytest.raises(ValueError):
        A.channel_copy("radio", speech, 16000, rng)


def test_mel_domain_augmentation_keeps_shape_and_finite_values():
    rng = np.random.default_rng(0)
    wave = np.zeros(48000, np.float32)
    wave[16000:32000] = rng.standard_normal(16000) * 0.1
    db = torch.from_numpy(log_mel(wave))
    start, end = A.speech_span(db)
    assert 90 <= start <= 105 and 190 <= end <= 205  # the loud second, in 10 ms frames
    cfg = A.AugmentConfig(noise_p=1.0, reverb_p=1.0)
    colours, dof = A.noise_colours(mel_basis())
    crops = torch.stack([A.warp_crop(db, (start, end), 197, tempo, shift, rng)
                         for tempo, shift in ((1.0, 0.0), (1.15, 1.5), (0.85, -2.0))])
    assert crops.shape == (3, 64, 197)
    assert any(torch.equal(crops[0], db[:, s:s + 197]) for s in range(db.shape[1] - 196))  # unwarped: a plain crop
    noisy = A.add_noise_and_reverb(crops, cfg, 0.01, colours, dof, rng)
    assert noisy.shape == crops.shape and torch.isfinite(noisy).all()
    assert (noisy >= crops - 1e-3).all()  # adding power never lowers a band
    x, target = A.mixup(crops[:, None], torch.eye(3), A.AugmentConfig(mixup_p=1.0), rng)
    assert x.shape == (3, 1, 64, 197) and torch.allclose(target.sum(dim=1), torch.ones(3))


def test_ablations_switch_off_exactly_what_they_name():
    base = A.AugmentConfig(telephone_p=0.25)
    off = A.without(base, ["noise", "specaugment", "telephone"])
    assert (off.noise_p, off.freq_masks, off.time_masks, off.telephone_p) == (0.0, 0, 0, 0.0)
    untouched = {k: v for k, v in vars(base).items()
                 if k not in ("noise_p", "freq_masks", "time_masks", "telephone_p")}
    assert all(getattr(off, k) == v for k, v in untouched.items())
    assert A.without(base, []) == base
    x = torch.ones(2, 1, 64, 50)
    assert torch.equal(A.spec_augment(x, A.without(base, ["specaugment"]), np.random.default_rng(0)), x)
    with pytest.raises(ValueError, match="known: warp, noise"):
        A.without(base, ["noize"])
