"""Face model evaluation on a FER+ layout or an image folder: the metrics core's report (affect_sdk.metrics) and V/A
concordance (CCC); bad files are skipped with one message each and reported."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from affect_sdk.errors import AffectError, InputError
from affect_sdk.labels import va_from_probs
from affect_sdk.metrics import classification_report, va_concordance
from affect_sdk.registry import resolve_model


@dataclass
class LabelledImages:
    """Image files with majority labels, and soft labels (and so derived V/A) where the dataset has votes."""

    paths: list[Path]
    labels: np.ndarray
    soft: np.ndarray | None = None
    kind: str = "folder"  # "ferplus" or "folder"
    excluded: list[str] = field(default_factory=list)


def find_labelled_images(data: str | Path, split: str = "test") -> LabelledImages:
    """A FER+ layout (one split) or a class-per-folder image tree."""
    from affect_sdk.labels import ferplus_votes_to_canonical
    from affect_sdk.vision.data import ferplus_keep, ferplus_split_dir, is_ferplus, read_ferplus_votes, \
        read_image_folder

    data = Path(data)
    if not data.exists():
        raise InputError(f"Data folder {data} does not exist.")
    if is_ferplus(data):
        folder = ferplus_split_dir(data, split)
        names, votes10 = read_ferplus_votes(folder)
        keep = np.flatnonzero(ferplus_keep(votes10))
        votes = ferplus_votes_to_canonical(votes10[keep]).astype(np.float32)
        return LabelledImages([folder / names[i] for i in keep], votes.argmax(1).astype(np.int64),
                              votes / votes.sum(1, keepdims=True), "ferplus")
    paths, labels, excluded = read_image_folder(data)
    return LabelledImages(paths, labels, None, "folder", excluded)


def evaluate_vision(data: str | Path, *, split: str = "test", crops: bool = False, model: str | None = None,
                    reference: str | None = None, backend: str | None = None, device: str | None = None,
                    limit: int | None = None, warn: Callable[[str], None] | None = None,
                    prior: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate a registered face model; returns the JSON-ready result dict (see `affect eval vision`)."""
    from affect_sdk.registry import create_model, default_model, get_spec
    from affect_sdk.vision.align import crop_face
    from affect_sdk.vision.data import load_image
    from affect_sdk.vision.infer import FaceAnalyzer
    from affect_sdk.vision.nets import count_gmac

    warn = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.time()
    model, reference = resolve_model(model) or default_model("face"), resolve_model(reference)
    items = find_labelled_images(data, split)
    if limit is not None:
        items.paths, items.labels = items.paths[:limit], items.labels[:limit]
        items.soft = None if items.soft is None else items.soft[:limit]
    analyzer = FaceAnalyzer(model, backend=backend, device=device, prior=prior)
    ref = FaceAnalyzer(reference, backend=backend, device=device, prior=prior) if reference else None
    size = analyzer.input_size
    batch_crops, kept, skipped, no_face = [], [], [], 0
    for i, path in enumerate(items.paths):
        if progress is not None and i % 50 == 0:
            progress(i, len(items.paths))
        try:
            image = load_image(path)
        except AffectError as exc:
            skipped.append({"file": str(path), "error": str(exc)})
            warn(f"skipped: {exc}")
            continue
        if crops:
            batch_crops.append(image)
        else:
            faces = analyzer.detector.detect(image)
            if faces:
                batch_crops.append(crop_face(image, faces[0], size))
            else:  # a labelled face image without a detection still counts: the whole image is the crop
                no_face += 1
                batch_crops.append(image)
        kept.append(i)
    if not kept:
        raise InputError(f"No readable images in {data}; {len(skipped)} files were skipped.")
    probs, va = analyzer.analyze_crops(batch_crops)
    labels = items.labels[kept]
    result: dict[str, Any] = {"model": model, "data": str(data), "split": split if items.kind == "ferplus" else None,
                              "layout": items.kind, "crops": crops, "prior": analyzer.prior_mode,
                              "temperature": analyzer.temperature}
    result.update(classification_report(labels, probs))
    spec = get_spec(model)
    try:  # thop is a dev extra: without it the GMAC count is left out, the evaluation still runs
        result["gmac"] = round(count_gmac(create_model(model), size), 4) if spec.factory else None
    except ImportError:
        result["gmac"] = None
    result["input_size"] = size
    if items.soft is not None:
        derived = va_from_probs(items.soft[kept])
        result["va_ccc_vs_derived"] = va_concordance(va, derived)
        result["va_note"] = ("derived targets: FER+ vote distributions through the AffectNet class -> V/A table "
                             "(affect_sdk.labels.CLASS_VA); no V/A ground truth is available")
    if ref is not None:
        ref_probs, ref_va = ref.analyze_crops(batch_crops)
        result["reference"] = {"model": reference, "accuracy": round(float((ref_probs.argmax(1) == labels).mean()), 4),
                               "va_ccc_vs_reference": va_concordance(va, ref_va)}
        if items.soft is not None:
            result["reference"]["va_ccc_vs_derived"] = va_concordance(ref_va, va_from_probs(items.soft[kept]))
    result.update({"skipped": len(skipped), "skipped_files": skipped[:50], "no_face": no_face,
                   "excluded_folders": items.excluded, "seconds": round(time.time() - started, 1)})
    return result


def fit_face_calibration(model: str, data: str | Path, *, cache_dir: str | None = ".cache",
                         backend: str | None = None) -> dict[str, Any]:
    """Fit a face model's output calibration on FER+ Train (class prior) and FER+ Valid (temperatures per prior
    mode, neutral reference for personal baselines). FER+ Test is never read. A run folder gets the result
    written into its model.json; a registered model's values go into affect_sdk/registry.py by hand."""
    import json

    from affect_sdk.labels import CLASSES
    from affect_sdk.vision.calibrate import (PRIOR_MODES, adjust_for_prior, class_weights, fit_temperature,
                                             target_distribution)
    from affect_sdk.vision.data import cached_ferplus
    from affect_sdk.vision.infer import FaceAnalyzer

    name = resolve_model(model)
    prior = cached_ferplus(data, "train", cache_dir).soft.mean(axis=0)
    valid = cached_ferplus(data, "valid", cache_dir)
    logits, _ = FaceAnalyzer(name, backend=backend, prior="train").raw_outputs(valid.images)
    labels = valid.labels
    temperature = {mode: fit_temperature(adjust_for_prior(logits, prior, mode), labels,
                                         class_weights(labels, target_distribution(prior, mode)))
                   for mode in PRIOR_MODES}
    neutral = logits[labels == CLASSES.index("neutral")].mean(axis=0)
    result = {"prior": [round(float(p), 5) for p in prior], "temperature": temperature,
              "neutral_reference": [round(float(v), 4) for v in neutral]}
    run = Path(model)
    if (run / "model.json").is_file():
        meta = json.loads((run / "model.json").read_text())
        meta["calibration"] = result
        (run / "model.json").write_text(json.dumps(meta, indent=2))
    return {"model": model, **result}
