"""The training commands, unchanged, under torchrun: 2 CPU processes (gloo) on tiny real data end with equal weights.

Each rank writes the sha256 of its parameters (affect_sdk.training.write_replica_digest); DDP averages the
gradients of the ranks' different batches, so equal digests after a few steps mean the replicas stayed in sync.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def torchrun(out: Path, *command: str) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m affect_sdk.cli <command>` (a free port, CPU only)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "affect_sdk.cli", *command, "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def replica_digests(out: Path) -> list[str]:
    return [(out / "replicas" / f"rank{r}.sha256").read_text().strip() for r in range(2)]


def tiny_ferplus(shared: Path, root: Path, sizes: dict[str, int]) -> Path:
    """The first usable rows of real FER+ splits copied into root (same layout)."""
    from affect_sdk.vision.data import FERPLUS_SPLITS, ferplus_keep, read_ferplus_votes

    for split, n in sizes.items():
        src, dst = shared / "data" / "ferplus" / FERPLUS_SPLITS[split], root / FERPLUS_SPLITS[split]
        dst.mkdir(parents=True)
        lines = (src / "label.csv").read_text().splitlines()
        names, votes = read_ferplus_votes(src)
        keep = [i for i in range(len(names)) if ferplus_keep(votes[i:i + 1])[0]][:n]
        (dst / "label.csv").write_text("\n".join(lines[i] for i in keep) + "\n")
        for i in keep:
            shutil.copyfile(src / names[i], dst / names[i])
    return root


def test_vision_student_training_keeps_ranks_in_sync(tmp_path, shared):
    from affect_sdk.vision.data import cached_ferplus

    data = tiny_ferplus(shared, tmp_path / "ferplus", {"train": 64, "valid": 16})
    cache = tmp_path / "cache"
    for split in ("train", "valid"):  # built once here: two ranks building one cache file would race
        cached_ferplus(data, split, cache)
    out = tmp_path / "run"
    torchrun(out, "train", "vision-student", "--data", str(data), "--cache-dir", str(cache), "--epochs", "1",
             "--batch-size", "8", "--device", "cpu", "--threads", "1")
    state = json.loads((out / "last" / "state.json").read_text())
    assert state["step"] == 64 // 2 // 8  # each rank took its half of the data: 4 steps
    first, second = replica_digests(out)
    assert first == second


def test_audio_training_keeps_ranks_in_sync(tmp_path, shared):
    from affect_sdk.audio.data import build_cache

    data = tmp_path / "ravdess"
    for actor, n in (("01", 6), ("02", 6), ("03", 3)):
        folder = data / f"Actor_{actor}"
        folder.mkdir(parents=True)
        for f in sorted((shared / "data" / "ravdess_speech" / f"Actor_{actor}").glob("*.flac"))[::8][:n]:
            os.symlink(f, folder / f.name)
    cache = tmp_path / "waves.npz"
    build_cache(data, cache)  # once here, not concurrently by both ranks
    out = tmp_path / "run"
    torchrun(out, "train", "audio", "--data", str(data), "--cache", str(cache), "--val-speakers", "3",
             "--test-speakers", "", "--steps", "3", "--batch", "4", "--threads", "1")
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 3
    first, second = replica_digests(out)
    assert first == second


@pytest.fixture(autouse=True)
def _run_from_repo_root(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # `python -m affect_sdk.cli` from the repo
