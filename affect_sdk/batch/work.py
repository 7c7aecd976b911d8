"""The worker's side of a batch: one unit of work into table rows (or one error sentence), and the parts of a long
video stitched back into one file's rows. The same code runs in local worker processes and in Ray actors."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from affect_sdk.batch.plan import Unit
from affect_sdk.errors import AffectError, DeviceError, ModelError
from affect_sdk.tables import table_rows

LINK_GAP_S = 1.0  # a track seen this close to a cut, on either side, may be the same person
LINK_IOU = 0.3  # boxes overlapping this much across a cut are one person


@dataclass(frozen=True)
class UnitResult:
    """What one unit gave: its rows, or the error sentence (fatal: a model or device problem that would fail every
    file alike, so the batch stops). `seconds` is the time it took in the worker."""

    unit_id: int
    rows: list[dict[str, Any]] | None
    error: str | None = None
    fatal: bool = False
    seconds: float = 0.0
    attempts: int = 1


def analyze_unit(predictor: Any, unit: Unit, unit_id: int) -> UnitResult:
    """Rows of one unit. Every failure is a result, never a traceback: a bad file must not end a batch of
    thousands, and an unforeseen error in a decoder is still one file's problem."""
    start = time.perf_counter()
    try:
        if unit.span is None:
            records: Iterable[dict[str, Any]] = predictor.records(Path(unit.file))
        else:
            records = keep_part(predictor.video_records(Path(unit.file), unit.span), unit)
        rows = table_rows(records)
    except (DeviceError, ModelError) as exc:
        return UnitResult(unit_id, None, str(exc), True, time.perf_counter() - start)
    except AffectError as exc:
        return UnitResult(unit_id, None, str(exc), False, time.perf_counter() - start)
    except MemoryError:  # a worker's address space is capped (affect batch --worker-memory-mb)
        return UnitResult(unit_id, None, f"Analysing {unit.file} needed more memory than a worker may use.", False,
                          time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        return UnitResult(unit_id, None, f"{type(exc).__name__} while analysing {unit.file}: {exc}", False,
                          time.perf_counter() - start)
    return UnitResult(unit_id, rows, None, False, time.perf_counter() - start)


def keep_part(records: Iterable[dict[str, Any]], unit: Unit) -> Iterator[dict[str, Any]]:
    """The records a part owns: its frames, the fused results at its frame times and the speech windows that start
    in its share of the hop grid (it reads more video and sound than that, for context). Before the last part's
    end, a fused result at no frame's time is dropped: it is a speech window fused on its own because the part's
    video ended, which the whole file's next frame would have fused instead."""
    t0, t1 = unit.times
    s0, s1 = (t - 1e-4 for t in unit.speech)  # window starts lie on the hop grid; 0.1 ms absorbs rounding
    last = unit.span is None or unit.span.end_frame is None
    frame_times: set[float] = set()
    for record in records:
        kind = record.get("kind")
        if kind == "speech":
            if s0 <= record["start"] < s1:
                yield record
        elif kind in ("frame", "fused") and t0 <= record["t"] < t1:  # frames read before the part only set up
            if kind == "frame":  # smoothing and tracks
                frame_times.add(record["t"])  # a frame's record comes before the fused results at its time
                yield record
            elif last or record["t"] in frame_times:
                yield record


def stitch(parts: list[list[dict[str, Any]]], cuts: list[float]) -> list[dict[str, Any]]:
    """One file's rows from its parts in order (`cuts[k]`: the time part k starts). Track ids are per session, so
    each part's start afresh: a track seen within LINK_GAP_S of a cut whose box overlaps (IoU >= LINK_IOU) one
    in the next part keeps its id across the cut; every other track of a later part gets a new id. The first
    part keeps its ids, so a file in one part reads exactly as `affect predict` gives it."""
    out: list[dict[str, Any]] = []
    last_seen: dict[int, tuple[float, tuple]] = {}  # stitched id -> (t, box) of its latest face row
    next_id = 0
    for k, rows in enumerate(parts):
        local = sorted({r["track_id"] for r in rows if r["track_id"] is not None})
        if k == 0:
            mapping = {tid: tid for tid in local}
        else:
            mapping = link_tracks(last_seen, _first_seen(rows), cuts[k])
            for tid in local:
                if tid not in mapping:
                    mapping[tid], next_id = next_id, next_id + 1
        next_id = max([next_id, *(v + 1 for v in mapping.values())])
        for row in rows:
            if row["track_id"] is not None:
                row = {**row, "track_id": mapping[row["track_id"]]}
                if row["source"] == "face":
                    last_seen[row["track_id"]] = (row["t"], _box(row))
            out.append(row)
    return out


def link_tracks(before: dict[int, tuple[float, tuple]], after: dict[int, tuple[float, tuple]],
                cut: float) -> dict[int, int]:
    """{id after the cut: id before it} for tracks that end and begin near `cut` with overlapping boxes, the best
    overlaps first (each id used once)."""
    pairs = []
    for new, (t_new, box_new) in after.items():
        if t_new > cut + LINK_GAP_S:
            continue
        for old, (t_old, box_old) in before.items():
            if t_old >= cut - LINK_GAP_S and (overlap := iou(box_old, box_new)) >= LINK_IOU:
                pairs.append((overlap, old, new))
    mapping: dict[int, int] = {}
    for _, old, new in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if new not in mapping and old not in mapping.values():
            mapping[new] = old
    return mapping


def iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union > 0 else 0.0


def _first_seen(rows: list[dict[str, Any]]) -> dict[int, tuple[float, tuple]]:
    first: dict[int, tuple[float, tuple]] = {}
    for row in rows:
        if row["source"] == "face" and row["track_id"] is not None and row["track_id"] not in first:
            first[row["track_id"]] = (row["t"], _box(row))
    return first


def _box(row: dict[str, Any]) -> tuple:
    return row["box_x"], row["box_y"], row["box_w"], row["box_h"]
