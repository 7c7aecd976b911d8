"""Copy a training run folder as fp16: best.safetensors with every float tensor halved (half the file; the face
models' outputs move by under 1e-3), with its model.json and config.json, so the copy is itself a run folder that
`affect train vision-calibration --model OUT` and `affect eval ... --model OUT` read as shipped weights are read.

    python recipes/fp16_run.py runs/s9/teacher-r64-webcam-long-s3 runs/s10/teacher-r64-webcam-long-s3-fp16
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def half_copy(source: Path, target: Path) -> None:
    """Write the safetensors file `source` to `target` with every float tensor in fp16 (also what
    recipes/gpu_vision.py returns: a teacher's fp32 file can be over the 16 MiB a returned file may have)."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(source))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, str(target))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with best.safetensors")
    parser.add_argument("out", type=Path, help="folder for the fp16 copy")
    args = parser.parse_args(argv)
    if not (args.run / "best.safetensors").is_file():
        parser.error(f"{args.run} has no best.safetensors: give a training run folder.")  # one sentence, exit 2
    args.out.mkdir(parents=True, exist_ok=True)
    half_copy(args.run / "best.safetensors", args.out / "best.safetensors")
    for name in ("model.json", "config.json"):
        if (args.run / name).is_file():
            shutil.copyfile(args.run / name, args.out / name)
    print(f"fp16 copy of {args.run} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
