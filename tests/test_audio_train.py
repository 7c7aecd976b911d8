"""The speech training loop end to end on a handful of real RAVDESS files (two steps; plumbing, not accuracy)."""
import json

import numpy as np
from safetensors.torch import load_file

from affect_sdk.audio.nets import create_speech_cnn
from affect_sdk.audio.train import TrainConfig, export_best, train


def ravdess_subset(tmp_path, shared, emotions: tuple[str, ...]):
    """A folder of RAVDESS files (actors 01 and 15, statement 1, the given emotion codes), linked, not copied."""
    src = tmp_path / "data"
    src.mkdir()
    for actor in ("01", "15"):
        for emotion in emotions:
            name = f"03-01-{emotion}-01-01-01-{actor}.flac"
            (src / name).symlink_to(shared / "data" / "ravdess_speech" / f"Actor_{actor}" / name)
    return src


def test_two_steps_write_checkpoint_log_and_weights(tmp_path, shared):
    src = ravdess_subset(tmp_path, shared, ("01", "05", "03"))
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


def test_refit_on_every_speaker_keeps_the_last_step(tmp_path, shared):
    src = ravdess_subset(tmp_path, shared, ("01", "05"))
    cfg = TrainConfig(data=str(src), cache=str(tmp_path / "cache.npz"), out=str(tmp_path / "run"), steps=2,
                      batch=4, eval_every=1, val_speakers=(), test_speakers=(), select="last")
    state = train(cfg)
    assert state["step"] == 2 and state["best_step"] == 2  # no validation to choose by: the final step is kept
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["val_score"] for r in records] == [1.0, 2.0]


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


def test_fine_tuning_with_telephone_copies_masks_narrowband_crops(tmp_path, shared):
    import dataclasses

    import torch

    from affect_sdk.audio.augment import AugmentConfig
    from affect_sdk.audio.data import build_cache
    from affect_sdk.audio.features import band_keep, mel_basis
    from affect_sdk.audio.augment import noise_colours
    from affect_sdk.audio.train import channel_mels, initial_weights, training_batch

    src = ravdess_subset(tmp_path, shared, ("01", "05"))
    cfg = TrainConfig(data=str(src), cache=str(tmp_path / "cache.npz"), out=str(tmp_path / "run"), steps=1,
                      batch=4, eval_every=1, val_speakers=("15",), test_speakers=(), init="speech-cnn",
                      init_member=1, select="clean+telephone", augment=AugmentConfig(telephone_p=1.0))
    cfg.features = dataclasses.replace(cfg.features, narrowband_mask=True)
    cache = build_cache(src, tmp_path / "cache.npz")
    copies = channel_mels(cache, np.array([0, 1]), cfg, seed=0)
    assert list(copies) == ["telephone"] and all(copies["telephone"][2].values())  # every copy is narrowband
    colours, dof = noise_colours(mel_basis(cfg.features))
    x = training_batch(np.array([0, 1, 1, 0]), copies, 197, cfg, colours, dof, np.random.default_rng(0))
    above = ~band_keep(np.array(True), cfg.features)
    assert x.shape == (4, 1, 64, 197) and (x[:, 0, above] == 0).all()  # masked as at inference
    member = initial_weights("speech-cnn", 1)
    assert not any(k.startswith("members.") for k in member)
    state = train(cfg)  # warm start from member 1 of the shipped ensemble, one step, validated clean and by phone
    record = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert state["step"] == 1 and {"val_accuracy", "val_telephone_accuracy", "val_score"} <= set(record)
    assert json.loads((tmp_path / "run" / "model.json").read_text())["preprocess"]["narrowband_mask"] is True
    torch.testing.assert_close(initial_weights(str(tmp_path / "run" / "best.safetensors"))["features.0.weight"],
                               load_file(str(tmp_path / "run" / "best.safetensors"))["features.0.weight"])


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


def test_a_weight_average_is_validated_exported_and_resumed(tmp_path, shared):
    import torch

    src = ravdess_subset(tmp_path, shared, ("01", "05"))

    def config(run: str, steps: int) -> TrainConfig:
        return TrainConfig(data=str(src), cache=str(tmp_path / "cache.npz"), out=str(tmp_path / run), steps=steps,
                           batch=4, eval_every=1, val_speakers=("15",), test_speakers=(), ema_decay=0.5)

    train(config("whole", 2))
    train(config("split", 1))
    best, average, raw = (load_file(str(tmp_path / "split" / name))
                          for name in ("best.safetensors", "last/ema.safetensors", "last/model.safetensors"))
    assert all(torch.equal(best[k], average[k]) for k in best)  # one step: the best export is the average
    assert any(not torch.equal(best[k], raw[k]) for k in best if best[k].dtype.is_floating_point)
    train(config("split", 2))  # resumes with the average it had: one more step of it
    resumed, raw = (load_file(str(tmp_path / "split" / name)) for name in ("last/ema.safetensors",
                                                                           "last/model.safetensors"))
    assert all(torch.allclose(resumed[k], 0.5 * average[k] + 0.5 * raw[k], atol=1e-6)
               for k in resumed if resumed[k].dtype.is_floating_point)
    record = json.loads((tmp_path / "whole" / "log.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= record["val_accuracy_raw"] <= 1.0


def test_a_weight_average_decay_of_one_is_refused_before_any_data_is_read(tmp_path):
    from typer.testing import CliRunner

    from affect_sdk.cli import app

    result = CliRunner().invoke(app, ["train", "audio", "--data", str(tmp_path / "none"), "--out",
                                      str(tmp_path / "run"), "--ema", "1"])
    assert result.exit_code == 2 and "--ema must lie in [0, 1)" in result.output  # not "no such data folder"
    assert not (tmp_path / "run").exists() and "Traceback" not in result.output


def test_an_unknown_ablation_is_one_sentence_before_any_data_is_read(tmp_path):
    from typer.testing import CliRunner

    from affect_sdk.cli import app

    result = CliRunner().invoke(app, ["train", "audio", "--data", str(tmp_path / "none"), "--out",
                                      str(tmp_path / "run"), "--without", "noise,echo"])
    assert result.exit_code == 2 and "unknown augmentation echo" in result.output
    assert not (tmp_path / "run").exists() and "Traceback" not in result.output
