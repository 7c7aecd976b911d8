"""Batch analysis at scale: many recordings into one Parquet dataset, in local worker processes or on Ray.

    from affect_sdk.batch import BatchOptions, run_batch
    summary = run_batch(["study/"], "study.parquet", BatchOptions(workers=4))       # or ray="auto"
    rows = pandas.read_parquet("study.parquet")                  # the columns of `affect predict --csv`
    status = pandas.read_parquet("study.parquet/_status.parquet")  # one row per file: ok or the error, seconds

The output folder is described in affect_sdk.batch.store; how work is cut and put back together in
affect_sdk.batch.plan and affect_sdk.batch.work. A rerun into the same folder skips every file finished before
with the same content (sha256) and the same models and options; files that failed are tried again.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from affect_sdk.batch.plan import Unit, batch_files, content_sha256, models_sha256, plan_file
from affect_sdk.batch.store import BatchStore
from affect_sdk.batch.work import UnitResult, stitch
from affect_sdk.errors import AffectError, InputError
from affect_sdk.predict import PredictOptions

__all__ = ["BatchOptions", "BatchSummary", "run_batch"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs (what each file gives is `predict`, the options of `affect predict`)."""

    predict: PredictOptions = PredictOptions()
    workers: int | None = None  # processes (local) or actors (Ray); None: one per core / per CPU of the cluster
    ray: str | None = None  # None: local processes; "auto" (the running cluster), "local" or a cluster address
    segment_s: float = 120.0  # videos longer than this are cut into parts analysed in parallel; inf: never
    retries: int = 2  # a unit whose worker died is tried this many more times
    memory_mb: int | None = 4096  # address space of each local worker process; None: unlimited

    def check(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be 1 or more; got {self.workers}.")
        if not (self.segment_s > 0):  # NaN too
            raise InputError(f"segment_s must be a positive number of seconds (inf: never cut); got {self.segment_s}.")
        if self.retries < 0:
            raise InputError(f"retries must be 0 or more; got {self.retries}.")
        if self.memory_mb is not None and self.memory_mb < 512:
            raise InputError(f"memory_mb must be at least 512 (the models alone take about 400 MB); got "
                             f"{self.memory_mb}.")


@dataclass
class BatchSummary:
    """What one run did: files analysed now (ok or failed), skipped as done before, rows written, seconds."""

    out: str
    files: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    rows: int = 0
    seconds: float = 0.0  # wall time of the run
    work_seconds: float = 0.0  # time the workers spent on units, all added up
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_batch(inputs: Iterable[str | Path], out: str | Path, options: BatchOptions = BatchOptions(), *,
              on_plan: Callable[[int], Any] | None = None, on_file: Callable[[dict[str, Any]], Any] | None = None,
              on_start: Callable[[int, Unit, int], Any] | None = None) -> BatchSummary:
    """Analyse every file under `inputs` (files, folders, manifest CSVs) into the dataset folder `out`.
    `on_plan(n)` is called with the number of files to analyse (the rest were done before), `on_file(status
    entry)` as each file finishes, `on_start(unit_id, unit, pid)` as a local worker takes a unit (progress, or a
    test that kills that worker)."""
    options.check()
    started = time.perf_counter()
    files = batch_files(inputs)  # a missing path is one InputError before the output folder is touched
    store = BatchStore(out)
    summary = BatchSummary(str(out))
    try:
        collector = _Collector(store, summary, on_file)
        models = models_sha256(options.predict, options.segment_s)
        for path in files:
            collector.plan(path, models, options)
        summary.files = len(files)
        if on_plan is not None:
            on_plan(len(files) - summary.skipped)
        if collector.units:
            workers = options.workers or (None if options.ray else os.cpu_count() or 1)
            if options.ray:
                from affect_sdk.batch.on_ray import run_ray

                run_ray(collector.units, options.predict, address=options.ray, workers=workers,
                        retries=options.retries, on_result=collector.add)
            else:
                from affect_sdk.batch.local import run_local

                run_local(collector.units, options.predict, workers=workers, memory_mb=options.memory_mb,
                          retries=options.retries, on_result=collector.add, on_start=on_start)
    finally:
        store.write_status()
        store.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


class _Collector:
    """Plans the files, then takes unit results as they come (any order) and finishes each file once all its
    parts are in: stitched rows and an ok line, or the first part's error."""

    def __init__(self, store: BatchStore, summary: BatchSummary,
                 on_file: Callable[[dict[str, Any]], Any] | None) -> None:
        self.store, self.summary, self.on_file = store, summary, on_file
        self.units: list[Unit] = []
        self.files: dict[str, dict[str, Any]] = {}

    def plan(self, path: Path, models: str, options: BatchOptions) -> None:
        file = str(path)
        try:
            stat = path.stat()
            digest = self.store.known_hash(file, stat.st_size, stat.st_mtime_ns) or content_sha256(path)
        except OSError as exc:  # missing from a manifest, unreadable, a folder: this file's error, not the batch's
            self._finish({"file": file, "status": "error", "message": f"Cannot read {file}: {exc.strerror or exc}.",
                          "seconds": 0.0, "parts": 0, "attempts": 0, "models_sha256": models}, None)
            return
        if self.store.is_done(file, digest, models):
            self.summary.skipped += 1
            return
        parts = plan_file(path, options.predict, options.segment_s)
        self.files[file] = {"entry": {"file": file, "content_sha256": digest, "models_sha256": models,
                                      "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "parts": len(parts)},
                            "units": parts, "results": {}}
        self.units.extend(parts)

    def add(self, result: UnitResult) -> None:
        if result.fatal:  # a model or a device that fails would fail every file alike
            raise AffectError(result.error)
        unit = self.units[result.unit_id]
        pending = self.files.get(unit.file)
        if pending is None:  # a duplicate (Ray re-ran a unit whose result had already come): already written
            return
        pending["results"][unit.part] = result
        if len(pending["results"]) < unit.parts:
            return
        del self.files[unit.file]  # its rows go to disk now and leave this process's memory
        results = [pending["results"][k] for k in range(unit.parts)]
        errors = [r.error for r in results if r.error is not None]
        entry = {**pending["entry"], "seconds": round(sum(r.seconds for r in results), 3),
                 "attempts": max(r.attempts for r in results)}
        self.summary.work_seconds += entry["seconds"]
        if errors:
            self._finish({**entry, "status": "error", "message": errors[0]}, None)
        else:
            rows = stitch([r.rows for r in results], [u.times[0] for u in pending["units"]])
            self._finish({**entry, "status": "ok", "rows": len(rows)}, rows)

    def _finish(self, entry: dict[str, Any], rows: list[dict[str, Any]] | None) -> None:
        entry = self.store.finish(entry, rows)
        if rows is None:
            self.summary.failed += 1
            self.summary.errors.append({"file": entry["file"], "message": entry["message"]})
        else:
            self.summary.ok += 1
            self.summary.rows += len(rows)
        if self.on_file is not None:
            self.on_file(entry)
