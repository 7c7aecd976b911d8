"""The record schema (affect-records/1, docs/records.md): the session header, and writing records in time order.

Every JSONL file (and every `affect serve` connection) starts with one `"kind": "session"` header saying when, with
which models, on which inputs and with which options the records that follow were made. Records after it are in
non-decreasing `t`: speech windows are only known a second or more after their centre, so `RecordOrder` holds the
records back until nothing earlier can still come (a watermark the session advances), then releases them sorted.
"""
from __future__ import annotations

import heapq
import itertools
import json
import uuid
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from affect_sdk.errors import AffectError, InputError
from affect_sdk.labels import CLASSES
from affect_sdk.output import JsonlWriter

SCHEMA = "affect-records/1"
JSONL_MODES = ("refuse", "append", "overwrite")  # what to do with an existing, non-empty JSONL file


def schema_path() -> Path:
    """The JSON Schema of one record (package data), for validating files with any JSON Schema tool."""
    return Path(str(resources.files("affect_sdk") / "schema" / "records-v1.json"))


def load_schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


def model_entry(name: str | None) -> dict[str, Any] | None:
    """{"name", "sha256"} of a registered model (sha256 None for a run folder or an unregistered name)."""
    if name is None:
        return None
    from affect_sdk.registry import get_spec

    try:
        sha256 = get_spec(name).sha256
    except AffectError:
        sha256 = None
    return {"name": str(name), "sha256": sha256}


def session_header(*, models: dict[str, dict[str, Any] | None], inputs: dict[str, Any] | None = None,
                   options: dict[str, Any] | None = None, session_id: str | None = None,
                   **extra: Any) -> dict[str, Any]:
    """The first record of a session: schema, wall-clock start with its zone, id, models, inputs and options."""
    return {
        "kind": "session",
        "schema": SCHEMA,
        "session_id": session_id or uuid.uuid4().hex,
        "started_at": datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds"),
        "classes": list(CLASSES),
        "models": {role: entry for role, entry in models.items() if entry is not None},
        "inputs": inputs or {},
        "options": options or {},
        **extra,
    }


def check_jsonl_target(path: str | Path, mode: str = "refuse") -> Path:
    """InputError when `path` already holds records and mode is "refuse" (the file is left as it is)."""
    if mode not in JSONL_MODES:
        raise InputError(f"JSONL mode must be one of {', '.join(JSONL_MODES)}; got {mode!r}.")
    path = Path(path)
    if mode == "refuse" and path.is_file() and path.stat().st_size > 0:
        raise InputError(f"{path} already holds records; pass --append to add this session after them or "
                         f"--overwrite to replace them.")
    return path


def open_jsonl(path: str | Path, mode: str = "refuse") -> JsonlWriter:
    """A JsonlWriter on `path`: an existing non-empty file is refused (InputError, file untouched) unless mode is
    "append" (a new session header follows the old records) or "overwrite" (emptied first)."""
    path = check_jsonl_target(path, mode)
    return JsonlWriter(path, overwrite=mode == "overwrite")  # emptied as it is opened: nothing half-done


class RecordOrder:
    """Holds records until `release(up_to)` says no record before `up_to` can still arrive; then hands them to
    `sink` sorted by t (ties in arrival order). A record without a t (an event) goes after every record added
    before it."""

    def __init__(self, sink: Callable[[dict[str, Any]], Any]) -> None:
        self.sink = sink
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._count = itertools.count()
        self._latest = float("-inf")  # the latest t added so far
        self.last_t = float("-inf")  # the latest t released

    def add(self, record: Any) -> None:
        data = record.to_dict() if hasattr(record, "to_dict") else dict(record)
        t = data.get("t")
        key = self._latest if t is None else float(t)
        self._latest = max(self._latest, key)
        # a late straggler (only possible when a watermark was wrong) goes out at the time already reached, so the
        # file's order of release stays monotonic
        heapq.heappush(self._heap, (max(key, self.last_t), next(self._count), data))

    def release(self, up_to: float = float("inf")) -> None:
        while self._heap and self._heap[0][0] <= up_to:
            key, _, data = heapq.heappop(self._heap)
            self.last_t = max(self.last_t, key)
            self.sink(data)

    def __len__(self) -> int:
        return len(self._heap)


class Recorder:
    """Where a session's records go: a JSONL file (opened by open_jsonl) and/or an `on_record(dict)` callback, the
    header first, then every record in time order (RecordOrder)."""

    def __init__(self, writer: JsonlWriter | None = None, on_record: Callable[[dict[str, Any]], Any] | None = None
                 ) -> None:
        self.writer, self.on_record = writer, on_record
        self._order = RecordOrder(self._send)
        self.closed = False

    @property
    def active(self) -> bool:
        return self.writer is not None or self.on_record is not None

    def _send(self, data: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.write(data)
        if self.on_record is not None:
            self.on_record(data)

    def header(self, record: dict[str, Any]) -> None:
        if self.active:
            self._send(record)

    def add(self, record: Any) -> None:
        if self.active and not self.closed:
            self._order.add(record)

    def release(self, up_to: float) -> None:
        if self.active and not self.closed:
            try:
                self._order.release(up_to)
            except BaseException:  # a failed write (disk full): its error is the one to report; write no more
                self.closed = True
                if self.writer is not None:
                    self.writer.close()
                raise

    def close(self) -> None:
        """Write everything still held back, then close the file."""
        if self.closed:
            return
        try:
            if self.active:
                self._order.release(float("inf"))
        finally:
            self.closed = True
            if self.writer is not None:
                self.writer.close()


def sync_options(sync: Any) -> dict[str, Any]:
    """The fusion options of a SyncConfig, as the session header records them."""
    return {"rule": sync.rule, "smoothing": sync.smoothing_tau_s or 0.0,
            "max_face_age_s": sync.max_face_age_s, "max_speech_age_s": sync.max_speech_age_s}
