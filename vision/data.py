"""Face data: robust image loading, the FER+ reader (votes -> soft labels), an image-folder reader, a uint8 cache
and batch augmentation suitable for faces (runs on the training device)."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from affect_sdk.checks import MAX_PIXELS, pixel_limit  # noqa: F401 (MAX_PIXELS: importable from here as before)
from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES, FERPLUS_COLUMNS, canonical, ferplus_votes_to_canonical, va_from_probs

if TYPE_CHECKING:  # torch only where tensors are made (training, the torch backend), never to read an image
    import torch

FERPLUS_SPLITS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}


@dataclass
class FaceSet:
    """Face images of one split held in memory, with soft labels (class distribution), majority labels and V/A.

    `va` holds per-image (valence, arousal) labels when the dataset provides them, else None; `va_targets`
    falls back to targets derived from the soft labels through the class -> V/A table (affect_sdk.labels).
    """

    images: np.ndarray  # [N, H, W] uint8 grayscale (or [N, H, W, 3] BGR for folders of colour crops)
    soft: np.ndarray  # [N, 8] float32, rows sum to 1
    labels: np.ndarray  # [N] int64 majority class
    names: list[str]
    va: np.ndarray | None = None  # [N, 2] float32 real V/A labels, when the dataset has them

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def va_targets(self) -> np.ndarray:
        """Real V/A labels where present (NaN rows fall back), else derived from the soft labels."""
        derived = va_from_probs(self.soft)
        return derived if self.va is None else np.where(np.isnan(self.va), derived, self.va).astype(np.float32)

    @property
    def va_derived(self) -> bool:
        return self.va is None


# ---------------------------------------------------------------- images
def load_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 grayscale [H, W] or BGR [H, W, 3].

    Handles RGBA (alpha dropped), 16-bit (scaled to 8-bit) and grayscale files; raises InputError naming the file
    for missing, empty, truncated, undecodable, too small or too large images. The size is read from the header
    before decoding, against `max_pixels` (default: $AFFECT_MAX_PIXELS, else MAX_PIXELS), so a small file that
    declares a huge image never takes gigabytes to decode.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"Cannot read image file {path}: {exc.strerror or exc}.") from None
    if data.size == 0:
        raise InputError(f"Image file {path} is empty (0 bytes); expected a PNG/JPEG image.")
    check_image_header(path, data.tobytes(), max_pixels)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"Image file {path} could not be decoded (truncated or not an image); "
                         f"expected a PNG/JPEG/BMP image.")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 2:  # gray + alpha
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InputError(f"Image file {path} has an unsupported layout {image.shape}; expected gray, BGR or BGRA.")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    h, w = image.shape[:2]
    if min(h, w) < 8:
        raise InputError(f"Image file {path} is only {w}x{h} pixels; a face needs at least 8x8.")
    return np.ascontiguousarray(image)


def check_image_header(path: str | Path, data: bytes, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) from the file's header, refused when over the pixel limit or not a known image format."""
    from affect_sdk.vision.image_header import image_size

    size = image_size(data)
    if size is None:
        raise InputError(f"Image file {path} is not a PNG/JPEG/BMP/GIF/WebP/TIFF/PNM image, or its header is "
                         f"damaged.")
    w, h = size
    limit = pixel_limit(max_pixels)
    if w * h > limit:
        raise InputError(f"Image file {path} is {w}x{h} pixels, more than the {limit:,} this tool accepts "
                         f"(AFFECT_MAX_PIXELS); downscale it first.")
    return w, h


# ---------------------------------------------------------------- FER+
def ferplus_split_dir(root: str | Path, split: str) -> Path:
    root = Path(root)
    if split not in FERPLUS_SPLITS:
        raise InputError(f"Unknown FER+ split {split!r}; expected one of {', '.join(FERPLUS_SPLITS)}.")
    folder = root / FERPLUS_SPLITS[split]
    if not (folder / "label.csv").is_file():
        raise InputError(f"{folder} has no label.csv; expected the FER+ layout (FER2013Train/Valid/Test).")
    return folder


def is_ferplus(root: str | Path) -> bool:
    return any((Path(root) / d / "label.csv").is_file() for d in FERPLUS_SPLITS.values())


def read_ferplus_votes(folder: Path) -> tuple[list[str], np.ndarray]:
    """Image names and their 10 vote counts (FERPLUS_COLUMNS order) from a FER+ label.csv."""
    names, votes = [], []
    table = folder / "label.csv"
    try:
        with open(table, newline="", encoding="utf-8") as fh:
            for line, row in enumerate(csv.reader(fh), 1):
                if len(row) != 2 + len(FERPLUS_COLUMNS):
                    raise InputError(f"{table} line {line} has {len(row)} columns; expected 12.")
                counts = [v.strip() for v in row[2:]]
                if not all(v.isdigit() and v.isascii() for v in counts):
                    raise InputError(f"{table} line {line}: votes must be whole numbers of 0 or more; got "
                                     f"{', '.join(counts)}.")
                names.append(row[0])
                votes.append([int(v) for v in counts])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"Cannot read {table}: {exc}.") from None
    return names, np.asarray(votes, dtype=np.int64).reshape(-1, len(FERPLUS_COLUMNS))


