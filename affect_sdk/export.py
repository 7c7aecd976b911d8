"""ONNX export of registered torch models: a dynamic batch axis, the source weights' sha256 recorded inside.

`affect export onnx` writes `<name>.onnx` next to the shipped weights; its file name and sha256 go into the
model's ModelSpec (`onnx`, `onnx_sha256`), and affect_sdk.runtime then runs it with onnxruntime. The ONNX file
carries the sha256 of the safetensors it was made from (metadata `affect_sdk.source_sha256`), so a twin that
no longer matches retrained weights is detected instead of silently serving the old model.
"""
from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from affect_sdk.errors import InputError, ModelError
from affect_sdk.output import output_error, replace_file
from affect_sdk.registry import ModelSpec, create_model, file_sha256, get_spec, list_models
from affect_sdk.runtime import SOURCE_SHA_KEY, OnnxRunner, TorchRunner

OPSET = 18  # the lowest opset torch 2.13's exporter (torch.export + onnxscript) implements
INPUT_NAME = "input"
OUTPUT_NAMES = ("logits", "va")
MODEL_NAME_KEY = "affect_sdk.model"
TOLERANCE = 1e-4  # max abs difference torch vs onnxruntime on logits and V/A (float32 on CPU gives ~1e-6)
FERPLUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ferplus"  # int8 calibration faces


@dataclass(frozen=True)
class ExportedModel:
    name: str
    path: Path
    sha256: str
    source_sha256: str
    max_abs_diff: float  # torch vs onnxruntime on the export's check input
    quantization: str | None = None  # how an int8 twin was made (affect_sdk.quantize)
    agreement: float | None = None  # int8: share of FER+ Valid check crops with torch's top class


def exportable_models() -> list[ModelSpec]:
    """Registered models that are torch modules (the detector already ships as ONNX)."""
    return [spec for spec in list_models() if spec.factory is not None]


