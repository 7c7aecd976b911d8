"""Teachers for distillation: a run folder, a registered model, a foreign file or the user's own factory, alone or
as a weighted ensemble. Each teacher is a function x [B,1,H,W] in [0,1] -> (logits [B,8], va [B,2])."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from affect_sdk.errors import InputError, ModelError
from affect_sdk.labels import CLASSES

TeacherFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def load_run_model(run_dir: Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The best weights of a training run directory (model.json + best.safetensors), in eval mode."""
    from safetensors.torch import load_file

    from affect_sdk.registry import build_from_meta, read_run_meta

    meta = read_run_meta(run_dir)  # only the package's own factories: data never names code
    model = build_from_meta(meta)
    model.load_state_dict(load_file(str(run_dir / "best.safetensors")))
    return model.to(device).eval(), meta


def load_teacher(ref: str, device: torch.device) -> TeacherFn:
    """A teacher as a function x [B,1,H,W] in [0,1] -> (logits [B,8], va [B,2]).

    `ref`: a training run directory, a registered model name, a TorchScript file (.pt/.ts/.torchscript), a
    torch.export archive (.pt2), an ONNX file (.onnx) or 'module:factory' returning an nn.Module with its weights
    loaded. Foreign teachers must give
    the same outputs (8 logits in affect_sdk.labels.CLASSES order, V/A in [-1, 1]).
    """
    from affect_sdk.registry import _REGISTRY, create_model, import_user_factory

    path = Path(ref)
    if path.is_dir():
        if not (path / "best.safetensors").is_file():
            raise InputError(f"Teacher run directory {path} has no best.safetensors; train the teacher first.")
        module = load_run_model(path, device)[0]
    elif ref in _REGISTRY:
        module = create_model(ref, device=device)
    elif path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise InputError(f"Teacher file {path} does not exist.")
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_onnx(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits, va = session.run(None, {name: x.detach().cpu().numpy().astype(np.float32)})[:2]
            return torch.from_numpy(logits).to(x.device), torch.from_numpy(va).to(x.device)

        return run_onnx
    elif path.suffix.lower() == ".pt2":  # torch.export archive
        if not path.is_file():
            raise InputError(f"Teacher file {path} does not exist.")
        module = torch.export.load(str(path)).module()
    elif path.suffix.lower() in (".pt", ".ts", ".torchscript", ".jit"):
        if not path.is_file():
            raise InputError(f"Teacher file {path} does not exist.")
        try:
            module = torch.jit.load(str(path), map_location=device)
        except RuntimeError as exc:
            raise ModelError(f"Teacher file {path} is not a TorchScript module: {exc}.") from None
    elif ":" in ref:  # the user's own code, named on the command line (--teacher), never by a data file
        module = import_user_factory(ref)()
    else:
        raise InputError(f"Teacher {ref!r} is neither a run directory, a registered model, a .pt/.onnx file "
                         f"nor a module:factory reference.")
    if isinstance(module, torch.nn.Module) and not isinstance(module, torch.fx.GraphModule):
        module = module.to(device).eval()  # exported (.pt2) graphs are already inference graphs

    @torch.no_grad()
    def run_torch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = module(x)
        if not isinstance(out, (tuple, list)) or len(out) < 2:
            raise ModelError(f"Teacher {ref!r} must return (logits [B,8], va [B,2]).")
        return out[0].float(), out[1].float()

    return run_torch


@dataclass(frozen=True)
class TeacherMember:
    """One ensemble member as named on the command line: `REF` or `REF@WEIGHT` (e.g. face-mini-xception@0.25)."""
    ref: str
    weight: float = 1.0


def parse_teacher_members(refs: str) -> list[TeacherMember]:
    members = []
    for item in (part.strip() for part in refs.split(",")):
        if not item:
            continue
        ref, _, weight = item.rpartition("@") if "@" in item else (item, "", "1")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not value > 0 or not np.isfinite(value):
            raise InputError(f"--teacher {item}: the weight after '@' must be a positive number.")
        members.append(TeacherMember(ref, value))
    if not members:
        raise InputError("--teacher names no teacher; give one or more, separated by commas.")
    return members


def member_profile(ref: str) -> tuple[int | None, tuple[str, ...]]:
    """A registered member's own input size and the classes it never learned (both from the registry); a run
    folder or foreign file is taken to see the student's input and to know all classes."""
    from affect_sdk.registry import _REGISTRY

    spec = _REGISTRY.get(ref)
    if spec is None:
        return None, ()
    return spec.preprocess.get("input_size"), tuple(spec.missing_classes)


def combine_members(outputs: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float],
                    known: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's (logits, va): per class, the weighted mean of the members' log-probabilities over the members
    that know that class; V/A, the weighted mean.

    With every member knowing every class this equals the mean of raw logits up to a per-image constant, which no
    softmax sees. A member that never learned a class (mini-Xception: contempt) abstains on it rather than
    voting "never".
    """
    log_probs = torch.stack([F.log_softmax(o[0].float(), dim=1) for o in outputs])  # [M, B, C]
    w = torch.tensor(weights, dtype=log_probs.dtype, device=log_probs.device)
    mask = torch.stack(known).to(log_probs.device, log_probs.dtype)  # [M, C]
    per_class = w[:, None] * mask  # [M, C]
    logits = (log_probs * per_class[:, None, :]).sum(0) / per_class.sum(0).clamp_min(1e-12)
    va = (torch.stack([o[1].float() for o in outputs]) * w[:, None, None]).sum(0) / w.sum()
    return logits, va


def load_teacher_ensemble(refs: str, device: torch.device) -> TeacherFn:
    """Comma-separated teachers as one (eq. 1 targets and the eq. 2-3 bound): see combine_members.

    Each registered member sees the batch resized to its own input size (mini-Xception: 64 px).
    """
    members = parse_teacher_members(refs)
    if len(members) == 1 and not member_profile(members[0].ref)[1]:  # a lone member's weight cancels out
        return load_teacher(members[0].ref, device)
    fns, sizes, known = [], [], []
    for member in members:
        fns.append(load_teacher(member.ref, device))
        size, missing = member_profile(member.ref)
        sizes.append(size)
        known.append(torch.tensor([c not in missing for c in CLASSES]))
    unknown = [c for c, k in zip(CLASSES, torch.stack(known).any(0)) if not k]
    if unknown:
        raise InputError(f"--teacher {refs}: no member knows {', '.join(unknown)}; add one that does.")
    weights = [m.weight for m in members]

    def run_ensemble(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = []
        for fn, size in zip(fns, sizes):
            view = x if size is None or size == x.shape[-1] else F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
            outputs.append(fn(view))
        return combine_members(outputs, weights, known)

    return run_ensemble
