"""The face models on a lent GPU, in one call of at most 10 minutes: teachers, then students, both sized to the time.

A GPU is a bonus here (about one task in ten is lent one, for 15 minutes in all), so this recipe is prepared and
smoke-tested on the CPU, and nothing depends on it. The device machine gets the checkout and nothing beside it
(64 MiB in all; the tracked files are 58 MB, 56 MB of them shipped weights), has PyTorch, OpenCV and
safetensors but not this package installed, and gives back at most 8 files of 16 MiB.

    # here, once: FER+ Train/Valid/Test as WebP q90 (mean error 1.6 grey levels) in .gpu/, 33 MB
    python recipes/gpu_vision.py pack --out .gpu
    # the call reads no shipped weights (only the registry's text): leave them here, to stay under 64 MiB
    mkdir -p /tmp/weights && mv affect_sdk/weights/*.onnx affect_sdk/weights/*.safetensors /tmp/weights/
    # device run (carry .gpu; timeout_s 600):
    PYTHONUNBUFFERED=1 python3 recipes/gpu_vision.py run --packed .gpu --out $OUT --budget-s 520
    mv /tmp/weights/* affect_sdk/weights/ && git status --short affect_sdk/weights   # nothing listed
    # here, after: run folders under runs/gpu/ for `affect eval vision`, `affect train vision-calibration`, ...
    python recipes/gpu_vision.py adopt --returned FILES_AT --out runs/gpu

`run` trains `--teachers` ResNet teachers in parallel processes (seeds 0.., FER-style and webcam augmentation
alternating), then distils the shipped student architecture from their ensemble (cached outputs with mirrors),
KD and no-KD, two seeds each, in parallel. Each phase is timed from its first epoch: when the planned epochs
would not fit the phase's share of the budget, the phase restarts once with as many epochs as fit. Selection is
on FER+ Valid; Test is scored once per run for the card, never used to choose.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fp16_run import half_copy  # this folder is on sys.path when a recipe runs as a script

REPO = Path(__file__).resolve().parents[1]
TEACHER_ARCH = {"widths": [48, 96, 192, 384], "depths": [2, 2, 2, 2], "stem_stride": 2}  # 6.3 M: fp16 < 16 MiB
SPLITS = ("train", "valid", "test")


def import_package() -> None:
    """Make `affect_sdk.vision` importable from a bare checkout (the device machine cannot pip install it): the
    subpackages live at the repository root (pyproject's package-dir), so the root joins the package's path."""
    sys.path.insert(0, str(REPO))
    import affect_sdk

    if str(REPO) not in affect_sdk.__path__:
        affect_sdk.__path__.append(str(REPO))


# ---------------------------------------------------------------- data in and out of the device machine
def pack(data: Path, out: Path, cache_dir: str, limit: int | None) -> None:
    import cv2
    import numpy as np

    from affect_sdk.vision.data import cached_ferplus

    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        faces = cached_ferplus(data, split, cache_dir)
        n = min(len(faces), limit or len(faces))
        blobs = [cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 90])[1] for img in faces.images[:n]]
        offsets = np.cumsum([0] + [len(b) for b in blobs])
        np.savez(out / f"ferplus_{split}.npz", blob=np.concatenate(blobs), offsets=offsets, soft=faces.soft[:n],
                 labels=faces.labels[:n])  # no file names: 2 MB that training never reads
        print(f"{split}: {n} images, {offsets[-1] / 1e6:.1f} MB", flush=True)


def unpack(packed: Path, cache: Path) -> None:
    """The packed splits as the uint8 npz cache that training reads (affect_sdk.vision.data.cached_ferplus)."""
    import cv2
    import numpy as np

    from affect_sdk.vision.data import PACKED_SOURCE

    cache.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        z = np.load(packed / f"ferplus_{split}.npz")
        blob, offsets = z["blob"], z["offsets"]
        images = np.stack([cv2.imdecode(blob[a:b], cv2.IMREAD_GRAYSCALE) for a, b in zip(offsets[:-1], offsets[1:])])
        names = np.asarray([f"{split}-{i:05d}" for i in range(len(images))])
        np.savez(cache / f"ferplus_{split}.npz", images=images, soft=z["soft"], labels=z["labels"], names=names,
                 source=np.asarray(PACKED_SOURCE))  # no FER+ folder on the device machine: serve any root


# ---------------------------------------------------------------- one training run, in its own process
def train_one(config: dict) -> None:
    import torch

    from affect_sdk.vision.train import TrainConfig, train

    torch.backends.cudnn.benchmark = True
    train(TrainConfig(**config), progress=False)


class Phase:
    """Training runs launched side by side, each a child process logging to its run folder."""

    def __init__(self, configs: list[dict], prepare=None) -> None:
        self.configs, self.procs = configs, []
        self.prepare = prepare or (lambda config: None)  # called on each fresh run folder before its run starts

    def start(self, epochs: int) -> None:
        self.procs = []
        for config in self.configs:
            config["epochs"] = epochs
            shutil.rmtree(config["out"], ignore_errors=True)  # a restart begins afresh: the schedule changed
            Path(config["out"]).mkdir(parents=True)
            self.prepare(config)
            with open(Path(config["out"]) / "train.log", "w") as log:  # the child keeps its own copy of the handle
                self.procs.append(subprocess.Popen([sys.executable, __file__, "one", json.dumps(config)],
                                                   stdout=log, stderr=subprocess.STDOUT, cwd=REPO))

    def first_epoch_seconds(self) -> float | None:
        """The slowest run's first epoch (None until every run has one, or once any run failed)."""
        seconds = []
        for config, proc in zip(self.configs, self.procs):
            history = _history(config["out"])
            if history:
                seconds.append(history[0]["seconds"])
            elif proc.poll() is not None:
                raise RuntimeError(f"{config['out']} failed:\n{_tail(config['out'])}")
        return max(seconds) if len(seconds) == len(self.procs) else None

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def run(self, epochs: int, budget_s: float) -> int:
        """Run to the end within about `budget_s`; returns the epochs trained."""
        started = time.time()
        self.start(epochs)
        while (seconds := self.first_epoch_seconds()) is None:
            time.sleep(1)
        startup = time.time() - started - seconds  # processes, CUDA, data and teacher outputs: paid again on restart
        left = budget_s - (time.time() - started)
        print(f"[{time.strftime('%H:%M:%S')}] {len(self.configs)} runs: {seconds:.1f} s/epoch, {startup:.0f} s to "
              f"start, {left:.0f} s left of {budget_s:.0f}", flush=True)
        if (epochs - 1) * seconds > left:
            self.stop()
            epochs = max(2, int((left - startup) / seconds))
            print(f"[{time.strftime('%H:%M:%S')}] restarting with {epochs} epochs to fit", flush=True)
            self.start(epochs)
        for config, proc in zip(self.configs, self.procs):
            if proc.wait() != 0:
                raise RuntimeError(f"{config['out']} failed:\n{_tail(config['out'])}")
        return epochs


def _history(out: str) -> list[dict]:
    state = Path(out) / "last" / "state.json"
    try:
        return json.loads(state.read_text())["history"]
    except (OSError, ValueError, KeyError):
        return []


def _tail(out: str) -> str:
    log = Path(out) / "train.log"
    return "\n".join(log.read_text().splitlines()[-15:]) if log.is_file() else "(no log)"


# ---------------------------------------------------------------- the device call
def run(args: argparse.Namespace) -> None:
    """One try is most of a session's device time: whatever fails, what was trained so far still comes back."""
    started = time.time()
    try:
        train_and_score(args)
    except BaseException as exc:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {}
        for best in sorted(Path(args.work).glob("teacher-s*/best.safetensors"))[:7]:
            half_copy(best, out / f"{best.parent.name}.safetensors")
            meta[best.parent.name] = json.loads((best.parent / "model.json").read_text())
        (out / "gpu_vision.json").write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}", "meta": meta,
                                                         "seconds": round(time.time() - started)}, indent=2))
        raise


