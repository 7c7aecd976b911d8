"""Speech-emotion corpora: RAVDESS and Berlin EmoDB file-name readers, a labels.csv folder, duplicate removal,
speaker splits and a waveform cache for training.

Every reader returns `Utterance(path, label, speaker)` with the label already canonical (affect_sdk.labels):
RAVDESS calm counts as neutral; EmoDB boredom has no canonical class and is left out.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASS_INDEX, EMODB_CODES, RAVDESS_CODES, canonical

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".aiff", ".aif", ".opus"}
# modality-channel-emotion-intensity-statement-repetition-actor, e.g. 03-01-05-02-01-01-12
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
# speaker (2 digits) + text code (letter + 2 digits) + emotion letter + version letter, e.g. 03a01Fa
EMODB_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")


@dataclass(frozen=True)
class Utterance:
    path: Path
    label: str  # canonical class name
    speaker: str | None  # None when the data does not say


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def read_ravdess(root: str | Path) -> list[Utterance]:
    """RAVDESS files under root (any depth); speaker = actor number; calm -> neutral. Song files are kept too."""
    out = []
    for path in _audio_files(Path(root)):
        m = RAVDESS_NAME.match(path.stem)
        if m and m.group(3) in RAVDESS_CODES:
            out.append(Utterance(path, RAVDESS_CODES[m.group(3)], m.group(7)))
    return out


def read_emodb(root: str | Path) -> list[Utterance]:
    """Berlin EmoDB files (emotion letter at position 6, e.g. 03a01Fa.wav); speaker = first two digits.

    Boredom (L) has no canonical class and is left out.
    """
    out = []
    for path in _audio_files(Path(root)):
        m = EMODB_NAME.match(path.stem)
        if m and EMODB_CODES[m.group(3)] is not None:
            out.append(Utterance(path, EMODB_CODES[m.group(3)], m.group(1)))
    return out


def read_labels_csv(root: str | Path) -> list[Utterance]:
    """A folder with labels.csv (header `path,label`, optional `speaker`); paths relative to the folder.

    Labels may be canonical names or common synonyms; knowingly excluded ones (boredom) are left out.
    """
    root = Path(root)
    table = root / "labels.csv"
    try:
        with table.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"Cannot read {table}: {exc}.") from exc
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise InputError(f"{table} must have a header with columns 'path' and 'label' and at least one row.")
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            label = canonical(row["label"] or "")
        except InputError as exc:
            raise InputError(f"{table} line {i}: {exc}") from None
        if label is None:
            continue
        out.append(Utterance(root / (row["path"] or "").strip(), label, (row.get("speaker") or "").strip() or None))
    return out


def read_dataset(root: str | Path) -> tuple[str, list[Utterance]]:
    """Detect the layout of a folder ('labels.csv', 'ravdess' or 'emodb') and read it."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"Data folder {root} does not exist or is not a folder.")
    if (root / "labels.csv").is_file():
        items = read_labels_csv(root)
        layout = "labels.csv"
    else:
        ravdess, emodb = read_ravdess(root), read_emodb(root)
        layout, items = ("ravdess", ravdess) if len(ravdess) >= len(emodb) else ("emodb", emodb)
    if not items:
        raise InputError(
            f"No labelled audio found in {root}; expected RAVDESS names (03-01-05-01-01-01-12.wav), "
            "EmoDB names (03a01Fa.wav) or a labels.csv with columns path,label."
        )
    return layout, items


def select_speakers(items: Iterable[Utterance], speakers: Sequence[str] | None) -> list[Utterance]:
    """Keep utterances whose speaker is in `speakers` (compared as integers when both are numbers)."""
    items = list(items)
    if not speakers:
        return items
    wanted = {speaker_key(s) for s in speakers}
    return [u for u in items if u.speaker is not None and speaker_key(u.speaker) in wanted]


def speaker_key(s: str) -> str:
    """The one way speakers are compared: '07' and '7' are one speaker, names like 's1' stay as they are."""
    s = str(s).strip()
    return str(int(s)) if s.isdigit() else s


def content_hash(wave: np.ndarray) -> str:
    """Hash of the decoded samples (16-bit quantised), so re-encoded copies of one recording collide."""
    digest = hashlib.sha1()
    update_content_hash(digest, wave)
    return digest.hexdigest()


def update_content_hash(digest: "hashlib._Hash", wave: np.ndarray) -> None:
    """Feed samples to a content_hash digest piece by piece (a file streamed in blocks hashes the same)."""
    q = np.clip(np.round(np.asarray(wave, np.float64) * 32767.0), -32768, 32767).astype("<i2")
    digest.update(q.tobytes())


def drop_duplicates(items: Sequence[Utterance], hashes: Sequence[str]) -> tuple[list[int], list[tuple[int, int]]]:
    """Indices to keep (first of each identical recording) and the (kept, dropped) pairs."""
    seen: dict[str, int] = {}
    keep, dropped = [], []
    for i, h in enumerate(hashes):
        if h in seen:
            dropped.append((seen[h], i))
        else:
            seen[h] = i
            keep.append(i)
    return keep, dropped


# ---------------------------------------------------------------- training cache
@dataclass
class WaveCache:
    """All utterances of a corpus at the model rate, concatenated (int16) with offsets; duplicates removed."""

    audio: np.ndarray  # int16 [total]
    offsets: np.ndarray  # int64 [n + 1]
    labels: np.ndarray  # int64 [n] canonical class index
    speakers: np.ndarray  # str [n]
    names: np.ndarray  # str [n]
    dropped: np.ndarray  # str [k] names removed as duplicates

    def wave(self, i: int) -> np.ndarray:
        return self.audio[self.offsets[i]:self.offsets[i + 1]].astype(np.float32) / 32768.0

    def __len__(self) -> int:
        return len(self.labels)


def build_cache(root: str | Path, cache_file: str | Path, sample_rate: int = 16000) -> WaveCache:
    """Decode every utterance once (load_audio), drop duplicates by content hash, save an .npz, return it."""
    from affect_sdk.audio.features import load_audio

    _, items = read_dataset(root)
    waves = [load_audio(u.path, sample_rate) for u in items]
    keep, dropped = drop_duplicates(items, [content_hash(w) for w in waves])
    q = [np.clip(np.round(waves[i] * 32768.0), -32768, 32767).astype(np.int16) for i in keep]
    cache = WaveCache(
        audio=np.concatenate(q),
        offsets=np.concatenate([[0], np.cumsum([len(x) for x in q])]).astype(np.int64),
        labels=np.array([CLASS_INDEX[items[i].label] for i in keep], np.int64),
        speakers=np.array([items[i].speaker or "" for i in keep]),
        names=np.array([items[i].path.stem for i in keep]),
        dropped=np.array([items[j].path.stem for _, j in dropped]),
    )
    cache_file = Path(cache_file)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    # whole or absent: a per-process temporary file renamed over the target (torchrun ranks may build it at once)
    partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as fh:
        np.savez(fh, **cache.__dict__)
    os.replace(partial, cache_file)
    return cache


def load_cache(cache_file: str | Path) -> WaveCache:
    with np.load(cache_file, allow_pickle=False) as z:
        return WaveCache(**{k: z[k] for k in WaveCache.__dataclass_fields__})
