"""Teacher and student training: a tiny real run on FER+, resuming, distilling from own and foreign teachers."""
import json

import torch
from typer.testing import CliRunner

from affect_sdk.cli import app
from affect_sdk.vision.nets import create_teacher
from affect_sdk.vision.teachers import load_teacher
from affect_sdk.vision.train import TrainConfig, lr_at, train

runner = CliRunner()
TINY_TEACHER = {"widths": [8, 8, 16, 16], "depths": [1, 1, 1, 1], "stem_stride": 2}
TINY_STUDENT = {"width": 0.25, "last_channels": 32}


def _tiny(role, out, data, **kw):
    # the teacher is a ResNet, the student a MobileNetV2: both nets train (the shipped student is a ResNet)
    arch, net = (TINY_TEACHER, "resnet") if role == "teacher" else (TINY_STUDENT, "mobilenetv2")
    return TrainConfig(role=role, data=str(data), out=str(out), arch=arch, net=net, limit=64, batch_size=32,
                       epochs=1, cache_dir=None, log_every=1000, **kw)


def test_schedule_warms_up_then_decays_to_zero():
    assert lr_at(0, 100, 1.0, 0.1) == 0.1 and lr_at(9, 100, 1.0, 0.1) == 1.0
    assert lr_at(100, 100, 1.0, 0.1) == 0.0


def test_teacher_trains_resumes_and_a_student_distils_from_it(shared, tmp_path):
    ferplus = shared / "data/ferplus"
    state = train(_tiny("teacher", tmp_path / "teacher", ferplus), progress=False)
    assert state["epoch"] == 1 and (tmp_path / "teacher/best.safetensors").is_file()
    longer = _tiny("teacher", tmp_path / "teacher", ferplus)
    longer.epochs = 2
    resumed = train(longer, progress=False)  # same folder: picks up after epoch 1
    assert resumed["epoch"] == 2 and len(resumed["history"]) == 2
    # cutmix mixes the cached teacher outputs with the images and labels
    student = train(_tiny("student", tmp_path / "student", ferplus, teacher=str(tmp_path / "teacher"),
                          mix="cutmix"), progress=False)
    assert student["epoch"] == 1 and (tmp_path / "student/teacher_outputs.npy").is_file()


