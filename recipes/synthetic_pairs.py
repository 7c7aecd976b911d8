"""Recipe: write synthetic audio-visual clips (a face image moving gently in a 640x480 video + real speech of the
same class) with a labels.csv, for fusion evaluation when no paired recordings exist.

    .venv/bin/python recipes/synthetic_pairs.py --faces ../shared/data/ferplus --face-split FER2013Test \
        --speech ../shared/data/ravdess_speech --speakers 17,18,19,20 --per-class 10 --out runs/fusion/synth_test

Independent pairing overstates fusion gains (face and voice errors are independent here, unlike in a real
recording), so the folder carries a SYNTHETIC_PAIRS.md marker and every report made on it says "synthetic pairs"
in its title. Within a set each face image and each speech recording is used once; `--disjoint-from` refuses
to reuse any face or speaker of an existing set. Contempt has no speech class in RAVDESS/EmoDB: by default it is
skipped; `--contempt neutral` pairs contempt faces with neutral speech (the clip keeps the contempt label).
Faces: a FER+ layout (majority vote of label.csv, rows where unknown/not-a-face win are skipped) or an image
folder with one sub-folder per class. Speech: RAVDESS or EmoDB file names, read with affect_sdk.audio.features.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES, EMODB_CODES, RAVDESS_CODES, canonical, ferplus_votes_to_canonical

MARKER = "SYNTHETIC_PAIRS.md"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg"}


def read_faces(root: Path, split: str) -> dict[str, list[Path]]:
    """Class -> face image paths, from a FER+ layout (root/split/label.csv) or class sub-folders."""
    folder = root / split if (root / split / "label.csv").is_file() else root
    out: dict[str, list[Path]] = {c: [] for c in CLASSES}
    if (folder / "label.csv").is_file():
        with open(folder / "label.csv", newline="") as fh:
            for row in csv.reader(fh):
                votes = np.array([float(v) for v in row[2:12]])
                if votes[8:].max() >= ferplus_votes_to_canonical(votes).max():
                    continue  # unknown or not-a-face wins
                cls = CLASSES[int(np.argmax(ferplus_votes_to_canonical(votes)))]
                out[cls].append(folder / row[0])
        return out
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        cls = canonical(sub.name)
        if cls is not None:
            out[cls] += sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return out


def speech_label(path: Path) -> tuple[str | None, str]:
    """(class, speaker) from a RAVDESS (03-01-05-...-12) or EmoDB (03a01Wa) file name."""
    parts = path.stem.split("-")
    if len(parts) == 7:
        return RAVDESS_CODES.get(parts[2]), parts[6]
    if len(path.stem) >= 7 and path.stem[5] in EMODB_CODES:
        return EMODB_CODES[path.stem[5]], path.stem[:2]
    return None, ""


def read_speech(root: Path, speakers: set[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {c: [] for c in CLASSES}
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        cls, speaker = speech_label(path)
        if cls is not None and speaker.lstrip("0") in speakers:
            out[cls].append(path)
    return out


def face_frames(face_gray: np.ndarray, n_frames: int, fps: float, rng: np.random.Generator,
                size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """[n, H, W, 3] uint8: the face upscaled (~200 px) on a soft background, drifting and breathing a little."""
    import cv2

    w, h = size
    side = int(rng.integers(180, 240))
    face = cv2.resize(face_gray, (side, side), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w]
    background = (110 + 40 * xx / w + 20 * yy / h + rng.normal(0, 2, (h, w))).clip(0, 255).astype(np.uint8)
    phase = rng.uniform(0, 2 * np.pi, 3)
    cx, cy = w / 2 + rng.uniform(-60, 60), h / 2 + rng.uniform(-30, 30)
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    for i in range(n_frames):
        t = i / fps
        scale = 1.0 + 0.04 * np.sin(2 * np.pi * 0.4 * t + phase[2])
        s = int(side * scale)
        patch = cv2.resize(face, (s, s), interpolation=cv2.INTER_LINEAR)
        x0 = int(cx + 15 * np.sin(2 * np.pi * 0.3 * t + phase[0]) - s / 2)
        y0 = int(cy + 8 * np.sin(2 * np.pi * 0.5 * t + phase[1]) - s / 2)
        img = background.copy()
        img[y0:y0 + s, x0:x0 + s] = patch
        frames[i] = np.repeat(img[..., None], 3, axis=2)
    return frames


def write_clip(path: Path, frames: np.ndarray, fps: int, wave: np.ndarray, rate: int) -> None:
    """H.264 video + mono AAC audio at `rate` Hz in one mp4, with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.options = {"preset": "veryfast", "crf": "26"}
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for img in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = np.clip(wave, -1, 1).astype(np.float32)
        frame_size = 1024
        for start in range(0, len(samples), frame_size):
            chunk = samples[start:start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)


