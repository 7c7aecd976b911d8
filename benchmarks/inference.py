"""Model-level benchmarks: face student crops/s (torch eager vs onnxruntime), YuNet detections/s, GMAC (thop)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.timing import Row, calls_per_repeat, meets, time_repeats

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACE_GOAL = ">= 500"  # crops/s at batch 1 with onnxruntime on the 2-core CPU


def demo_frame(size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A real BGR frame (the shipped RAVDESS demo clip, middle frame) letterboxed to `size` (w, h) without scaling."""
    import cv2

    from affect_sdk.session import demo_clip

    cap = cv2.VideoCapture(str(demo_clip()))
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // 2)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read a frame of {demo_clip()}")
    w, h = size
    out = np.zeros((h, w, 3), np.uint8)
    fh, fw = min(h, frame.shape[0]), min(w, frame.shape[1])
    y, x = (h - fh) // 2, (w - fw) // 2
    out[y:y + fh, x:x + fw] = frame[:fh, :fw]
    return out


def ferplus_crops(n: int) -> np.ndarray:
    """n real 48x48 grayscale FER+ test crops (uint8 [n, 48, 48])."""
    import cv2

    folder = SHARED / "data" / "ferplus" / "FER2013Test"
    files = sorted(folder.glob("*.png"))[:n]
    if len(files) < n:
        raise FileNotFoundError(f"need {n} FER+ crops in {folder}")
    return np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])


def student_input(crops: np.ndarray, model: str) -> np.ndarray:
    """Crops -> the model's float input [N, 1, S, S] in [0, 1], prepared exactly as FaceAnalyzer does."""
    from affect_sdk.registry import get_spec
    from affect_sdk.vision.infer import prepare_crops

    return prepare_crops(crops, int(get_spec(model).preprocess.get("input_size", 48)))


def face_student(quick: bool = False, model: str = "face-student") -> list[Row]:
    """Crops/s of the student on real FER+ crops at batch 1 and 32, torch eager and onnxruntime (model only).

    torch runs with its default thread count (one per core) and with 1 thread like onnxruntime's default session:
    on a busy machine torch's spinning OpenMP threads lose most of their time waiting for each other.
    """
    import torch

    from affect_sdk.runtime import create_runner

    x32 = student_input(ferplus_crops(32), model)
    default_threads = torch.get_num_threads()
    rows = []
    for backend, threads in (("torch", default_threads), ("torch", 1), ("onnxruntime", None)):
        try:
            runner = create_runner(model, backend=backend, device="cpu")
        except Exception as exc:  # noqa: BLE001 - a missing twin or model is reported, not fatal
            rows.append(Row(f"face student, {backend}", None, "crops/s", detail=f"not run: {exc}"))
            continue
        if backend == "torch":
            torch.set_num_threads(threads)
        else:
            threads = runner.session.get_session_options().intra_op_num_threads
        try:
            for batch in (1, 32):
                x = x32[:batch]
                calls = calls_per_repeat(lambda: runner(x), budget_s=0.2 if quick else 0.5)
                timing = time_repeats(lambda: [runner(x) for _ in range(calls)], repeats=3 if quick else 7)
                value = batch * calls / timing.median_s
                goal = FACE_GOAL if (backend, batch) == ("onnxruntime", 1) else ""
                rows.append(Row(f"face student {backend} batch {batch}, {threads} thread{'s' * (threads > 1)}",
                                round(value, 1), "crops/s", goal, meets(value, goal),
                                f"{1e3 * timing.median_s / calls:.2f} ms/call wall, {1e3 * timing.cpu_s / calls:.2f} "
                                f"ms CPU; {calls} calls x {timing.repeats}",
                                {"ms_per_call": 1e3 * timing.median_s / calls, "threads": threads,
                                 "cpu_ms_per_call": 1e3 * timing.cpu_s / calls, "min_s": timing.min_s,
                                 "max_s": timing.max_s}))
        finally:
            torch.set_num_threads(default_threads)
    from affect_sdk.vision.infer import FaceAnalyzer

    analyzer = FaceAnalyzer(model)
    crops = ferplus_crops(1)
    calls = calls_per_repeat(lambda: analyzer.analyze_crops(crops), budget_s=0.2 if quick else 0.5)
    timing = time_repeats(lambda: [analyzer.analyze_crops(crops) for _ in range(calls)], repeats=3 if quick else 7)
    rows.append(Row("face analyze_crops batch 1", round(calls / timing.median_s, 1), "crops/s",
                    detail=f"FaceAnalyzer default backend ({analyzer.runner.backend}): resize + model + softmax; "
                    f"{1e3 * timing.median_s / calls:.2f} ms/crop wall, {1e3 * timing.cpu_s / calls:.2f} ms CPU"))
    return rows


def yunet(quick: bool = False) -> list[Row]:
    """YuNet detections (frames searched) per second at 640x480 on a real frame; also searched at half size."""
    from affect_sdk.vision.detect import FaceDetector

    frame = demo_frame((640, 480))
    rows = []
    for max_side in (1280, 320):  # 1280: the detector's default, so the frame is searched at 640x480
        detector = FaceDetector(max_side=max_side)
        faces = len(detector.detect(frame))
        calls = calls_per_repeat(lambda: detector.detect(frame), budget_s=0.2 if quick else 0.5)
        timing = time_repeats(lambda: [detector.detect(frame) for _ in range(calls)], repeats=3 if quick else 7)
        searched = "640x480" if max_side >= 640 else "320x240 (max_side=320)"
        rows.append(Row(f"YuNet 640x480 frame, searched at {searched.split()[0]}", round(calls / timing.median_s, 1),
                        "detections/s", detail=f"FaceDetector(max_side={max_side}), real frame, {faces} face(s); "
                        f"{1e3 * timing.median_s / calls:.2f} ms/frame wall, {1e3 * timing.cpu_s / calls:.2f} ms CPU; "
                        f"{calls} calls x {timing.repeats}",
                        extra={"ms_per_frame": 1e3 * timing.median_s / calls,
                               "cpu_ms_per_frame": 1e3 * timing.cpu_s / calls, "faces": faces}))
    return rows


def gmac() -> list[Row]:
    """Multiply-accumulates per forward pass (thop) of the face student, the teacher and the speech model."""
    import torch
    from thop import profile

    from affect_sdk.export import example_shape
    from affect_sdk.registry import create_model, list_models

    specs = {s.name: s for s in list_models() if s.factory is not None}
    rows = []
    for name, spec in specs.items():
        shape = example_shape(spec)
        module = create_model(name, pretrained=False, device="cpu")
        macs, params = profile(module, inputs=(torch.zeros(1, *shape),), verbose=False)
        rows.append(Row(f"GMAC {name}", round(float(macs) / 1e9, 4), "GMAC",
                        detail=f"input {list(shape)}, {float(params) / 1e6:.2f} M params (thop)",
                        extra={"params_m": float(params) / 1e6, "input_shape": list(shape)}))
    return rows
