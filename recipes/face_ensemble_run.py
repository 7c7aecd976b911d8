"""Several face ResNets of one architecture as one run folder: a FaceEnsemble (affect_sdk.vision.nets) whose
weights are the members' own, so `affect train vision-calibration --model OUT` and `affect eval vision --model
OUT` treat the ensemble as one model, and once registered it exports to one ONNX file (affect_sdk.export).

    python recipes/face_ensemble_run.py face-teacher-r64-webcam runs/s9/student-r64-nokd-init2-s0 \
        --out runs/s11/pair-T-c --half

Members are registered names or run folders; they must share the factory, architecture and input size. The
members' outputs are averaged with equal weights (FaceEnsemble), as `recipes/teacher_ensemble_eval.py --members
A,B` scores them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from affect_sdk.errors import AffectError, InputError
from affect_sdk.registry import get_spec, load_state_dict, resolve_model
from affect_sdk.vision.train import TEACHER_FACTORY as FACTORY


def member_arch(ref: str) -> tuple[dict, int]:
    """A member's ResNet arch and input size; anything else (a MobileNet, an ensemble) is one InputError."""
    spec = get_spec(resolve_model(ref))
    if spec.task != "face" or spec.factory != FACTORY or "members" in spec.arch:
        raise InputError(f"{ref} is not a single face ResNet ({FACTORY}); only those can be members.")
    return dict(spec.arch), int(spec.preprocess["input_size"])


def ensemble_weights(refs: list[str], half: bool) -> dict:
    """The members' tensors under FaceEnsemble's names (members.I.*), optionally all floats in fp16."""
    weights = {}
    for i, ref in enumerate(refs):
        for key, value in load_state_dict(resolve_model(ref)).items():
            weights[f"members.{i}.{key}"] = value.half() if half and value.is_floating_point() else value
    return weights


def write_ensemble_run(refs: list[str], out: Path, half: bool = False) -> Path:
    if len(refs) < 2:
        raise InputError(f"An ensemble needs at least 2 members; got {len(refs)}.")
    archs = [member_arch(ref) for ref in refs]
    if any(a != archs[0] for a in archs[1:]):
        raise InputError("Members must share architecture and input size: "
                         + "; ".join(f"{r}: {a[0]} at {a[1]} px" for r, a in zip(refs, archs)))
    from safetensors.torch import save_file

    arch, size = archs[0]
    out.mkdir(parents=True, exist_ok=True)
    save_file(ensemble_weights(refs, half), str(out / "best.safetensors"))
    meta = {"factory": FACTORY, "arch": {**arch, "members": len(refs)}, "input_size": size, "task": "face",
            "role": "student", "members": refs}
    (out / "model.json").write_text(json.dumps(meta, indent=2))
    (out / "config.json").write_text(json.dumps({"recipe": "recipes/face_ensemble_run.py", "members": refs,
                                                 "half": half}, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", help="registered face models or run folders (same ResNet)")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write")
    parser.add_argument("--half", action="store_true", help="store every float tensor in fp16 (as face weights ship)")
    args = parser.parse_args(argv)
    try:
        write_ensemble_run(args.members, args.out, args.half)
    except AffectError as exc:
        parser.error(str(exc))  # one sentence, exit 2
    print(f"{len(args.members)}-member face ensemble in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