def test_same_seed_gives_the_same_weights(shared, tmp_path):
    from safetensors.torch import load_file

    ferplus = shared / "data/ferplus"
    for run in ("a", "b"):
        train(_tiny("student", tmp_path / run, ferplus), progress=False)
    a, b = (load_file(str(tmp_path / run / "best.safetensors")) for run in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_torchscript_teacher_can_be_brought_along(tmp_path):
    scripted = torch.jit.script(create_teacher(**TINY_TEACHER).eval())
    scripted.save(str(tmp_path / "teacher.pt"))
    logits, va = load_teacher(str(tmp_path / "teacher.pt"), torch.device("cpu"))(torch.rand(2, 1, 48, 48))
    assert logits.shape == (2, 8) and va.shape == (2, 2)


def test_cli_student_run_without_kd_ends_with_a_json_line(shared, tmp_path):
    result = runner.invoke(app, ["train", "vision-student", "--data", str(shared / "data/ferplus"), "--out",
                                 str(tmp_path / "s"), "--limit", "32", "--batch-size", "16", "--epochs", "1",
                                 "--net", "mobilenetv2", "--arch", json.dumps(TINY_STUDENT), "--cache-dir", ""])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["epochs"] == 1
    refused = runner.invoke(app, ["train", "vision-student", "--out", str(tmp_path / "t"), "--mix", "swirl"])
    assert refused.exit_code == 2 and "--mix 'swirl'" in refused.output and not (tmp_path / "t").exists()


def test_the_command_line_defaults_are_the_recipes_defaults():
    import dataclasses
    import inspect

    from affect_sdk.audio.train import TrainConfig as AudioConfig
    from affect_sdk.cli.train import train_audio, train_vision_student, train_vision_teacher
    from affect_sdk.vision.distill import DistillConfig

    def option_defaults(command):  # comma-separated lists (speakers) read as the tuples the recipe holds
        # typer.Option(default, ...) holds it in .default; an Annotated option's default is the parameter's own
        defaults = {name: getattr(p.default, "default", p.default)
                    for name, p in inspect.signature(command).parameters.items()}
        return {name: tuple(v.split(",")) if isinstance(v, str) and "," in v else v for name, v in defaults.items()}

    role_specific = {"data", "out", "arch", "net", "init", "teacher", "device", "limit", "quiet", "cache", "augment"}
    for command, config in ((train_vision_teacher, TrainConfig()), (train_vision_student, TrainConfig()),
                            (train_vision_student, DistillConfig()), (train_audio, AudioConfig())):
        fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        shared = {name: value for name, value in option_defaults(command).items()
                  if name in fields and name not in role_specific}
        assert shared and shared == {name: fields[name] for name in shared}, command.__name__
    assert option_defaults(train_vision_teacher)["augment"] == TrainConfig().augment_preset


def test_weight_average_is_the_decayed_mean_and_copies_counters():
    from affect_sdk.training import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    torch.nn.init.constant_(net[0].weight, 1.0)
    average = WeightAverage(net, 0.9)
    torch.nn.init.constant_(net[0].weight, 3.0)
    net.train()(torch.randn(4, 2))  # one batch: BatchNorm's counter becomes 1
    average.update(net)
    assert torch.allclose(average.model[0].weight, torch.full((1, 2), 0.9 * 1.0 + 0.1 * 3.0))
    assert int(average.model[1].num_batches_tracked) == 1 and not average.model[0].weight.requires_grad


def test_an_averaged_run_exports_the_average_and_resumes_as_if_uninterrupted(shared, tmp_path):
    from safetensors.torch import load_file

    ferplus = shared / "data/ferplus"
    whole = _tiny("student", tmp_path / "whole", ferplus, ema_decay=0.9)
    whole.epochs = 2
    state = train(whole, progress=False)
    assert all("valid_accuracy_raw" in epoch for epoch in state["history"])
    train(_tiny("student", tmp_path / "split", ferplus, ema_decay=0.9), progress=False)  # epoch 1, then resume
    best, average, raw = (load_file(str(tmp_path / "split" / name))
                          for name in ("best.safetensors", "last/ema.safetensors", "last/model.safetensors"))
    assert all(torch.equal(best[k], average[k]) for k in best)  # one epoch: its average is the best export
    assert any(not torch.equal(best[k], raw[k]) for k in best if best[k].dtype.is_floating_point)
    split = _tiny("student", tmp_path / "split", ferplus, ema_decay=0.9)
    split.epochs = 2
    train(split, progress=False)
    a, b = (load_file(str(tmp_path / run / "last/ema.safetensors")) for run in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_weight_average_decay_outside_0_1_is_one_line(tmp_path):
    refused = runner.invoke(app, ["train", "vision-student", "--out", str(tmp_path / "t"), "--ema", "1.5"])
    assert refused.exit_code == 2 and "--ema must lie in [0, 1)" in refused.output
    assert not (tmp_path / "t").exists() and "Traceback" not in refused.output
    refused = runner.invoke(app, ["train", "vision-student", "--out", str(tmp_path / "o"), "--occlude", "-0.1"])
    assert refused.exit_code == 2 and "--occlude must be a share" in refused.output and not (tmp_path / "o").exists()


def test_a_checkpoint_without_an_average_resumes_one_from_its_weights(tmp_path):
    from affect_sdk.training import WeightAverage, load_checkpoint, save_checkpoint

    net = torch.nn.Linear(2, 1)
    save_checkpoint(tmp_path, net, None, {"epoch": 1})  # written by a run without --ema
    fresh = torch.nn.Linear(2, 1)
    average = WeightAverage(fresh, 0.9)
    assert load_checkpoint(tmp_path, fresh, None, average) == {"epoch": 1}
    assert torch.equal(average.model.weight, net.weight) and torch.equal(fresh.weight, net.weight)


def test_lowres_sets_the_share_of_small_faces_over_the_preset_and_refuses_a_share_outside_0_1(tmp_path):
    from affect_sdk.vision.train import TrainConfig

    assert TrainConfig(augment_preset="webcam").resolved_augment.lowres_prob == 0.15  # the preset's, by default
    assert TrainConfig(augment_preset="webcam", lowres_p=0.3).resolved_augment.lowres_prob == 0.3
    assert TrainConfig(augment_preset="fer", lowres_p=0.0).resolved_augment.lowres_prob == 0.0
    refused = runner.invoke(app, ["train", "vision-student", "--out", str(tmp_path / "l"), "--lowres", "1.2"])
    assert refused.exit_code == 2 and "--lowres must be a share" in refused.output
    assert not (tmp_path / "l").exists() and "Traceback" not in refused.output
    mixed = runner.invoke(app, ["train", "vision-student", "--out", str(tmp_path / "m"), "--mix", "mixup",
                                "--mix-p", "2"])  # before, a share above 1 silently meant "every image"
    assert mixed.exit_code == 2 and "--mix-p must be a share" in mixed.output and not (tmp_path / "m").exists()