def used_in(folder: Path) -> tuple[set[str], set[str]]:
    """Face files and speakers already used by an existing synthetic set."""
    faces, speakers = set(), set()
    with open(folder / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            faces.add(row["face"])
            speakers.add(row["speaker"])
    return faces, speakers


def generate(faces_root: Path, face_split: str, speech_root: Path, speakers: list[str], out: Path, *,
             per_class: int = 10, fps: int = 15, rate: int = 16000, contempt: str = "skip", seed: int = 0,
             disjoint_from: list[Path] = ()) -> list[dict]:
    import cv2

    from affect_sdk.audio.features import load_audio

    rng = np.random.default_rng(seed)
    speaker_set = {s.lstrip("0") for s in speakers}
    banned_faces, banned_speakers = set(), set()
    for other in disjoint_from:
        f, s = used_in(other)
        banned_faces |= f
        banned_speakers |= s
    if speaker_set & banned_speakers:
        raise InputError(f"Speakers {sorted(speaker_set & banned_speakers)} are already used by "
                         f"{', '.join(map(str, disjoint_from))}; synthetic splits must not share speakers.")
    faces = read_faces(faces_root, face_split)
    speech = read_speech(speech_root, speaker_set)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for cls in CLASSES:
        speech_cls = "neutral" if cls == "contempt" and contempt == "neutral" else cls
        pool_faces = [p for p in faces[cls] if str(p.resolve()) not in banned_faces]
        pool_speech = [p for p in speech[speech_cls] if not any(r["speech"] == str(p.resolve()) for r in rows)]
        n = min(per_class, len(pool_faces), len(pool_speech))
        if cls == "contempt" and contempt == "skip" or n == 0:
            print(f"{cls}: skipped ({'no speech class in the speech corpus' if not pool_speech else 'no faces'})")
            continue
        for face_path, speech_path in zip(rng.choice(pool_faces, n, replace=False),
                                          rng.choice(pool_speech, n, replace=False)):
            wave = load_audio(speech_path, sample_rate=rate)
            gray = cv2.imread(str(face_path), cv2.IMREAD_GRAYSCALE)
            frames = face_frames(gray, int(np.ceil(len(wave) / rate * fps)), fps, rng)
            name = f"{cls}_{len(rows):04d}.mp4"
            write_clip(out / name, frames, fps, wave, rate)
            rows.append({"path": name, "label": cls, "face": str(Path(face_path).resolve()),
                         "speech": str(Path(speech_path).resolve()),
                         "speaker": speech_label(Path(speech_path))[1].lstrip("0")})
        print(f"{cls}: {n} clips" + (" (neutral speech)" if speech_cls != cls else ""))
    if not rows:
        raise InputError(f"No synthetic pairs could be made from {faces_root} and {speech_root}.")
    with open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / MARKER).write_text(
        "# synthetic pairs\n\nThese clips pair a face image with an independent speech recording of the same "
        "class; they are not real audio-visual recordings and overstate fusion gains.\n\n```json\n"
        + json.dumps({"faces": str(faces_root), "face_split": face_split, "speech": str(speech_root),
                      "speakers": sorted(speaker_set, key=int), "per_class": per_class, "fps": fps,
                      "audio_rate": rate, "contempt": contempt, "seed": seed, "clips": len(rows)}, indent=2)
        + "\n```\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="FER+ root or image folder with class folders")
    parser.add_argument("--face-split", default="FER2013Test")
    parser.add_argument("--speech", type=Path, required=True, help="RAVDESS or EmoDB folder")
    parser.add_argument("--speakers", required=True, help="comma-separated speaker ids, e.g. 17,18,19,20")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--rate", type=int, default=16000, choices=[16000, 48000])
    parser.add_argument("--contempt", default="skip", choices=["skip", "neutral"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--disjoint-from", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    rows = generate(args.faces, args.face_split, args.speech, args.speakers.split(","), args.out,
                    per_class=args.per_class, fps=args.fps, rate=args.rate, contempt=args.contempt,
                    seed=args.seed, disjoint_from=args.disjoint_from)
    print(f"wrote {len(rows)} synthetic pairs to {args.out} (labels.csv, {MARKER})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
