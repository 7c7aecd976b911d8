"""Out-of-domain checks for face models, built from the data at hand (no test split is tuned on).

1. FER+ Test (or Valid, `--split valid`, to choose between candidates) under camera-like degradations: blur,
   sensor noise, JPEG, a low-resolution face, under- and over-exposure (fixed seeds, so every model sees the same
   pixels).
2. FER+ Test re-cropped through the live path: YuNet on the image, then affect_sdk.vision.align.crop_face.
3. The 7 real RAVDESS audio-visual clips through the live path: frame accuracy, and the clip label read over time
   (affect_sdk.vision.temporal) without and with a personal baseline. The baseline of each clip is another
   neutral clip of the same actor (never the clip itself).

    python recipes/face_ood_checks.py --models face-student,face-teacher --priors train,blend,balanced \
        --out runs/ood/face.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from affect_sdk.labels import CLASSES
from affect_sdk.vision.augment import gaussian_blur, jpeg_roundtrip
from affect_sdk.vision.data import read_ferplus
from affect_sdk.vision.evaluate import resolve_model
from affect_sdk.vision.infer import FaceAnalyzer, summarize_video

DEGRADATIONS = ("clean", "blur", "noise", "jpeg", "lowres", "dark", "bright", "mouth", "eyes")


def degrade(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """uint8 [N, 48, 48] FER+ crops -> the same crops under one camera-like degradation."""
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    g = torch.Generator().manual_seed(seed)
    if kind == "blur":
        x = gaussian_blur(x, torch.full((len(x),), 1.2))
    elif kind == "noise":
        x = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    elif kind == "jpeg":
        x = torch.stack([jpeg_roundtrip(img[0], 20)[None] for img in x])
    elif kind == "lowres":
        small = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", antialias=True)
        x = torch.nn.functional.interpolate(small, size=(48, 48), mode="bilinear")
    elif kind == "dark":
        x = x ** 2.0
    elif kind == "bright":
        x = x ** 0.5
    elif kind == "mouth":  # a mask or a hand: mid-grey from 65 % of the height down, 6 % margins left and right
        x[:, :, 31:, 3:45] = 0.5
    elif kind == "eyes":  # sunglasses: a dark band over 31-48 % of the height
        x[:, :, 15:23, 3:45] = 0.15
    return (x[:, 0] * 255).round().clamp(0, 255).byte().numpy()


def scores(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    from affect_sdk.metrics import classification_report

    report = classification_report(labels, probs)
    return {"accuracy": report["accuracy"], "balanced_accuracy": report["balanced_accuracy"]}


def clip_crops(clips: list[Path], size: int = 48) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Largest-face crops of every frame of each clip through the live path (YuNet + alignment), and their times."""
    from affect_sdk.vision.align import crop_face
    from affect_sdk.vision.detect import FaceDetector
    from affect_sdk.vision.infer import video_frames

    detector, out = FaceDetector(), {}
    for clip in clips:
        times, crops = [], []
        for _, t, frame in video_frames(clip):
            detections = detector.detect(frame)
            if detections:
                times.append(t)
                crops.append(crop_face(frame, detections[0], size))
        out[clip.name] = (np.asarray(times), np.stack(crops))
    return out


def clip_checks(analyzer: FaceAnalyzer, crops: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Frame and clip accuracy on RAVDESS clips (emotion from the file name), without and with a baseline.

    The baseline of each clip is the first other neutral clip of the same actor (all 7 clips are actor 01)."""
    from affect_sdk.labels import RAVDESS_CODES

    truth = {name: RAVDESS_CODES[name.split("-")[2]] for name in crops}
    neutral = [name for name in crops if truth[name] == "neutral"]
    out = {}
    for use_baseline in (False, True):
        frames_right = frames_all = clips_right = 0
        per_clip = {}
        for name, (times, frames) in crops.items():
            if use_baseline:
                analyzer.set_baseline(crops[next(n for n in neutral if n != name)][1])
            probs, vas = analyzer.analyze_crops(frames)
            analyzer.clear_baseline()
            frames_right += int((probs.argmax(1) == CLASSES.index(truth[name])).sum())
            frames_all += len(probs)
            label = summarize_video(times, probs, vas)["label"]
            clips_right += int(label == truth[name])
            per_clip[name] = {"truth": truth[name], "label": label}
        out["baseline" if use_baseline else "plain"] = {
            "frame_accuracy": round(frames_right / max(1, frames_all), 4),
            "clip_accuracy": f"{clips_right}/{len(crops)}", "clips": per_clip}
    return out


def recropped_ferplus(images: np.ndarray, size: int = 48) -> tuple[list[np.ndarray], float]:
    """FER+ crops re-cropped as live video is: YuNet on the image, then crop_face (the image itself when no face
    is found); returns the crops and the share of images where YuNet found a face."""
    from affect_sdk.vision.align import crop_face
    from affect_sdk.vision.detect import FaceDetector

    detector, crops, found = FaceDetector(), [], 0
    for image in images:
        bgr = np.repeat(image[:, :, None], 3, 2)
        detections = detector.detect(bgr)
        found += bool(detections)
        crops.append(crop_face(bgr, detections[0], size) if detections else image)
    return crops, found / max(1, len(images))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="face-student,face-teacher")
    parser.add_argument("--priors", default="train,blend,balanced")
    parser.add_argument("--ferplus", default="../shared/data/ferplus")
    parser.add_argument("--clips", default="../shared/data/ravdess_av_clips")
    parser.add_argument("--split", default="test", choices=("test", "valid"),
                        help="FER+ split to degrade and re-crop (valid: to choose between candidates)")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N images of the split.")
    parser.add_argument("--out", default="runs/ood/face.json")
    args = parser.parse_args(argv)
    faces = read_ferplus(args.ferplus, args.split, limit=args.limit)
    degraded = {kind: degrade(faces.images, kind) for kind in DEGRADATIONS}
    clip_files = sorted(Path(args.clips).glob("*.mp4"))
    by_size: dict[int, tuple] = {}  # crops are cut at each model's input size, as the live path cuts them
    report = {}
    for model in args.models.split(","):
        name = resolve_model(model)
        for prior in args.priors.split(","):
            analyzer = FaceAnalyzer(name, prior=prior)
            if analyzer.input_size not in by_size:
                by_size[analyzer.input_size] = (*recropped_ferplus(faces.images, analyzer.input_size),
                                                clip_crops(clip_files, analyzer.input_size))
            recropped, found, clips = by_size[analyzer.input_size]
            row = {kind: scores(faces.labels, analyzer.analyze_crops(images)[0]) for kind, images in degraded.items()}
            row["yunet_recrop"] = scores(faces.labels, analyzer.analyze_crops(recropped)[0])
            row["yunet_found"] = round(found, 4)
            row["clips"] = clip_checks(analyzer, clips) if clips else None
            report[f"{model} / {prior}"] = row
            print(model, prior, json.dumps({k: v for k, v in row.items() if k != "clips"}),
                  {k: v["clip_accuracy"] for k, v in (row["clips"] or {}).items()}, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
