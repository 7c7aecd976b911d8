"""Load on `affect serve`: N concurrent loopback clients, each streaming a real clip at 15 fps with its audio.

Each client sends the shipped demo clip (RAVDESS, 640x360 JPEG frames, looped) at 15 fps and its sound as
100-ms chunks of 16 kHz PCM, both paced at real speed with the client's own clock, exactly as the browser client
does. Fused latency is from sending a frame to receiving the fused record of that frame; frames the server
dropped (it keeps the newest when analysis falls behind) have none and are counted apart. The server runs in its
own process (`affect serve`), so its RSS and CPU time are its own; the clients only send pre-encoded JPEGs.
Reported: per client count, fused results, latency p50/p95, frames dropped, server RSS; and the most clients
served with every client getting fused results and fused p95 <= 150 ms.

    python -m benchmarks.serve_load [--clients 1,2,3,4,6] [--seconds 5] [--json-out runs/serve_load.json]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FPS = 15
AUDIO_CHUNK_S = 0.1
RATE = 16000
P95_GOAL_MS = 150.0


@dataclass(frozen=True)
class Clip:
    frames: list[str]  # base64 JPEGs at FPS
    chunks: list[str]  # base64 PCM16 chunks of AUDIO_CHUNK_S at RATE


@dataclass
class ClientResult:
    frames_sent: int = 0
    fused: int = 0
    fused_with_label: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def load_clip(fps: int = FPS) -> Clip:
    """The demo clip as base64 JPEG frames at `fps` and base64 16 kHz PCM16 chunks."""
    import av
    import cv2

    from affect_sdk.audio.features import load_audio
    from affect_sdk.session import demo_clip

    frames = []
    with av.open(str(demo_clip())) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time * fps >= len(frames) - 1e-6:
                jpeg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 80])[1]
                frames.append(base64.b64encode(jpeg.tobytes()).decode())
    wave = load_audio(demo_clip(), RATE)
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    step = int(RATE * AUDIO_CHUNK_S)
    chunks = [base64.b64encode(pcm[i:i + step].tobytes()).decode() for i in range(0, len(pcm) - step + 1, step)]
    return Clip(frames=frames, chunks=chunks)


async def stream_client(url: str, clip: Clip, seconds: float, *, token: str | None = None,
                        delay: float = 0.0) -> ClientResult:
    """One client: stream `seconds` of the looped clip in real time, then `end`, and collect what comes back."""
    import websockets

    result, sent_at = ClientResult(), {}
    await asyncio.sleep(delay)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:

        async def receive() -> None:
            async for text in ws:
                record, now = json.loads(text), time.monotonic()
                kind = record["kind"]
                result.kinds[kind] = result.kinds.get(kind, 0) + 1
                if kind == "fused":
                    result.fused += 1
                    result.fused_with_label += record["label"] is not None
                    if record["t"] in sent_at:
                        result.latencies_ms.append((now - sent_at.pop(record["t"])) * 1000.0)
                elif kind == "event" and "dropped_total" in record:
                    result.dropped = record["dropped_total"]
                elif kind == "error":
                    result.errors.append(record["message"])

        receiver = asyncio.create_task(receive())
        start = time.monotonic()
        frame_i = chunk_i = 0
        while True:
            t_frame, t_chunk = frame_i / FPS, chunk_i * AUDIO_CHUNK_S
            t = min(t_frame, t_chunk + AUDIO_CHUNK_S)  # a chunk is sent once it has been fully "recorded"
            if t >= seconds:
                break
            await asyncio.sleep(max(0.0, start + t - time.monotonic()))
            if t_frame <= t_chunk + AUDIO_CHUNK_S:
                t_sent = round(t_frame, 6)
                await ws.send(json.dumps({"type": "frame", "t": t_sent,
                                          "jpeg": clip.frames[frame_i % len(clip.frames)]}))
                sent_at[t_sent] = time.monotonic()
                result.frames_sent += 1
                frame_i += 1
            else:
                await ws.send(json.dumps({"type": "audio", "t": round(t_chunk, 6), "sample_rate": RATE,
                                          "pcm16": clip.chunks[chunk_i % len(clip.chunks)]}))
                chunk_i += 1
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, timeout=30.0)  # the server answers `end`, then closes
    return result


async def run_clients(url: str, clients: int, seconds: float, clip: Clip, token: str | None = None
                      ) -> list[ClientResult]:
    """`clients` concurrent streams, started at random moments within one frame interval (cameras are not in step)."""
    return list(await asyncio.gather(*(stream_client(url, clip, seconds, token=token, delay=random.random() / FPS)
                                       for _ in range(clients))))


def summarise(results: list[ClientResult]) -> dict:
    lat = np.asarray([ms for r in results for ms in r.latencies_ms])
    sent = sum(r.frames_sent for r in results)
    return {
        "clients": len(results),
        "frames_sent": sent,
        "fused": sum(r.fused for r in results),
        "min_fused_per_client": min(r.fused_with_label for r in results),
        "frames_dropped": sum(r.dropped for r in results),
        "dropped_pct": round(100.0 * sum(r.dropped for r in results) / max(sent, 1), 1),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "errors": sum(len(r.errors) for r in results),
    }


# ---------------------------------------------------------------- the server process
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_status(pid: int, key: str) -> float:
    """A memory figure of a process in MiB from /proc (VmRSS: now, VmHWM: peak)."""
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":")) / 1024.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_server(port: int, max_connections: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "affect_sdk.cli", "serve", "--port", str(port),
                               "--max-connections", str(max_connections)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"affect serve exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1.0) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("affect serve did not answer /health within 120 s")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,2,3,4,6", help="Comma-separated client counts to try, in order.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Streaming time per client count.")
    parser.add_argument("--json-out", type=Path, default=Path("runs/serve_load.json"))
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    clip = load_clip()
    port = _free_port()
    server = start_server(port, max(counts))
    rows = []
    try:
        url = f"ws://127.0.0.1:{port}/v1/stream"
        for n in counts:
            cpu_before, wall_before = _cpu_seconds(server.pid), time.monotonic()
            row = summarise(asyncio.run(run_clients(url, n, args.seconds, clip)))
            row["server_cpu_cores"] = round((_cpu_seconds(server.pid) - cpu_before)
                                            / (time.monotonic() - wall_before), 2)
            row["server_rss_mb"] = round(_proc_status(server.pid, "VmRSS"), 1)
            rows.append(row)
            print(f"{n:3d} clients: fused {row['fused']:5d} (min/client {row['min_fused_per_client']:4d}), "
                  f"latency p50 {row['latency_ms_p50']} ms p95 {row['latency_ms_p95']} ms, dropped "
                  f"{row['dropped_pct']} %, server CPU {row['server_cpu_cores']} cores, RSS {row['server_rss_mb']} MiB",
                  flush=True)
        peak = round(_proc_status(server.pid, "VmHWM"), 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    served = [r["clients"] for r in rows if r["min_fused_per_client"] > 0 and r["latency_ms_p95"] is not None
              and r["latency_ms_p95"] <= P95_GOAL_MS]
    out = {"benchmark": "serve_load", "fps": FPS, "seconds": args.seconds, "cpus": os.cpu_count(), "rows": rows,
           "max_clients_p95_ok": max(served) if served else 0, "p95_goal_ms": P95_GOAL_MS,
           "server_peak_rss_mb": peak}
    print(f"most clients served with fused p95 <= {P95_GOAL_MS:g} ms: {out['max_clients_p95_ok']} "
          f"(of {', '.join(map(str, counts))} tried); server peak RSS {peak} MiB")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
