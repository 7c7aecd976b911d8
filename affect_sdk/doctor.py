"""`affect doctor`: what this machine offers affect-sdk (versions, cameras, microphones, audio stack, models)."""
from __future__ import annotations

import glob
import importlib.metadata
import platform
import shutil
import subprocess
import sys
import threading
from typing import Any

from affect_sdk.errors import AffectError
from affect_sdk.registry import list_models, verified_path

PACKAGES = ("affect-sdk", "torch", "numpy", "opencv-python", "onnxruntime", "librosa", "sounddevice", "av", "typer")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _probe_camera(index: int, found: list[int]) -> None:
    import cv2

    cap = cv2.VideoCapture(index)
    try:
        if cap.isOpened() and cap.read()[0]:
            found.append(index)
    finally:
        cap.release()


def probe_cameras(indices=range(5), timeout_s: float = 2.0) -> list[int]:
    """Camera indices that open and give a frame. Each probe runs in a daemon thread so a stuck driver can't hang."""
    if sys.platform.startswith("linux") and not glob.glob("/dev/video*"):
        return []  # no V4L2 device nodes: nothing to probe, and probing would only print driver warnings
    found: list[int] = []
    for index in indices:
        worker = threading.Thread(target=_probe_camera, args=(index, found), daemon=True)
        worker.start()
        worker.join(timeout_s)
    return sorted(found)


def audio_inputs() -> tuple[list[dict[str, Any]], str | None]:
    """(input devices, problem): the devices sounddevice sees, or why it could not look."""
    try:
        import sounddevice as sd
    except OSError as exc:  # raised when the PortAudio library itself is missing
        return [], f"PortAudio is not available ({exc}); install libportaudio2."
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudio errors are not a stable type across versions
        return [], f"PortAudio could not list devices: {exc}"
    inputs = [
        {"index": i, "name": d["name"], "channels": d["max_input_channels"], "rate": d["default_samplerate"]}
        for i, d in enumerate(devices) if d["max_input_channels"] > 0
    ]
    return inputs, None


def pulseaudio_state() -> str:
    if shutil.which("pactl") is None:
        return "not installed"
    try:
        done = subprocess.run(["pactl", "info"], capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return "installed, server not reachable"
    return "running" if done.returncode == 0 else "installed, no server running"


def model_checks() -> list[dict[str, Any]]:
    rows = []
    for spec in list_models():
        try:
            verified_path(spec.name)
            if spec.onnx:  # the twin the default onnxruntime backend runs is checked too
                verified_path(spec.name, onnx=True)
            state = "ok"
        except AffectError as exc:
            state = str(exc)
        rows.append({"name": spec.name, "task": spec.task, "file": spec.weights, "state": state})
    return rows


def report() -> dict[str, Any]:
    inputs, audio_problem = audio_inputs()
    return {
        "versions": package_versions(),
        "cameras": probe_cameras(),
        "audio_inputs": inputs,
        "audio_problem": audio_problem,
        "pulseaudio": pulseaudio_state(),
        "models": model_checks(),
    }
