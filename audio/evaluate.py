"""Utterance-level accuracy of a speech model on a labelled folder (RAVDESS or EmoDB names, or labels.csv)."""
from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from affect_sdk.audio.data import read_dataset, select_speakers, update_content_hash
from affect_sdk.audio.features import MODEL_RATE, Resampler, iter_audio_blocks, to_mono_checked
from affect_sdk.audio.infer import SpeechAnalyzer, utterance_probs
from affect_sdk.errors import InputError
from affect_sdk.labels import CLASS_INDEX, NUM_CLASSES
from affect_sdk.metrics import classification_report
from affect_sdk.registry import resolve_model
from affect_sdk.results import SpeechAffect


def windows_and_hash(analyzer: SpeechAnalyzer, path: Path) -> tuple[list[SpeechAffect], str]:
    """A file's window results and its content hash in one streamed pass: memory does not grow with duration
    (a 20-minute file once went into one 3.1 GB batch)."""
    rate, blocks = iter_audio_blocks(path)
    resample, stream, digest = Resampler(rate, MODEL_RATE), analyzer.stream(MODEL_RATE), hashlib.sha1()
    results: list[SpeechAffect] = []
    for block in itertools.chain(blocks, [None]):  # None: the end, where the resampler drains
        wave = resample(np.zeros(0, np.float32), last=True) if block is None else resample(to_mono_checked(block, path))
        update_content_hash(digest, wave)
        results += stream.push(wave)
    results += stream.flush()
    if stream.samples_seen == 0:
        raise InputError(f"Audio file {path} contains no samples.")
    return results, digest.hexdigest()


def evaluate_folder(data: str | Path, model: str | None = None, speakers: Sequence[str] | None = None,
                    limit: int | None = None, backend: str | None = None, device: str | None = None,
                    progress: Callable[[int, int], None] | None = None, prior: str | None = None) -> dict:
    """Score utterance-level predictions on a folder; duplicate recordings (same samples) are counted once.
    `prior`: the output prior (SpeechAnalyzer); the report has accuracy, balanced accuracy, macro-F1 and ECE."""
    layout, items = read_dataset(data)
    items = select_speakers(items, speakers)
    if limit:
        items = items[:limit]
    if not items:
        raise InputError(f"No utterances of speakers {', '.join(speakers or [])} in {data}.")
    analyzer = SpeechAnalyzer(resolve_model(model), backend=backend, device=device, prior=prior)
    seen: set[str] = set()
    y_true, y_probs, dropped, speakers_seen, low_evidence = [], [], [], set(), 0
    for k, item in enumerate(items):
        results, digest = windows_and_hash(analyzer, item.path)
        if digest in seen:
            dropped.append(item.path.name)
            continue
        seen.add(digest)
        probs = utterance_probs(results)
        if probs is None:  # no voiced window: score all windows, as classify_file does
            low_evidence += 1
            probs = utterance_probs(list(analyzer.iter_file(item.path, gate=False)), voiced_only=False)
        y_true.append(CLASS_INDEX[item.label])
        y_probs.append(probs)
        speakers_seen.add(item.speaker or "")
        if progress:
            progress(k + 1, len(items))
    result = classification_report(np.asarray(y_true, int), np.asarray(y_probs).reshape(-1, NUM_CLASSES))
    result.update(model=analyzer.model, layout=layout, data=str(data), backend=analyzer.runner.backend,
                  prior=analyzer.prior_mode, duplicates_dropped=dropped, speakers=sorted(speakers_seen),
                  low_evidence=low_evidence)
    return result
