"""Compute device and inference backend, resolved in one place."""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
from typing import TYPE_CHECKING

from affect_sdk.errors import DeviceError

if TYPE_CHECKING:
    import torch

BACKENDS = ("torch", "onnxruntime")


def resolve_device(name: str | None = None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or None/'auto' (CUDA when available, else CPU)."""
    import torch

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"Unknown compute device {name!r}; use 'cpu', 'cuda' or 'auto'.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"Compute device {name!r} was asked for, but this machine has no usable CUDA GPU.")
    return device


def _gpu_possible() -> bool:
    """False only where this machine certainly has no CUDA/ROCm GPU (no Linux device nodes); True means 'ask torch'."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd"))
    return sys.platform != "darwin"


def on_cpu(name: str | None = None) -> bool:
    """Whether a device name resolves to the CPU, answered without importing torch when that is certain."""
    if name == "cpu" or (name in (None, "", "auto") and not _gpu_possible()):
        return True
    return resolve_device(name).type == "cpu"


def resolve_backend(name: str | None = None) -> str:
    """'torch', 'onnxruntime' or None/'auto' (onnxruntime when installed: it is the faster one on CPU)."""
    if name in (None, "", "auto"):
        return "onnxruntime" if importlib.util.find_spec("onnxruntime") is not None else "torch"
    if name not in BACKENDS:
        raise DeviceError(f"Unknown inference backend {name!r}; use one of {', '.join(BACKENDS)} or 'auto'.")
    if name == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        raise DeviceError("Backend 'onnxruntime' was asked for, but the onnxruntime package is not installed.")
    return name


class SingleThreadedTorch:
    """Keeps torch at one intra-op thread while any live session runs, and gives the caller's count back when the
    last one ends. torch's thread count is one per process, so overlapping sessions share one count of holders:
    each saving and restoring its own "previous" value left torch at 1 thread after A-start, B-start, A-end, B-end.

    One thread per model call, because face and speech already run in parallel threads (measured on 2 busy cores:
    a face crop took 840 ms with torch's default 2 threads, 28 ms with 1).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: int | None = None

    @property
    def holders(self) -> int:
        return self._holders

    def hold(self) -> None:
        """Count one more session; a session holds after its models are built, so torch is loaded exactly when a
        model runs on it (onnxruntime alone never imports torch, and has no torch threads to limit)."""
        with self._lock:
            self._holders += 1
            torch = sys.modules.get("torch")
            if torch is None:
                return
            if self._saved is None:
                self._saved = torch.get_num_threads()
            torch.set_num_threads(1)

    def release(self) -> None:
        with self._lock:
            if self._holders == 0:
                return
            self._holders -= 1
            torch = sys.modules.get("torch")
            if self._holders == 0 and self._saved and torch is not None:
                torch.set_num_threads(self._saved)
                self._saved = None


TORCH_THREADS = SingleThreadedTorch()  # the process's one torch thread count, shared by every session
