"""`python -m benchmarks [--quick] [--only face,yunet,speech,live,cold,gmac,batch] [--out FILE]`: the table and its
JSON."""
from __future__ import annotations

import argparse
import importlib
import json
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.timing import Row, machine, peak_rss_mb


def _speech(quick: bool) -> list[Row]:
    """Speech real-time factor through benchmarks/audio_rtf.py (the streaming path: resample, VAD, log-mel, model)."""
    import torch

    from affect_sdk.registry import default_model, get_spec
    from benchmarks import audio_rtf
    from benchmarks.timing import meets

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as audio_rtf.py measures it: one core, the other is the face thread's
    try:
        seconds, repeats = (20.0, 3) if quick else (60.0, 5)
        wave = audio_rtf.speech_signal(seconds)
        backends = ["torch"] + (["onnxruntime"] if get_spec(default_model("speech")).onnx else [])
        rows = []
        for backend in backends:
            runs, cpu = [], []
            for _ in range(repeats):
                start = time.process_time()
                runs.append(audio_rtf.measure(backend, wave, 48000, 0.1, 2.0, 0.5))
                cpu.append((time.process_time() - start) / (runs[-1]["audio_s"] + 3.0))  # + its 3 s warm-up
            rtf, cpu_rtf = float(np.median([r["rtf"] for r in runs])), float(np.median(cpu))
            goal = "<= 0.01" if backend == backends[-1] else ""
            rows.append(Row(f"speech RTF {runs[0]['backend']}", round(rtf, 4), "x real time", goal, meets(rtf, goal),
                            f"{runs[0]['audio_s']:.0f} s of RAVDESS speech at 48 kHz in 100 ms chunks, 2 s windows "
                            f"every 0.5 s; {float(np.median([r['ms_per_window'] for r in runs])):.2f} ms/window; "
                            f"CPU-time RTF ~{cpu_rtf:.4f}; median of {repeats}", {"runs": runs, "cpu_rtf": cpu_rtf}))
        return rows
    finally:
        torch.set_num_threads(threads)


def _live(quick: bool) -> list[Row]:
    """benchmarks/live.py in its own process, so its memory figures hold only the live session."""
    import subprocess
    import sys
    import tempfile

    from benchmarks import live

    minutes, fast_seconds = (0.5, 10.0) if quick else (5.0, 20.0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "live.json"
        done = subprocess.run([sys.executable, "-m", "benchmarks.live", "--minutes", str(minutes), "--fast-seconds",
                               str(fast_seconds), "--json-out", str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"benchmarks/live.py failed: {done.stderr.strip()[-600:]}")
        return live.rows_of(json.loads(out.read_text()))


def _local(module: str, function: str) -> Callable[[bool], list[Row]]:
    return lambda quick: getattr(importlib.import_module(module), function)(quick=quick)


SECTIONS: dict[str, Callable[[bool], list[Row]]] = {
    "face": _local("benchmarks.inference", "face_student"),
    "yunet": _local("benchmarks.inference", "yunet"),
    "speech": _speech,
    "live": _live,
    "cold": _local("benchmarks.cold_start", "cold_start"),
    "gmac": lambda quick: importlib.import_module("benchmarks.inference").gmac(),
    "batch": _local("benchmarks.batch", "run"),
}


def table(rows: list[Row], info: dict) -> Table:
    title = (f"affect-sdk benchmarks: {info['cores']} cores ({info['usable_cores']} usable), {info['cpu']}; "
             f"load {info['load_avg']} at start; torch {info['torch']} ({info['torch_threads']} threads), "
             f"onnxruntime {info['onnxruntime']}")
    out = Table(title=title, title_justify="left")
    for col, kw in (("item", {}), ("value", {"justify": "right"}), ("unit", {}), ("goal", {}), ("met", {}),
                    ("detail", {"overflow": "fold"})):
        out.add_column(col, **kw)
    for r in rows:
        met = "" if r.met is None else ("[green]yes[/green]" if r.met else "[red]no[/red]")
        value = "-" if r.value is None else f"{r.value:,.4g}" if abs(r.value) < 1e4 else f"{r.value:,.0f}"
        out.add_row(r.item, value, r.unit, r.goal, met, r.detail)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run; numbers are noisier)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks.json"), help="JSON file to write")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")

    console = Console(width=None if Console().is_terminal else 200)
    info = machine()
    started = time.time()
    rows: list[Row] = []
    for name in chosen:
        console.print(f"[dim]running {name} ...[/dim]")
        try:
            rows += SECTIONS[name](args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others' numbers
            rows.append(Row(f"{name} (failed)", None, "", detail=f"{type(exc).__name__}: {exc}"))
            console.print(traceback.format_exc(), style="dim", highlight=False)
    rows.append(Row("peak RSS, benchmark process", round(peak_rss_mb(), 1), "MiB",
                    detail="everything above that ran in-process (models of both backends, detector)"))
    info_end = {"load_avg_end": machine()["load_avg"], "busy_processes_end": machine()["busy_processes"],
                "seconds": round(time.time() - started, 1)}
    console.print(table(rows, info))
    console.print(f"load average at end {info_end['load_avg_end']}; other busy processes during the run:",
                  highlight=False)
    for line in info["busy_processes"] + info_end["busy_processes_end"]:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {**info, **info_end}, "quick": args.quick,
                                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                    "rows": [r.to_dict() for r in rows]}, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
