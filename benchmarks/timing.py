"""Shared benchmark helpers: median-of-repeats timing, one result row type, and a description of the machine."""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Seconds per repeat: median wall time (the number reported), fastest and slowest, and the median CPU time.

    CPU time (all threads of this process) hardly changes when other jobs share the cores, while wall time
    does; on a busy machine wall/CPU says how much of a number is waiting for a core.
    """

    median_s: float
    min_s: float
    max_s: float
    cpu_s: float
    repeats: int


def time_repeats(fn: Callable[[], Any], *, repeats: int = 7, warmup: int = 1) -> Timing:
    """Run fn `warmup` times untimed, then `repeats` times timed (perf_counter and process_time)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return Timing(float(np.median(wall)), float(min(wall)), float(max(wall)), float(np.median(cpu)), repeats)


def calls_per_repeat(fn: Callable[[], Any], *, budget_s: float = 0.5, most: int = 200) -> int:
    """How many calls of fn fill about budget_s (at least 1): slow configurations get fewer calls, not more time."""
    fn()  # the first call may pay for lazy initialisation
    start = time.perf_counter()
    fn()
    return int(max(1, min(most, budget_s // max(time.perf_counter() - start, 1e-6))))


@dataclass
class Row:
    """One line of the benchmark table (and one object of its JSON)."""

    item: str
    value: float | None
    unit: str
    goal: str = ""  # e.g. ">= 500"; empty when the item has no goal
    met: bool | None = None
    detail: str = ""  # backend, batch, repeats, what bounds it ...
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def meets(value: float | None, goal: str) -> bool | None:
    """Whether value satisfies a goal written as '>= X' or '<= X' (None when there is no value or goal)."""
    if value is None or not goal:
        return None
    op, _, bound = goal.partition(" ")
    return value >= float(bound) if op == ">=" else value <= float(bound)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def busy_processes(limit: int = 6) -> list[str]:
    """The processes using the most CPU right now (other benchmarks and training jobs skew the numbers)."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu", "--no-headers"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    mine = {str(os.getpid()), str(os.getppid())}
    rows = [line.split(None, 1) for line in out.splitlines() if line.strip()]
    lines = [" ".join(rest.split())[:140] for pid, rest in rows if pid not in mine and " ps -eo " not in f" {rest}"]
    return [line for line in lines if not line.startswith("0.0 ")][:limit]


def machine() -> dict[str, Any]:
    """Cores, CPU model, load and library versions: the context every number needs."""
    import onnxruntime
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": os.cpu_count(), "usable_cores": usable, "cpu": cpu, "load_avg": [round(x, 2) for x in
            os.getloadavg()], "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
            "busy_processes": busy_processes()}
