"""A batch's output folder: a Parquet dataset with one part file per input file, and the per-file status.

    OUT/part-<16 hex>.parquet   the rows of one file (columns of affect_sdk.tables.COLUMNS), whole or absent
    OUT/_status.jsonl           the journal: one line per finished file, appended as it finishes (crash-safe)
    OUT/_status.parquet         the status table: the journal's latest line per file, rewritten at the end

Readers that take the folder as a dataset (pandas, pyarrow, Spark, Ray) skip names that start with "_" or ".",
so `pandas.read_parquet(OUT)` is every row and `pandas.read_parquet(OUT / "_status.parquet")` the status. The
journal, not the table, is what a rerun trusts: a batch killed before its end still skips what it finished.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from affect_sdk.errors import InputError
from affect_sdk.output import JsonlWriter, replace_file
from affect_sdk.tables import write_parquet

STATUS_COLUMNS = ("file", "status", "message", "seconds", "rows", "parts", "attempts", "content_sha256",
                  "models_sha256", "size", "mtime_ns", "part_file", "finished")
JOURNAL, STATUS = "_status.jsonl", "_status.parquet"


def part_name(file: str) -> str:
    """The part file of an input file, named by its path: a rerun after the file changed replaces its rows."""
    return f"part-{hashlib.sha256(file.encode('utf-8')).hexdigest()[:16]}.parquet"


class BatchStore:
    """The output folder of one batch and what earlier runs finished in it."""

    def __init__(self, out: str | Path) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("affect batch writes Parquet, which needs pyarrow: pip install "
                             "'affect-sdk[tables]'.") from None
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"Output {self.out} is a file; affect batch writes a folder (a Parquet dataset, "
                             f"one part per input file): name a new or an earlier batch's folder.")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"Cannot create output folder {self.out}: {exc.strerror or exc}.") from None
        self.latest: dict[str, dict[str, Any]] = self._read_journal()
        self._journal = JsonlWriter(self.out / JOURNAL)

    def _read_journal(self) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        path = self.out / JOURNAL
        if not path.is_file():
            return latest
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # an unterminated last line of a killed run: that file is simply done again
                continue
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                latest[entry["file"]] = entry
        return latest

    def known_hash(self, file: str, size: int, mtime_ns: int) -> str | None:
        """The content hash an earlier run took of this file, if its size and modification time are unchanged
        (hashing thousands of large videos again on every rerun would cost minutes)."""
        entry = self.latest.get(file)
        if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime_ns:
            return entry.get("content_sha256")
        return None

    def is_done(self, file: str, content_sha256: str, models_sha256: str) -> bool:
        """Finished before with the same content and the same models and options, and its rows are there."""
        entry = self.latest.get(file)
        return bool(entry and entry.get("status") == "ok" and entry.get("content_sha256") == content_sha256
                    and entry.get("models_sha256") == models_sha256
                    and (self.out / entry.get("part_file", "")).is_file())

    def finish(self, entry: dict[str, Any], rows: list[dict[str, Any]] | None) -> dict[str, Any]:
        """Record one file: its rows' part file first (atomically), then its journal line; a failed file's old
        rows are removed, so the dataset never holds rows its status does not vouch for."""
        part = self.out / part_name(entry["file"])
        if rows is not None:
            write_parquet(rows, part)
        else:
            part.unlink(missing_ok=True)
        entry = {c: entry.get(c) for c in STATUS_COLUMNS} | {
            "part_file": part.name if rows is not None else None, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._journal.write(entry)
        self.latest[entry["file"]] = entry
        return entry

    def write_status(self) -> Path:
        """_status.parquet: the latest status of every file this folder has seen, written atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {"seconds": pa.float64(), "rows": pa.int64(), "parts": pa.int64(), "attempts": pa.int64(),
                 "size": pa.int64(), "mtime_ns": pa.int64()}
        schema = pa.schema([(c, types.get(c, pa.string())) for c in STATUS_COLUMNS])
        entries = [{c: e.get(c) for c in STATUS_COLUMNS} for e in self.latest.values()]
        table = pa.Table.from_pylist(entries, schema=schema)
        return replace_file(self.out / STATUS, lambda tmp: pq.write_table(table, tmp))

    def close(self) -> None:
        self._journal.close()
