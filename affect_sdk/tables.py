"""Records as a table: one row per face per frame (plus speech windows and fused results), for pandas, CSV, Parquet.

    rows = table_rows(records)                 # plain dicts, no pandas needed
    write_csv(rows, "study.csv")               # the csv module only
    df = affect_sdk.to_dataframe(records)      # pandas (pip install 'affect-sdk[tables]')

Records are what the JSONL holds (dicts) or the result objects themselves (FaceAffect, SpeechAffect, FusedAffect).
`source` says what a row is: "face" (one face in one frame), "speech" (one speech window) or "fused".
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES
from affect_sdk.output import replace_file

COLUMNS = ("file", "source", "t", "track_id", "label", *CLASSES, "valence", "arousal", "confidence",
           "box_x", "box_y", "box_w", "box_h")
ROW_KINDS = ("face", "speech", "fused")


def _faces_of(record: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Face records inside a record: itself, or the faces of a frame / image record (which carry the file and t)."""
    if record.get("kind") == "face":
        yield record
    elif record.get("kind") in ("frame", "image"):
        for face in record.get("faces") or ():
            yield {"file": record.get("file"), "t": record.get("t", 0.0), **face}


def _row(record: dict[str, Any], source: str, file: str | None) -> dict[str, Any]:
    probs = record.get("probs") or {}
    box = record.get("box") or (None, None, None, None)
    row = {"file": record.get("file", file), "source": source, "t": record.get("t"),
           "track_id": record.get("track_id"), "label": record.get("label")}
    row.update({c: probs.get(c) for c in CLASSES})
    row.update(valence=record.get("valence"), arousal=record.get("arousal"), confidence=record.get("confidence"),
               box_x=box[0], box_y=box[1], box_w=box[2], box_h=box[3])
    return row


def table_rows(records: Iterable[Any], *, sources: Iterable[str] = ROW_KINDS) -> list[dict[str, Any]]:
    """One row per face per frame, per speech window and per fused result (as chosen by `sources`), in COLUMNS.

    A record's `file` (batch predictions carry one) fills the file column; the last session header's first input
    does otherwise."""
    wanted = set(sources)
    unknown = wanted - set(ROW_KINDS)
    if unknown:
        raise InputError(f"Table sources must be among {', '.join(ROW_KINDS)}; got {', '.join(sorted(unknown))}.")
    rows: list[dict[str, Any]] = []
    file = None
    for record in records:
        data = record.to_dict() if hasattr(record, "to_dict") else record
        kind = data.get("kind")
        if kind == "session":
            inputs = data.get("inputs") or {}
            file = next((str(v) for v in inputs.values() if v is not None), None)
        elif kind in ("face", "frame", "image") and "face" in wanted:
            rows.extend(_row(face, "face", file) for face in _faces_of(data))
        elif kind in ("speech", "fused") and kind in wanted:
            rows.append(_row(data, kind, file))
    return rows


def to_dataframe(records: Iterable[Any], *, sources: Iterable[str] = ROW_KINDS):
    """A pandas DataFrame of table_rows(records), columns in COLUMNS order."""
    try:
        import pandas as pd
    except ImportError:
        raise InputError("to_dataframe needs pandas: pip install 'affect-sdk[tables]' (or write CSV with "
                         "affect_sdk.tables.write_csv, which needs nothing).") from None
    frame = pd.DataFrame(table_rows(records, sources=sources), columns=list(COLUMNS))
    return frame.astype({"track_id": "Int64"})


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def write_csv(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """The rows as a CSV file (header = COLUMNS), written atomically; needs no pandas."""
    text = csv_text(rows)
    return replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_parquet(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """The rows as a Parquet file (pyarrow), written atomically."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("Parquet output needs pyarrow: pip install 'affect-sdk[tables]' (or use --csv).") from None
    rows = list(rows)
    types = {"file": pa.string(), "source": pa.string(), "label": pa.string(), "track_id": pa.int64()}
    schema = pa.schema([(c, types.get(c, pa.float64())) for c in COLUMNS])
    table = pa.Table.from_pylist([{c: row.get(c) for c in COLUMNS} for row in rows], schema=schema)
    return replace_file(path, lambda tmp: pq.write_table(table, tmp))


def write_tables(rows: list[dict[str, Any]], *, csv_path: str | Path | None = None,
                 parquet_path: str | Path | None = None) -> None:
    """--csv and --parquet of the CLI."""
    if csv_path is not None:
        write_csv(rows, csv_path)
    if parquet_path is not None:
        write_parquet(rows, parquet_path)
