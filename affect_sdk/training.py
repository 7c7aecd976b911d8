"""Training plumbing shared by the vision and audio recipes: seeding, torchrun/DDP, rank-0 logging, checkpoints.

Runs unchanged as `python -m ...` (one process) or under `torchrun --nproc_per_node N` (DistributedDataParallel;
gloo on CPU, nccl on GPU). Checkpoints are our own files: model weights go to safetensors, optimiser state to
torch.save and is loaded back with weights_only=True.
"""
from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from affect_sdk.errors import InputError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group when launched by torchrun (WORLD_SIZE set); a no-op for a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def is_main_process() -> bool:
    """Rank 0 under torchrun, or a plain single process: the one that logs, exports and reports."""
    return int(os.environ.get("RANK", "0")) == 0


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    model = model.to(ctx.device)
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def shard_indices(n: int, epoch: int, seed: int, ctx: DistContext, shuffle: bool = True) -> np.ndarray:
    """This rank's sample indices for one epoch: the same permutation on every rank, split evenly (padded)."""
    order = np.random.default_rng(seed + epoch).permutation(n) if shuffle else np.arange(n)
    per_rank = -(-n // ctx.world_size)
    order = np.resize(order, per_rank * ctx.world_size)  # pad by wrapping so every rank takes the same step count
    return order[ctx.rank::ctx.world_size]


def all_reduce_mean(value: float, ctx: DistContext) -> float:
    if not ctx.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def _cpu_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in unwrap(module).state_dict().items()}


def _save_weights_atomically(module: torch.nn.Module, path: Path) -> None:
    save_file(_cpu_tensors(module), str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    state: dict[str, Any], average: "WeightAverage | None" = None) -> None:
    """Write model.safetensors, optim.pt (and ema.safetensors with a weight average), then state.json, which
    marks the checkpoint complete: atomically enough for resuming (rank 0 only)."""
    directory.mkdir(parents=True, exist_ok=True)
    _save_weights_atomically(model, directory / "model.safetensors")
    if average is not None:
        _save_weights_atomically(average.model, directory / "ema.safetensors")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), directory / "optim.pt.tmp")
        os.replace(directory / "optim.pt.tmp", directory / "optim.pt")
    (directory / "state.json").write_text(json.dumps(state, indent=2))


def load_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    average: "WeightAverage | None" = None) -> dict[str, Any] | None:
    """Restore a checkpoint written by save_checkpoint; None when there is none to resume from. A weight average
    resumes from its file, or starts from the restored weights when the checkpoint was written without one."""
    state_file = directory / "state.json"
    if not state_file.is_file():
        return None
    unwrap(model).load_state_dict(load_file(str(directory / "model.safetensors")))
    if optimizer is not None and (directory / "optim.pt").is_file():
        optimizer.load_state_dict(torch.load(directory / "optim.pt", weights_only=True, map_location="cpu"))
    if average is not None:
        ema = directory / "ema.safetensors"
        average.model.load_state_dict(load_file(str(ema)) if ema.is_file() else unwrap(model).state_dict())
    return json.loads(state_file.read_text())


def check_ema_decay(decay: float) -> None:
    """--ema: 0 (off) or a per-step decay below 1; checked before any data is read."""
    if not 0.0 <= decay < 1.0:
        raise InputError(f"--ema must lie in [0, 1) (a per-step decay such as 0.998; 0 is off), not {decay}.")


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics (Polyak averaging, as timm's
    ModelEma): `decay` per optimizer step, so 0.998 averages over about the last 500 steps. The average is often
    better than the last weights of a noisy run; it is evaluated, selected and exported instead of them, and
    save_checkpoint / load_checkpoint carry it. Integer buffers (BatchNorm's batch counter) are copied."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        check_ema_decay(decay)
        if decay == 0.0:
            raise ValueError("a weight average needs a decay above 0 (0 means no average)")
        import copy

        self.decay = float(decay)
        self.model = copy.deepcopy(unwrap(model)).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        current = unwrap(model).state_dict()
        for name, avg in self.model.state_dict().items():
            if avg.dtype.is_floating_point:
                avg.mul_(self.decay).add_(current[name].detach(), alpha=1.0 - self.decay)
            else:
                avg.copy_(current[name])


def export_weights(model: torch.nn.Module, path: Path) -> str:
    """Save final weights as safetensors and return their sha256 (for the registry)."""
    from affect_sdk.registry import file_sha256

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_cpu_tensors(model), str(path))
    return file_sha256(path)


def write_replica_digest(model: torch.nn.Module, ctx: DistContext, directory: Path) -> None:
    """Under torchrun, every rank writes the sha256 of its parameters to directory/replicas/rank<N>.sha256.

    DDP must leave identical weights on every rank; these files make that checkable (tests/test_training_ddp.py).
    Buffers are left out on purpose: BatchNorm running statistics follow each rank's own last batch.
    """
    if not ctx.distributed:
        return
    import hashlib

    digest = hashlib.sha256()
    for name, param in sorted(unwrap(model).named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(directory) / "replicas"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{ctx.rank}.sha256").write_text(digest.hexdigest() + "\n")


def lr_at(step: int, total: int, base: float, warmup_frac: float) -> float:
    """The one lr schedule of both recipes: linear warm-up over `warmup_frac` of the steps, then cosine decay to 0;
    a pure function of the step, so resuming needs only the step."""
    warmup = max(1, int(total * warmup_frac))
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
