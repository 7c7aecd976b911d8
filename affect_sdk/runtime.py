"""Inference runners: one callable per model, numpy in -> numpy outputs, on torch or onnxruntime.

The backend is resolved once (affect_sdk.device.resolve_backend); the analyzers in vision/ and audio/ only see
`runner(x) -> tuple of arrays`, so predict, eval and live use the same models whichever backend runs them.
The onnxruntime path never imports torch (about 2 s of a cold start on a small CPU): torch is imported lazily.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import numpy as np

from affect_sdk.device import on_cpu, resolve_backend, resolve_device
from affect_sdk.errors import ModelError
from affect_sdk.registry import create_model, get_spec, verified_path

if TYPE_CHECKING:
    import torch

DEFAULT_ONNX_THREADS = 1
SOURCE_SHA_KEY = "affect_sdk.source_sha256"  # metadata written by affect_sdk.export


class Runner(Protocol):
    backend: str

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]: ...


class TorchRunner:
    backend = "torch"

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module, self.device = module.eval(), device

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(o.float().cpu().numpy() for o in out)


class OnnxRunner:
    """An onnxruntime session on the CPU.

    One intra-op thread and no spin-waiting by default: real-time inference is batch 1, the face and the speech
    model run side by side in `affect live`, and on a small shared CPU a spinning thread pool per session makes
    every session slower (on the shared 2-core machine 2 spinning threads were about 2x slower than 1 thread).
    """

    backend = "onnxruntime"

    def __init__(self, path: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or DEFAULT_ONNX_THREADS
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"onnxruntime could not load {path}: {exc}.") from exc
        self.input_name = self.session.get_inputs()[0].name
        # sha256 of the torch weights this file was exported from (affect_sdk.export); None for foreign files
        self.source_sha256 = self.session.get_modelmeta().custom_metadata_map.get(SOURCE_SHA_KEY)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)}))


def create_runner(name: str, backend: str | None = None, device: str | None = None,
                  threads: int | None = None) -> Runner:
    """A runner for a registered model. 'auto' picks onnxruntime when installed and the model ships an ONNX twin.

        runner = create_runner("face-student")            # onnxruntime twin when installed, else torch
        logits, va = runner(crops)                        # float32 [B, 1, 48, 48] in 0..1 -> [B, 8], [B, 2]
        runner.backend                                    # "onnxruntime" or "torch"

    A twin exported from other weights than the registered ones (stale after retraining) is refused when
    onnxruntime was asked for by name, and skipped for torch under 'auto'. `threads`: onnxruntime intra-op
    threads (default 1; more only helps large batches on an otherwise idle CPU).
    """
    spec = get_spec(name)
    chosen = resolve_backend(backend)
    if chosen == "onnxruntime" and spec.onnx is None:
        if backend == "onnxruntime":
            raise ModelError(f"Model {name!r} has no ONNX export shipped; run `affect export onnx` or use torch.")
        chosen = "torch"
    if chosen == "onnxruntime" and on_cpu(device):  # decided without importing torch where possible
        runner = OnnxRunner(str(verified_path(name, onnx=True)), threads)
        if runner.source_sha256 in (None, spec.sha256):
            return runner
        if backend == "onnxruntime":
            raise ModelError(f"The ONNX twin {spec.onnx} of model {name!r} was exported from other weights than "
                             f"{spec.weights}; re-run `affect export onnx` or use backend='torch'.")
        logging.getLogger(__name__).warning("ONNX twin %s of %r is stale; running it with torch.", spec.onnx, name)
    torch_device = resolve_device(device)
    return TorchRunner(create_model(name, device=torch_device), torch_device)
