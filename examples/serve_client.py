"""Stream a video file with sound to `affect serve` and print the fused results (protocol: docs/protocol.md).

    affect serve &                                      # in another terminal
    python examples/serve_client.py clip.mp4 [ws://127.0.0.1:8765/v1/stream] [TOKEN]
"""
import asyncio, base64, json, sys, time  # noqa: E401

import av, cv2, websockets  # noqa: E401  (pip install 'affect-sdk[serve]')


async def main(path: str, url: str = "ws://127.0.0.1:8765/v1/stream", token: str = "") -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(url, additional_headers=headers) as ws:
        print(json.loads(await ws.recv())["models"])  # the session header comes first
        async def show() -> None:
            async for text in ws:
                r = json.loads(text)
                if r["kind"] == "fused" and r["label"] or r["kind"] in ("error", "event"):
                    print(r["kind"], r.get("t"), r.get("label") or r.get("message"), r.get("sources", ""))
        printer, start = asyncio.create_task(show()), time.monotonic()
        to_pcm16 = av.AudioResampler(format="s16", layout="mono", rate=16000)
        with av.open(path) as clip:  # frames and sound in file order, paced at their own time stamps
            for packet in clip.demux(video=0, audio=0):
                for f in packet.decode():
                    await asyncio.sleep(max(0.0, f.time - (time.monotonic() - start)))
                    if f.format.name.startswith(("yuv", "rgb", "nv")):
                        jpeg = cv2.imencode(".jpg", f.to_ndarray(format="bgr24"))[1].tobytes()
                        msg = {"type": "frame", "t": f.time, "jpeg": base64.b64encode(jpeg).decode()}
                    else:
                        pcm = b"".join(m.to_ndarray().tobytes() for m in to_pcm16.resample(f))
                        msg = {"type": "audio", "t": max(0.0, f.time), "sample_rate": 16000,
                               "pcm16": base64.b64encode(pcm).decode()}
                    await ws.send(json.dumps(msg))
        await ws.send(json.dumps({"type": "end"}))
        await printer  # the server sends the last results, then closes


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
