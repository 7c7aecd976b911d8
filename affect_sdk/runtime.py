"""Inference runners: one callable per model, numpy in -> numpy outputs, on torch or onnxruntime.

The backend is resolved once (affect_sdk.device.resolve_backend); the analyzers in vision/ and audio/ only see
`runner(x) -> tuple of arrays`, so predict, eval and live use the same models whichever backend runs them.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from affect_sdk.device import resolve_backend, resolve_device
from affect_sdk.errors import ModelError
from affect_sdk.registry import create_model, get_spec, verified_path


class Runner(Protocol):
    backend: str

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]: ...


class TorchRunner:
    backend = "torch"

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module, self.device = module.eval(), device

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        out = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(o.float().cpu().numpy() for o in out)


class OnnxRunner:
    backend = "onnxruntime"

    def __init__(self, path: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"onnxruntime could not load {path}: {exc}.") from exc
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)}))


def create_runner(name: str, backend: str | None = None, device: str | None = None) -> Runner:
    """A runner for a registered model. 'auto' picks onnxruntime when installed and the model ships an ONNX twin."""
    spec = get_spec(name)
    chosen = resolve_backend(backend)
    if chosen == "onnxruntime" and spec.onnx is None:
        if backend == "onnxruntime":
            raise ModelError(f"Model {name!r} has no ONNX export shipped; run `affect export onnx` or use torch.")
        chosen = "torch"
    if chosen == "onnxruntime" and resolve_device(device).type == "cpu":
        return OnnxRunner(str(verified_path(name, onnx=True)))
    torch_device = resolve_device(device)
    return TorchRunner(create_model(name, device=torch_device), torch_device)
