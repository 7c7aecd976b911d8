"""Local worker processes for a batch: each loads the models once, takes one unit at a time and holds at most
`memory_mb` of address space; a worker that dies costs only the unit it held, which goes to a fresh worker.

Our own small pool rather than concurrent.futures or multiprocessing: a ProcessPoolExecutor whose worker dies
breaks as a whole and cannot say which task killed it, so every file in flight would be charged with the crash;
and multiprocessing's spawn re-imports the caller's main module, so a script calling run_batch without an
`if __name__ == "__main__"` guard would start batches inside its workers. Workers here are `python -m
affect_sdk.batch.local` with two pipes, in a session of their own: Ctrl-C reaches the parent alone, which ends them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from affect_sdk.batch.plan import Unit
from affect_sdk.batch.work import UnitResult, analyze_unit
from affect_sdk.errors import AffectError
from affect_sdk.predict import PredictOptions

STOP_WAIT_S = 5.0  # how long an idle worker may take to leave after it is asked to


@dataclass
class _Job:
    unit_id: int
    unit: Unit
    attempt: int


class _Worker:
    """One worker process and its two pipes; `ready` once it has loaded the models, `job` while it works."""

    def __init__(self, options: PredictOptions, memory_mb: int | None) -> None:
        to_child, to_parent = os.pipe(), os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "affect_sdk.batch.local", str(to_child[0]), str(to_parent[1]),
             str(memory_mb or 0)], pass_fds=(to_child[0], to_parent[1]), stdin=subprocess.DEVNULL,
            start_new_session=True)
        os.close(to_child[0])
        os.close(to_parent[1])
        self.send_conn = Connection(to_child[1], readable=False)
        self.conn = Connection(to_parent[0], writable=False)
        self.ready = False
        self.job: _Job | None = None
        self.send_conn.send(options)

    @property
    def pid(self) -> int:
        return self.process.pid

    def give(self, job: _Job) -> None:
        self.job = job
        try:
            self.send_conn.send((job.unit_id, job.unit))
        except OSError:  # it died between two units: its pipe reads EOF next, and the unit is retried
            pass

    def receive(self) -> Any:
        """The next message, or None when the worker is gone."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def stop(self, *, at_once: bool = False) -> int | None:
        """End the worker (asked politely when idle) and return its exit code."""
        try:
            if not at_once:
                self.send_conn.send(None)
        except OSError:
            pass
        try:
            self.process.wait(0 if at_once or self.job is not None else STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.send_conn.close()
        self.conn.close()
        return self.process.returncode


def run_local(units: list[Unit], options: PredictOptions, *, workers: int, memory_mb: int | None, retries: int,
              on_result: Callable[[UnitResult], Any],
              on_start: Callable[[int, Unit, int], Any] | None = None) -> None:
    """Analyse `units` in `workers` processes, calling on_result(UnitResult) here as each finishes (in any order)
    and on_start(unit_id, unit, worker pid) as each is handed out. A unit whose worker died is tried again in a
    fresh worker up to `retries` more times, then reported as an error; a worker that cannot even load the models
    stops the batch with one AffectError."""
    pending = deque(_Job(i, unit, 1) for i, unit in enumerate(units))
    pool = [_Worker(options, memory_mb) for _ in range(max(1, min(workers, len(units))))]
    try:
        while pending or any(w.job for w in pool):
            for worker in pool:
                if worker.ready and worker.job is None and pending:
                    job = pending.popleft()
                    worker.give(job)
                    if on_start is not None:
                        on_start(job.unit_id, job.unit, worker.pid)
            waiting = [w for w in pool if w.job is not None or not w.ready]
            ready = set(wait([w.conn for w in waiting]))
            for i, worker in enumerate(pool):
                if worker.conn not in ready:
                    continue
                message = worker.receive()
                if isinstance(message, UnitResult) and worker.job is not None:
                    on_result(replace(message, attempts=worker.job.attempt))
                    worker.job = None
                elif message == "ready":
                    worker.ready = True
                elif isinstance(message, str) or (message is None and not worker.ready):
                    code = worker.stop(at_once=True)
                    raise AffectError(message if isinstance(message, str) else
                                      f"A batch worker process could not start ({_how(code)}).")
                else:  # it died while it held a unit
                    job, worker.job = worker.job, None
                    code = worker.stop(at_once=True)
                    pool[i] = _Worker(options, memory_mb)
                    if job is None:
                        continue
                    if job.attempt <= retries:
                        pending.appendleft(replace(job, attempt=job.attempt + 1))
                    else:
                        on_result(UnitResult(job.unit_id, None, f"The worker process analysing {job.unit.file} "
                                             f"died ({_how(code)}) on each of {job.attempt} attempts.",
                                             attempts=job.attempt))
    finally:
        for worker in pool:
            worker.stop()


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"{name}, perhaps out of memory" if name == "SIGKILL" else name
    return f"exit code {exitcode}"


def worker_main(read_fd: int, write_fd: int, memory_mb: int) -> None:
    """A worker process: options first, then units in and results out until None or the parent's pipe closes."""
    import resource

    from affect_sdk.predict import Predictor

    conn_in, conn_out = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    if memory_mb:
        limit = int(memory_mb) << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        options = conn_in.recv()
        predictor = Predictor(options)
        predictor.face.detector  # noqa: B018 - the models load once, here, not with the first file
        predictor.speech  # noqa: B018
        if options.fuse:
            predictor.voice  # noqa: B018
    except (EOFError, OSError):
        return
    except AffectError as exc:
        conn_out.send(f"A batch worker could not load the models: {exc}")
        return
    conn_out.send("ready")
    while True:
        try:
            message = conn_in.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        unit_id, unit = message
        conn_out.send(analyze_unit(predictor, unit, unit_id))


if __name__ == "__main__":
    worker_main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
