"""The prepared GPU recipe (recipes/gpu_vision.py), run end to end on the CPU at toy size: what a lent device
machine would run, within what comes back from it (at most 8 files of 16 MiB, plain names), and back here as run
folders the `affect` commands take."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from affect_sdk.vision.data import cached_ferplus

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "gpu_vision.py"


def recipe(*args: str) -> str:
    done = subprocess.run([sys.executable, str(RECIPE), *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_pack_run_and_adopt_at_toy_size_within_the_device_limits(shared, tmp_path):
    packed, returned, adopted, work = (tmp_path / d for d in ("packed", "returned", "adopted", "work"))
    recipe("pack", "--data", str(shared / "data" / "ferplus"), "--out", str(packed), "--limit", "96",
           "--cache-dir", str(REPO / ".cache"))
    # the pack decodes to the same faces, within WebP q90's error
    unpacked = tmp_path / "unpacked"
    sys.path.insert(0, str(RECIPE.parent))
    try:
        import gpu_vision
    finally:
        sys.path.remove(str(RECIPE.parent))
    gpu_vision.unpack(packed, unpacked)
    original = cached_ferplus(shared / "data" / "ferplus", "valid", REPO / ".cache")
    decoded = cached_ferplus("unused", "valid", unpacked)
    assert decoded.images.shape == (96, 48, 48) and (decoded.labels == original.labels[:96]).all()
    assert np.abs(decoded.images.astype(int) - original.images[:96]).mean() < 3

    recipe("run", "--packed", str(packed), "--out", str(returned), "--work", str(work), "--teachers", "2",
           "--teacher-epochs", "1", "--student-epochs", "1", "--student-seeds", "1", "--batch-size", "32",
           "--threads", "1", "--budget-s", "900")
    files = sorted(returned.iterdir())
    assert len(files) <= 8 and all(f.stat().st_size < 16 * 2 ** 20 for f in files)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f.name) for f in files)
    summary = json.loads((returned / "gpu_vision.json").read_text())
    assert set(summary["runs"]) == {"teacher-s0", "teacher-s1", "student-kd-s0", "student-nokd-s0"}
    assert summary["runs"]["teacher-s1"]["augment"] == "webcam" and summary["runs"]["student-kd-s0"]["kd"]
    assert all(0 <= row["valid"] <= 1 and 0 <= row["test"] <= 1 for row in summary["runs"].values())

    out = recipe("adopt", "--returned", str(returned), "--out", str(adopted))
    assert out.count("valid") == 4
    from affect_sdk.registry import resolve_model
    from affect_sdk.vision.infer import FaceAnalyzer

    teacher = FaceAnalyzer(resolve_model(str(adopted / "teacher-s0")))  # as `affect eval|predict --model RUN`
    probs, va = teacher.analyze_crops(decoded.images[:4])
    assert probs.shape == (4, 8) and np.allclose(probs.sum(1), 1, atol=1e-5) and va.shape == (4, 2)
