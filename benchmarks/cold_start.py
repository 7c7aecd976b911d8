"""Cold start: a fresh Python process that imports affect_sdk and returns its first FaceAffect from an image file.

Measured from spawning the interpreter until the result line arrives on its stdout; the child reports where its
time went (imports, model load, first inference) and the parent reads the child's CPU time with wait4.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import Row, meets

GOAL = "<= 3"

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()


def peak_rss_mb():
    # VmHWM: the peak of this process image only (ru_maxrss of a child also counts the parent it was forked from)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024.0


import cv2
from affect_sdk.vision.infer import FaceAnalyzer
t1 = time.perf_counter()
analyzer = FaceAnalyzer()
t2 = time.perf_counter()
faces = analyzer.analyze(cv2.imread(sys.argv[1]), 0.0)
t3 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "model_load_s": t2 - t1, "first_inference_s": t3 - t2,
                  "faces": len(faces), "label": faces[0].label if faces else None,
                  "backend": getattr(getattr(analyzer, "runner", None), "backend", None),
                  "torch_imported": "torch" in sys.modules, "peak_rss_mb": peak_rss_mb()}), flush=True)
"""


def run_once(image: Path) -> dict:
    """One cold start: seconds to the first result, the child's own stage times and its peak RSS (MiB)."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty child can never block on it
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(image)], stdout=subprocess.PIPE, stderr=errors,
                                 text=True)
        line = child.stdout.readline()
        first_result_s = time.perf_counter() - start
        child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read()
    if child.returncode != 0 or not line.strip():
        raise RuntimeError(f"cold-start child failed ({child.returncode}): {stderr.strip()[-400:]}")
    return {"first_result_s": first_result_s, "cpu_s": usage.ru_utime + usage.ru_stime, **json.loads(line)}


def cold_start(quick: bool = False) -> list[Row]:
    import cv2

    from benchmarks.inference import demo_frame

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "frame.png"
        cv2.imwrite(str(image), demo_frame((640, 480)))
        run_once(image)  # warm the OS file cache: we measure Python's start, not the disk's
        for _ in range(3 if quick else 5):
            runs.append(run_once(image))
    med = {k: float(np.median([r[k] for r in runs])) for k in ("first_result_s", "imports_s", "model_load_s",
                                                              "first_inference_s", "peak_rss_mb", "cpu_s")}
    last = runs[-1]
    return [
        Row("cold start to first FaceAffect", round(med["first_result_s"], 3), "s", GOAL,
            meets(med["first_result_s"], GOAL),
            f"median of {len(runs)} fresh processes, {med['cpu_s']:.2f} s CPU each; imports {med['imports_s']:.2f} s, "
            f"model load {med['model_load_s']:.2f} s, first inference {med['first_inference_s']:.2f} s; backend "
            f"{last['backend']}{'' if last['torch_imported'] else ' (torch never imported)'}; {last['faces']} face(s), "
            f"'{last['label']}'", med),
        Row("peak RSS, cold start process", round(med["peak_rss_mb"], 1), "MiB",
            detail="import + load + first FaceAffect (VmHWM of the child, read by itself)"),
    ]