def ferplus_keep(votes10: np.ndarray) -> np.ndarray:
    """FER+ leaves out images whose majority vote is unknown or not-a-face (ties go to the emotion)."""
    return (np.argmax(votes10, axis=1) < 8) & (ferplus_votes_to_canonical(votes10).sum(axis=1) > 0)


def read_ferplus(root: str | Path, split: str, *, limit: int | None = None) -> FaceSet:
    """One FER+ split: 48x48 grayscale images, soft labels from the 8 emotion votes, majority labels.

    Unreadable images are skipped (FER+ as shipped has none); `limit` keeps the first N usable images.
    """
    folder = ferplus_split_dir(root, split)
    names, votes10 = read_ferplus_votes(folder)
    keep = np.flatnonzero(ferplus_keep(votes10))
    if limit is not None:
        keep = keep[:limit]
    images, kept = [], []
    for i in keep:
        image = cv2.imread(str(folder / names[i]), cv2.IMREAD_GRAYSCALE)
        if image is None:
            continue
        if image.shape != (48, 48):
            image = cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA)
        images.append(image)
        kept.append(i)
    votes = ferplus_votes_to_canonical(votes10[kept]).astype(np.float32)
    soft = votes / votes.sum(axis=1, keepdims=True)
    kept_names = [names[i] for i in kept]
    return FaceSet(np.stack(images), soft, np.argmax(votes, axis=1).astype(np.int64), kept_names,
                   read_va_labels(folder / "va.csv", kept_names))


def read_va_labels(path: Path, names: list[str]) -> np.ndarray | None:
    """Optional per-image V/A labels: a CSV with columns image,valence,arousal (values in -1..1).

    FER+ has none; a dataset that has them puts this file beside its label.csv and training uses them instead of
    targets derived from the class distribution (images missing from the file fall back to derived targets).
    """
    if not path.is_file():
        return None
    table: dict[str, tuple[float, float]] = {}
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), 2):
            try:
                table[row["image"]] = (float(row["valence"]), float(row["arousal"]))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{path} line {line} is not image,valence,arousal with numbers.") from None
    return np.asarray([table.get(n, (np.nan, np.nan)) for n in names], dtype=np.float32)


PACKED_SOURCE = ""  # a cache written without the FER+ folder (recipes/gpu_vision.py unpack): it serves any root


def cached_ferplus(root: str | Path, split: str, cache_dir: str | Path | None) -> FaceSet:
    """read_ferplus through a uint8 npz cache (decoding 28k PNGs each run is slow on a small CPU).

    The cache records the folder it was read from and serves only that folder: a missing or other `root` is read
    afresh (so a wrong --data is one InputError, not the cached copy of another folder). Caches written before the
    folder was recorded are served only while `root` is a folder."""
    if cache_dir is None:
        return read_ferplus(root, split)
    cache = Path(cache_dir) / f"ferplus_{split}.npz"
    source = str(Path(root).resolve())
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        recorded = str(z["source"]) if "source" in z.files else None
        if recorded == PACKED_SOURCE or recorded == source or (recorded is None and Path(root).is_dir()):
            return FaceSet(z["images"], z["soft"], z["labels"], [str(n) for n in z["names"]],
                           z["va"] if "va" in z.files else None)
    data = read_ferplus(root, split)
    cache.parent.mkdir(parents=True, exist_ok=True)
    # per-process temp name: torchrun ranks may build the same cache at once; os.replace keeps it atomic
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
    extra = {} if data.va is None else {"va": data.va}
    np.savez(tmp, images=data.images, soft=data.soft, labels=data.labels, names=np.asarray(data.names),
             source=np.asarray(source), **extra)
    tmp.replace(cache)
    return data


# ---------------------------------------------------------------- image folders
def read_image_folder(root: str | Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """A folder with one subfolder per class (names through the label synonyms, e.g. 'angry', 'happiness').

    Returns image paths, their class indices and the folders that were knowingly excluded (e.g. 'boredom').
    An unknown folder name raises InputError naming that folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; expected the FER+ layout or one subfolder per class.")
    paths, labels, excluded = [], [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            name = canonical(sub.name)
        except InputError:
            raise InputError(f"Folder {sub} is not a known emotion class; expected one of {', '.join(CLASSES)} "
                             f"or a common synonym (e.g. 'angry', 'happiness').") from None
        if name is None:
            excluded.append(sub.name)
            continue
        for f in sorted(sub.rglob("*")):
            if f.is_file() and not f.name.startswith("."):
                paths.append(f)
                labels.append(CLASSES.index(name))
    if not paths and not excluded:
        raise InputError(f"{root} holds no class subfolders with images; expected e.g. {root}/happy/001.png.")
    return paths, np.asarray(labels, dtype=np.int64), excluded


def to_input(images: np.ndarray | torch.Tensor, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [N, H, W] grayscale batch -> float [N, 1, size, size] in [0, 1] (the nets' input convention)."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(images).to(device).float().div_(255).unsqueeze(1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x
