"""A weight-space average ("model soup", Wortsman et al. 2022) of face ResNets fine-tuned from one start, as one
run folder: the cost of one net at inference, unlike recipes/face_ensemble_run.py's ensemble of N nets.

    python recipes/face_soup.py runs/s12/student-r64-px64-initT-lowres-s1 runs/s13/student-r64-px64-initT-lowres-s2 \
        --out runs/s13/soup-s1-s2
    python recipes/face_soup.py face-teacher-r64-webcam runs/s12/student-r64-px64-initT-lowres-s1 \
        --weights 0.3,0.7 --out runs/s13/wise-T-s1        # WiSE-FT: the start and a fine-tune, interpolated

Averaging only works for nets that share a start (they stay in one basin); members of different lineages give a
broken net, which FER+ Valid shows at once. Members are registered names or run folders with one architecture;
the soup takes the last member's input size unless --input-size says otherwise. BatchNorm running statistics are
averaged like every other tensor (re-estimating them is not needed for fine-tunes this close; Valid checks it).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from affect_sdk.errors import AffectError, InputError
from affect_sdk.registry import load_state_dict, resolve_model

from face_ensemble_run import FACTORY, member_arch  # recipes/ is on sys.path as a script and in the tests


def parse_weights(text: str | None, count: int) -> list[float]:
    """Equal weights by default; given weights must be `count` finite non-negative numbers, normalised to sum 1."""
    if text is None:
        return [1.0 / count] * count
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--weights must be comma-separated numbers; got {text!r}.") from None
    if len(values) != count or any(not (v >= 0.0 and v < float("inf")) for v in values) or sum(values) <= 0:
        raise InputError(f"--weights needs {count} finite non-negative numbers with a positive sum; got {text!r}.")
    return [v / sum(values) for v in values]


def soup_weights(refs: list[str], weights: list[float], half: bool) -> dict:
    """The weighted mean of the members' float tensors (integer ones, e.g. BatchNorm's batch counter: the first's)."""
    states = [load_state_dict(resolve_model(ref)) for ref in refs]
    keys = set(states[0])
    for ref, state in zip(refs[1:], states[1:]):
        if set(state) != keys or any(state[k].shape != states[0][k].shape for k in keys):
            raise InputError(f"{ref} does not have {refs[0]}'s tensors; a soup needs one architecture.")
    soup = {}
    for key in sorted(keys):
        if not states[0][key].is_floating_point():
            soup[key] = states[0][key]
            continue
        mean = sum(w * state[key].float() for w, state in zip(weights, states))
        soup[key] = mean.half() if half else mean
    return soup


def write_soup_run(refs: list[str], out: Path, weights: list[float] | None = None, input_size: int | None = None,
                   half: bool = False) -> Path:
    if len(refs) < 2:
        raise InputError(f"A soup needs at least 2 members; got {len(refs)}.")
    weights = weights or parse_weights(None, len(refs))
    archs = [member_arch(ref) for ref in refs]
    if any(arch != archs[0][0] for arch, _ in archs[1:]):
        raise InputError("Members must share one architecture: " + "; ".join(f"{r}: {a}" for r, (a, _) in zip(refs, archs)))
    from safetensors.torch import save_file

    size = input_size or archs[-1][1]
    state = soup_weights(refs, weights, half)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "best.safetensors"))
    meta = {"factory": FACTORY, "arch": archs[0][0], "input_size": size, "task": "face", "role": "student",
            "soup": dict(zip(refs, weights))}
    (out / "model.json").write_text(json.dumps(meta, indent=2))
    (out / "config.json").write_text(json.dumps({"recipe": "recipes/face_soup.py", "members": refs,
                                                 "weights": weights, "input_size": size, "half": half}, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", help="registered face models or run folders (one ResNet, one start)")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write")
    parser.add_argument("--weights", help="comma-separated mixing weights (default: equal)")
    parser.add_argument("--input-size", type=int, help="the soup's input size (default: the last member's)")
    parser.add_argument("--half", action="store_true", help="store every float tensor in fp16 (as face weights ship)")
    args = parser.parse_args(argv)
    try:
        if args.input_size is not None and not 16 <= args.input_size <= 256:
            raise InputError(f"--input-size must be 16-256 pixels; got {args.input_size}.")
        weights = parse_weights(args.weights, len(args.members))
        write_soup_run(args.members, args.out, weights, args.input_size, args.half)
    except AffectError as exc:
        parser.error(str(exc))  # one sentence, exit 2
    print(f"{len(args.members)}-member face soup in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
