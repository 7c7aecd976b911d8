"""The speech training loop end to end on a handful of real RAVDESS files (two steps; plumbing, not accuracy)."""
import json

import numpy as np
from safetensors.torch import load_file

from affect_sdk.audio.nets import create_speech_cnn
from affect_sdk.audio.train import (TrainConfig, add_noise_and_reverb, export_best, noise_colours, speech_span,
                                    train, warp_crop)


def test_two_steps_write_checkpoint_log_and_weights(tmp_path, shared):
    src = tmp_path / "data"
    src.mkdir()
    for actor in ("01", "15"):
        for emotion in ("01", "05", "03"):
            name = f"03-01-{emotion}-01-01-01-{actor}.flac"
            (src / name).symlink_to(shared / "data" / "ravdess_speech" / f"Actor_{actor}" / name)
    cfg = TrainConfig(data=str(src), cache=str(tmp_path / "cache.npz"), out=str(tmp_path / "run"), steps=2,
                      batch=4, eval_every=2, val_speakers=("15",), test_speakers=())
    state = train(cfg)
    assert state["step"] == 2 and state["best_step"] == 2
    record = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and 0.0 <= record["val_accuracy"] <= 1.0
    path, sha256 = export_best(cfg)
    create_speech_cnn(kind=cfg.kind, channels=cfg.channels).load_state_dict(load_file(str(path)))
    assert len(sha256) == 64
    assert train(cfg)["step"] == 2  # resumes from the last checkpoint: nothing left to do
    # the vision recipe's run-folder layout: model.json + best.safetensors, read like a shipped model
    from affect_sdk.audio.evaluate import evaluate_folder

    assert (tmp_path / "run" / "best.safetensors").is_file()
    result = evaluate_folder(src, str(tmp_path / "run"), backend="torch")
    assert result["model"] == str(tmp_path / "run") and result["n"] == 6


def test_labels_csv_speakers_with_names_train(tmp_path, shared):
    src = tmp_path / "data"
    src.mkdir()
    rows = ["path,label,speaker"]
    for actor, speaker in (("01", "s1"), ("15", "s2")):
        for emotion, label in (("01", "neutral"), ("05", "angry"), ("03", "happy")):
            name = f"03-01-{emotion}-01-01-01-{actor}.flac"
            (src / name).symlink_to(shared / "data" / "ravdess_speech" / f"Actor_{actor}" / name)
            rows.append(f"{name},{label},{speaker}")
    (src / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = TrainConfig(data=str(src), cache=str(tmp_path / "cache.npz"), out=str(tmp_path / "run"), steps=1,
                      batch=4, eval_every=1, val_speakers=("s2",), test_speakers=())
    assert train(cfg)["step"] == 1  # speakers named 's1' and 's2' (once a crash: int('s1'))


def test_mel_domain_augmentation_keeps_shape_and_finite_values():
    import torch

    from affect_sdk.audio.features import log_mel

    rng = np.random.default_rng(0)
    wave = np.zeros(48000, np.float32)
    wave[16000:32000] = rng.standard_normal(16000) * 0.1
    db = torch.from_numpy(log_mel(wave))
    start, end = speech_span(db)
    assert 90 <= start <= 105 and 190 <= end <= 205  # the loud second, in 10 ms frames
    cfg = TrainConfig(noise_p=1.0, reverb_p=1.0)
    colours, dof = noise_colours(cfg.features)
    crops = torch.stack([warp_crop(db, (start, end), 197, tempo, shift, rng)
                         for tempo, shift in ((1.0, 0.0), (1.15, 1.5), (0.85, -2.0))])
    assert crops.shape == (3, 64, 197)
    assert any(torch.equal(crops[0], db[:, s:s + 197]) for s in range(db.shape[1] - 196))  # unwarped: a plain crop
    noisy = add_noise_and_reverb(crops, cfg, colours, dof, rng)
    assert noisy.shape == crops.shape and torch.isfinite(noisy).all()
    assert (noisy >= crops - 1e-3).all()  # adding power never lowers a band


def test_merged_members_load_as_an_ensemble(tmp_path):
    import torch
    from safetensors.torch import save_file

    from affect_sdk.audio.train import merge_members

    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"m{seed}.safetensors")
        save_file(create_speech_cnn().state_dict(), str(paths[-1]))
    merge_members(paths, tmp_path / "ens.safetensors")
    ensemble = create_speech_cnn(members=2).eval()
    ensemble.load_state_dict(load_file(str(tmp_path / "ens.safetensors")))
    members = []
    for path in paths:
        member = create_speech_cnn().eval()
        member.load_state_dict(load_file(str(path)))
        members.append(member)
    x = torch.randn(3, 1, 64, 197)
    with torch.no_grad():
        mean_probs = torch.stack([torch.softmax(m(x)[0], dim=-1) for m in members]).mean(dim=0)
        logits, _ = ensemble(x)
    torch.testing.assert_close(logits.exp(), mean_probs, atol=1e-5, rtol=0)  # the ensemble is its members' mean
