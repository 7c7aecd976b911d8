"""Real-time factor of the streaming speech path (resample + VAD + log-mel + model per hop) on this machine.

RTF = processing time / audio duration (below 1 keeps up with a live microphone). Feeds real RAVDESS speech in
100 ms chunks at 48 kHz (so resampling is included), with torch and, when shipped, the ONNX twin.

    python benchmarks/audio_rtf.py [--seconds 60] [--threads 1] [--json-out runs/audio_rtf.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from affect_sdk.audio.features import load_audio
from affect_sdk.audio.stream import SpeechStream
from affect_sdk.registry import default_model, get_spec

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess_speech"


def speech_signal(seconds: float) -> np.ndarray:
    """RAVDESS utterances of actor 17 back to back (48 kHz), cut to `seconds`."""
    import soxr

    files = sorted((SHARED / "Actor_17").glob("*.flac"))
    parts, total = [], 0
    for f in files:
        parts.append(load_audio(f))
        total += len(parts[-1])
        if total >= seconds * 16000:
            break
    return soxr.resample(np.concatenate(parts)[: int(seconds * 16000)], 16000, 48000).astype(np.float32)


def measure(backend: str, wave: np.ndarray, rate: int, chunk_s: float, window_s: float, hop_s: float) -> dict:
    stream = SpeechStream(input_rate=rate, backend=backend, window_s=window_s, hop_s=hop_s)
    stream.push(wave[: rate * 3])  # warm up
    stream = SpeechStream(input_rate=rate, backend=backend, window_s=window_s, hop_s=hop_s, runner=stream.runner)
    step, worst, results = int(chunk_s * rate), 0.0, []
    start = time.perf_counter()
    for i in range(0, len(wave), step):
        t = time.perf_counter()
        results += stream.push(wave[i:i + step])
        worst = max(worst, time.perf_counter() - t)
    results += stream.flush()
    elapsed = time.perf_counter() - start
    duration = len(wave) / rate
    return {"backend": stream.runner.backend, "audio_s": round(duration, 2), "elapsed_s": round(elapsed, 3),
            "rtf": round(elapsed / duration, 4), "windows": len(results),
            "voiced": sum(r.voiced for r in results), "worst_chunk_ms": round(worst * 1000, 1),
            "ms_per_window": round(elapsed / max(1, len(results)) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--window-s", type=float, default=None, help="default: the registered window")
    parser.add_argument("--hop-s", type=float, default=None, help="default: the registered hop")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wave = speech_signal(args.seconds)
    backends = ["torch"] + (["onnxruntime"] if get_spec(default_model("speech")).onnx else [])
    rows = [measure(b, wave, 48000, 0.1, args.window_s, args.hop_s) for b in backends]
    print(f"{'backend':12s} {'audio s':>8s} {'elapsed s':>10s} {'RTF':>7s} {'ms/window':>10s} {'worst chunk ms':>15s}")
    for r in rows:
        print(f"{r['backend']:12s} {r['audio_s']:8.1f} {r['elapsed_s']:10.2f} {r['rtf']:7.4f} {r['ms_per_window']:10.2f} "
              f"{r['worst_chunk_ms']:15.1f}")
    report = {"benchmark": "audio_rtf", "threads": args.threads, "window_s": args.window_s, "hop_s": args.hop_s,
              "chunk_s": 0.1, "input_rate": 48000, "results": rows}
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