def train_and_score(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from affect_sdk.registry import get_spec
    from affect_sdk.vision.data import cached_ferplus
    from affect_sdk.vision.teachers import load_run_model, load_teacher_ensemble
    from affect_sdk.vision.train import predict_images, teacher_outputs

    started, out = time.time(), Path(args.out)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)  # nothing of an earlier call may pass for this one's
    cache = work / "cache"
    unpack(Path(args.packed), cache)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else 'no GPU'}); "
          f"unpacked in {time.time() - started:.0f} s", flush=True)
    common = dict(role="teacher", net="resnet", cache_dir=str(cache), device=device, threads=args.threads,
                  precision="bf16", batch_size=args.batch_size, lr=args.lr, log_every=10 ** 9)
    teachers = [dict(common, out=str(work / f"teacher-s{k}"), seed=k, arch=TEACHER_ARCH,
                     input_size=args.teacher_input_size, augment_preset="fer" if k % 2 == 0 else "webcam")
                for k in range(args.teachers)]
    left = args.budget_s - (time.time() - started)
    teacher_epochs = Phase(teachers).run(args.teacher_epochs, left * args.teacher_share)
    refs = ",".join(t["out"] for t in teachers)

    train_set = cached_ferplus("unused", "train", cache)  # the cache is there: the data path is not read
    ensemble = load_teacher_ensemble(refs, dev)
    cached = teacher_outputs(ensemble, train_set.images, args.teacher_input_size, dev, True)
    student = get_spec("face-student")  # the shipped student's architecture and input size
    student_arch, student_size = student.arch, int(student.preprocess["input_size"])
    students = []
    for kd in (True, False):
        for seed in range(args.student_seeds):
            config = dict(common, role="student", out=str(work / f"student-{'kd' if kd else 'nokd'}-s{seed}"),
                          seed=seed, arch=student_arch, input_size=student_size, augment_preset="webcam",
                          teacher=refs if kd else None, teacher_input_size=args.teacher_input_size)
            students.append(config)

    def put_teacher_outputs(config: dict) -> None:  # computed once above, for every KD run and restart
        if config.get("teacher"):
            np.save(Path(config["out"]) / "teacher_outputs.npy", cached)

    left = args.budget_s - (time.time() - started) - args.reserve_s
    student_epochs = Phase(students, put_teacher_outputs).run(args.student_epochs, left)

    summary = {"device": device, "teacher_epochs": teacher_epochs, "student_epochs": student_epochs,
               "teacher_arch": TEACHER_ARCH, "student_arch": student_arch, "runs": {}}
    sets = {split: cached_ferplus("unused", split, cache) for split in ("valid", "test")}
    for config in teachers + students:
        model, meta = load_run_model(Path(config["out"]), dev)
        row = {"seed": config["seed"], "augment": config["augment_preset"], "kd": bool(config.get("teacher")),
               "valid_by_epoch": [round(h["valid_accuracy"], 4) for h in _history(config["out"])]}
        for split, faces in sets.items():
            probs, _ = predict_images(model, faces.images, meta["input_size"], dev)
            row[split] = float((probs.argmax(1) == faces.labels).mean())
        summary["runs"][Path(config["out"]).name] = row
    for split, faces in sets.items():
        logits = teacher_outputs(ensemble, faces.images, args.teacher_input_size, dev, mirrors=False)[:, 0, :8]
        summary[f"ensemble_{split}"] = float((logits.argmax(1) == faces.labels).mean())
    _return_files(summary, teachers, students, out)
    summary["seconds"] = round(time.time() - started)
    (out / "gpu_vision.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), flush=True)


def _return_files(summary: dict, teachers: list[dict], students: list[dict], out: Path) -> None:
    """At most 8 files come back: the teachers and the best KD and no-KD students in fp16, this summary."""
    out.mkdir(parents=True, exist_ok=True)
    for config in teachers:
        half_copy(Path(config["out"]) / "best.safetensors", out / f"{Path(config['out']).name}.safetensors")
    for kd in (True, False):
        runs = [c for c in students if bool(c.get("teacher")) == kd]
        best = max(runs, key=lambda c: summary["runs"][Path(c["out"]).name]["valid"])
        # fp16 too: the shipped student's architecture (r64, 4.9 M parameters) is 19.6 MB in fp32
        half_copy(Path(best["out"]) / "best.safetensors", out / f"{Path(best['out']).name}.safetensors")
    summary["meta"] = {Path(c["out"]).name: json.loads((Path(c["out"]) / "model.json").read_text())
                       for c in teachers + students}


def adopt(returned: Path, out: Path) -> None:
    """The returned weights as run folders (model.json + fp32 best.safetensors) that every `affect` command takes."""
    from safetensors.torch import load_file, save_file

    summary = json.loads((returned / "gpu_vision.json").read_text())
    for path in sorted(returned.glob("*.safetensors")):
        run_dir = out / path.stem
        run_dir.mkdir(parents=True, exist_ok=True)
        weights = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        save_file(weights, str(run_dir / "best.safetensors"))
        (run_dir / "model.json").write_text(json.dumps(summary["meta"][path.stem], indent=2))
        valid = summary.get("runs", {}).get(path.stem, {}).get("valid")  # none after a failed call
        print(f"{run_dir}: valid {valid if valid is None else round(valid, 4)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="FER+ as WebP for the device call (here)")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ferplus")
    p.add_argument("--out", type=Path, default=REPO / ".gpu")
    p.add_argument("--cache-dir", default=str(REPO / ".cache"))
    p.add_argument("--limit", type=int, default=None, help="first N images of each split (smoke tests)")
    r = sub.add_parser("run", help="train on the device machine")
    r.add_argument("--packed", type=Path, default=REPO / ".gpu")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--work", type=Path, default=Path("/tmp/affect-gpu"))
    r.add_argument("--budget-s", type=float, default=520.0, help="the whole call, unpacking and scoring included")
    r.add_argument("--reserve-s", type=float, default=45.0, help="kept for scoring and returning files")
    r.add_argument("--teacher-share", type=float, default=0.55, help="of the budget, for the teachers")
    r.add_argument("--teachers", type=int, default=4)
    r.add_argument("--teacher-epochs", type=int, default=60)
    r.add_argument("--teacher-input-size", type=int, default=64)
    r.add_argument("--student-epochs", type=int, default=60)
    r.add_argument("--student-seeds", type=int, default=2)
    r.add_argument("--batch-size", type=int, default=256)
    r.add_argument("--lr", type=float, default=3e-3)
    r.add_argument("--threads", type=int, default=3, help="CPU threads per training process")
    o = sub.add_parser("one", help="(internal) one training run from a JSON config")
    o.add_argument("config")
    a = sub.add_parser("adopt", help="returned weights -> run folders (here)")
    a.add_argument("--returned", type=Path, required=True)
    a.add_argument("--out", type=Path, default=REPO / "runs" / "gpu")
    args = parser.parse_args()
    import_package()
    if args.command == "pack":
        pack(args.data, args.out, args.cache_dir, args.limit)
    elif args.command == "run":
        run(args)
    elif args.command == "one":
        train_one(json.loads(args.config))
    else:
        adopt(args.returned, args.out)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "3")
    main()