def example_shape(spec: ModelSpec) -> tuple[int, ...]:
    """One sample's input shape (no batch axis) from the spec's preprocess config."""
    pre = spec.preprocess
    if "input_shape" in pre:
        return tuple(int(v) for v in pre["input_shape"])
    if spec.task == "face":
        size = int(pre.get("size", pre.get("input_size", 48)))
        return (int(pre.get("channels", spec.arch.get("in_channels", 1))), size, size)
    if spec.task == "speech":
        from affect_sdk.audio.features import FeatureConfig
        from affect_sdk.registry import speech_windows

        cfg = FeatureConfig.from_dict(pre)
        samples = speech_windows(spec.name).window
        return (1, cfg.n_mels, 1 + (samples - cfg.n_fft) // cfg.hop_length)
    raise ModelError(f"Model {spec.name!r} has no preprocess 'input_shape'; cannot build an export input for it.")


def dynamic_axes(spec: ModelSpec) -> tuple[int, ...]:
    """Input axes left dynamic: always the batch; for speech also the frames (the window length is a user option)."""
    return (0, 3) if spec.task == "speech" else (0,)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The torch.export-based exporter logs progress and deprecations that mean nothing to a user."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _ensure_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only or unwritable place: one line, as every output error
        raise output_error(folder, exc) from None


def export_module(module: torch.nn.Module, example: torch.Tensor, path: Path, *, dynamic: tuple[int, ...] = (0,),
                  metadata: dict[str, str] | None = None) -> Path:
    """Export an eval-mode module taking one float tensor to a self-contained ONNX file (weights inside)."""
    import onnx

    module = module.eval().cpu()
    batch = torch.export.Dim("batch")
    shapes = ({axis: batch if axis == 0 else torch.export.Dim.DYNAMIC for axis in dynamic},)
    with torch.no_grad():
        out = module(example)
    n_out = len(out) if isinstance(out, (tuple, list)) else 1
    names = list(OUTPUT_NAMES[:n_out]) if n_out <= len(OUTPUT_NAMES) else [f"output{i}" for i in range(n_out)]
    try:
        with _quiet_exporter():
            program = torch.onnx.export(module, (example,), None, input_names=[INPUT_NAME], output_names=names,
                                        opset_version=OPSET, dynamo=True, dynamic_shapes=shapes, optimize=True,
                                        verbose=False)
    except Exception as exc:  # the exporter raises many untyped errors; the message says which op failed
        raise ModelError(f"ONNX export of {type(module).__name__} failed: {exc}") from exc
    proto = program.model_proto
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    _ensure_folder(path.parent)
    # small models: weights stay inside the one file, which replaces the old one only once it is whole
    return replace_file(path, lambda tmp: onnx.save_model(proto, str(tmp)))


def max_abs_diff(module: torch.nn.Module, path: Path, x: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime outputs on input x."""
    ours = OnnxRunner(str(path))(x)
    ref = TorchRunner(module, torch.device("cpu"))(x)
    if len(ours) != len(ref):
        raise ModelError(f"{path} gives {len(ours)} outputs but the torch model gives {len(ref)}.")
    return max(float(np.max(np.abs(a - b))) for a, b in zip(ours, ref))


def source_sha256(path: Path) -> str | None:
    """The sha256 of the weights an ONNX twin was exported from (None for files not made by export_model)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((p.value for p in model.metadata_props if p.key == SOURCE_SHA_KEY), None)


def export_model(name: str, out_dir: Path, data: str | Path | None = None) -> ExportedModel:
    """Export a registered torch model's verified weights to out_dir/<name>.onnx and check it against torch.

    A model registered with `onnx_int8` gets an int8 twin, calibrated on FER+ Train crops from `data` (default:
    ../shared/data/ferplus beside the checkout) and checked on FER+ Valid crops (affect_sdk.quantize)."""
    spec = get_spec(name)
    if spec.factory is None:
        raise InputError(f"Model {name!r} is not a torch model (it ships as {spec.weights}); nothing to export.")
    module = create_model(name, device="cpu")
    shape = example_shape(spec)
    example = torch.from_numpy(np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32))
    target = Path(out_dir) / f"{name}.onnx"
    metadata = {MODEL_NAME_KEY: name, SOURCE_SHA_KEY: spec.sha256}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / target.name if spec.onnx_int8 else target
        path = export_module(module, example, fp32, dynamic=dynamic_axes(spec), metadata=metadata)
        check = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)  # another batch size
        diff = max_abs_diff(module, path, check)
        if not diff <= TOLERANCE:
            raise ModelError(f"ONNX export {path} differs from the torch model by {diff:.3g} (> {TOLERANCE}).")
        if not spec.onnx_int8:
            return ExportedModel(name, path, file_sha256(path), spec.sha256, diff)
        from affect_sdk.quantize import (CALIBRATION_CROPS, CHECK_CROPS, INT8_MIN_AGREEMENT, QUANTIZATION,
                                         face_crops, int8_agreement, quantize_int8)

        data = data or FERPLUS
        calibration = face_crops(spec, data, "train", CALIBRATION_CROPS)
        check = face_crops(spec, data, "valid", CHECK_CROPS)
        with _quiet_exporter():
            int8 = quantize_int8(fp32, Path(tmp) / f"int8-{target.name}", calibration, metadata)
        # checked before it replaces anything: a refused twin leaves the file already in out_dir as it was
        agreement, diff = int8_agreement(OnnxRunner(str(int8))(check),
                                         TorchRunner(module, torch.device("cpu"))(check))
        if agreement < INT8_MIN_AGREEMENT:
            raise ModelError(f"The int8 twin of {name!r} keeps torch's top class on only {agreement:.1%} of "
                             f"{len(check)} FER+ Valid faces (< {INT8_MIN_AGREEMENT:.0%}); not written.")
        _ensure_folder(target.parent)
        path = replace_file(target, lambda tmp_target: shutil.copyfile(int8, tmp_target))
    return ExportedModel(name, path, file_sha256(path), spec.sha256, diff, QUANTIZATION, agreement)
