"""`affect serve` end to end: a real server (real models, real uvicorn) and real WebSocket clients on loopback."""
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install -e '.[serve]'")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from affect_sdk.labels import CLASSES  # noqa: E402
from affect_sdk.results import FusedAffect  # noqa: E402
from affect_sdk.serve.app import ServeConfig, resolve_bind, running_server  # noqa: E402
from affect_sdk.serve.protocol import PROTOCOL, Limits  # noqa: E402
from benchmarks.serve_load import AUDIO_CHUNK_S, FPS, RATE, load_clip, run_clients  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FUSED_KEYS = set(FusedAffect(t=0.0, probs=None, valence=0.0, arousal=0.0, confidence=0.0).to_dict())


@pytest.fixture(scope="module")
def clip():
    return load_clip()


@pytest.fixture(scope="module")
def server():
    with running_server(ServeConfig(token=TOKEN, limits=Limits(max_message_bytes=300_000))) as url:
        yield url


def ws_url(http_url: str, query: str = "") -> str:
    return http_url.replace("http://", "ws://") + "/v1/stream" + query


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def frame(clip, i: int, t: float) -> str:
    return json.dumps({"type": "frame", "t": t, "jpeg": clip.frames[i % len(clip.frames)]})


def audio(clip, i: int, t: float, rate: int = RATE) -> str:
    return json.dumps({"type": "audio", "t": t, "sample_rate": rate, "pcm16": clip.chunks[i % len(clip.chunks)]})


def recv(ws, timeout: float = 20.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def until(ws, kind: str) -> tuple[dict, list[dict]]:
    """Records up to and including the first of `kind`."""
    seen = []
    while True:
        seen.append(recv(ws))
        if seen[-1]["kind"] == kind:
            return seen[-1], seen


def test_health_and_the_browser_client_are_served(server):
    status, body = get(server + "/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["protocol"] == PROTOCOL
    assert health["models"]["face"]["name"] and len(health["models"]["speech"]["sha256"]) == 64
    status, page = get(server + "/")
    assert status == 200 and b"affect-sdk live" in page and b"/static/client.js" in page
    for asset in ("client.js", "pcm-worklet.js"):
        assert get(f"{server}/static/{asset}")[0] == 200


@pytest.mark.parametrize("query, headers", [("", {}), ("?token=wrong", {}), ("", {"Authorization": "Bearer wrong"}),
                                            ("", {"Authorization": TOKEN})])
def test_a_missing_or_wrong_token_is_refused_at_the_handshake(server, query, headers):
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(server, query), additional_headers=headers, open_timeout=10)
    assert refused.value.response.status_code == 403


def test_a_clip_streamed_in_step_gives_a_header_then_face_speech_and_fused_records(server, clip):
    """Frames and audio as a client sends them, each frame's fused record awaited: no frame is dropped."""
    with connect(ws_url(server, f"?token={TOKEN}")) as ws:  # the browser's way: the token in the URL
        header = recv(ws)
        assert header["kind"] == "session" and header["protocol"] == PROTOCOL and header["classes"] == list(CLASSES)
        assert header["options"]["rule"] == "entropy_weighted" and header["clock"] == "client"
        records, chunk = [], 0
        for i in range(int(2.8 * FPS)):
            t = round(10.0 + i / FPS, 6)  # the client's own clock need not start at 0
            while chunk * AUDIO_CHUNK_S <= i / FPS:  # audio heard up to this frame goes first
                ws.send(audio(clip, chunk, round(10.0 + chunk * AUDIO_CHUNK_S, 6)))
                chunk += 1
            ws.send(frame(clip, i, t))
            fused, seen = until(ws, "fused")
            records += seen
            assert fused["t"] == t
    kinds = [r["kind"] for r in records]
    assert kinds.count("fused") == int(2.8 * FPS) and "error" not in kinds
    faces = [r for r in records if r["kind"] == "face"]
    assert len(faces) >= 0.9 * kinds.count("fused") and all(len(f["box"]) == 4 for f in faces)
    speech = [r for r in records if r["kind"] == "speech"]
    assert speech and all(10.0 <= s["start"] < s["end"] for s in speech)  # on the client's clock
    fused = [r for r in records if r["kind"] == "fused"]
    assert all(set(f) == FUSED_KEYS for f in fused)
    assert fused[-1]["sources"] == ["face", "speech"] and fused[-1]["label"] in CLASSES
    assert sum(fused[-1]["probs"].values()) == pytest.approx(1.0, abs=1e-4)


def test_hostile_messages_get_error_records_and_the_connection_and_server_live_on(server, clip):
    jpeg = base64.b64decode(clip.frames[0])
    at = jpeg.index(b"\xff\xc0")
    bomb = jpeg[:at + 5] + (30000).to_bytes(2, "big") * 2 + jpeg[at + 9:]

    def jpeg_frame(data: bytes) -> str:
        return json.dumps({"type": "frame", "t": 1.2, "jpeg": base64.b64encode(data).decode()})

    hostile = ["not json", "[" * 100_000, '{"type": "frame", "t": NaN, "jpeg": ""}', '{"type": "launch"}',
               jpeg_frame(bomb), jpeg_frame(bytes(5000)), jpeg_frame(jpeg[:400]),
               frame(clip, 1, 0.5),  # before the frame at t=1 fused just before: time went backwards
               audio(clip, 1, 0.1, rate=44100),  # the first chunk came at 16 kHz
               json.dumps({"type": "config", "rule": "loudest"})]
    with connect(ws_url(server), additional_headers=AUTH, max_size=None) as ws:
        assert recv(ws)["kind"] == "session"
        ws.send(frame(clip, 0, 0.9))
        assert until(ws, "fused")[0]["t"] == 0.9
        ws.send(audio(clip, 0, 0.0))
        ws.send(frame(clip, 0, 1.0))
        until(ws, "fused")
        ws.send(b"\x00binary")
        errors = [until(ws, "error")[0]["message"]]
        for message in hostile:
            ws.send(message)
            errors.append(until(ws, "error")[0]["message"])
        ws.send(frame(clip, 2, 1.5))  # still served after all of that
        assert until(ws, "fused")[0]["t"] == 1.5
    assert all(isinstance(e, str) and e for e in errors) and len(errors) == len(hostile) + 1
    assert "Binary" in errors[0] and "not valid JSON" in errors[1] and "30000x30000" in errors[5]
    assert "does not hold a JPEG" in errors[6] and "could not be decoded" in errors[7]
    assert "not after the last fused time" in errors[8] and "sample rate changed" in errors[9]

    with connect(ws_url(server), additional_headers=AUTH, max_size=None) as ws:  # too big: the transport refuses
        recv(ws)
        ws.send(json.dumps({"type": "frame", "t": 0, "jpeg": "A" * 400_000}))
        with pytest.raises(ConnectionClosed) as closed:
            recv(ws)
    assert closed.value.rcvd.code == 1009
    assert json.loads(get(server + "/health")[1])["status"] == "ok"


def test_config_changes_the_fusion_of_later_results_and_names_unknown_keys(server, clip):
    with connect(ws_url(server), additional_headers=AUTH) as ws:
        recv(ws)
        ws.send(json.dumps({"type": "config", "rule": "product_of_experts", "smoothing": 0, "baseline": "me"}))
        assert "Unknown config keys ignored: baseline" in until(ws, "error")[0]["message"]
        applied = until(ws, "event")[0]
        assert applied["message"] == "config applied"
        assert applied["options"]["rule"] == "product_of_experts" and applied["options"]["smoothing"] == 0
        ws.send(frame(clip, 0, 0.0))
        assert until(ws, "fused")[0]["rule"] == "product_of_experts"


def test_frames_sent_faster_than_analysis_drop_the_oldest_but_never_audio(server, clip):
    from affect_sdk.audio.stream import SpeechStream

    n_frames, n_chunks = 30, 30
    with connect(ws_url(server), additional_headers=AUTH) as ws:
        recv(ws)
        for i in range(n_frames):  # a burst: 2 s of video and 3 s of audio sent at once
            ws.send(audio(clip, i, round(i * AUDIO_CHUNK_S, 6)))
            ws.send(frame(clip, i, round(i / FPS, 6)))
        ws.send(json.dumps({"type": "end"}))
        records = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                records.append(recv(ws))
    assert closed.value.rcvd.code == 1000 and records[-1]["message"] == "end of stream"
    fused = [r for r in records if r["kind"] == "fused"]
    drops = [r for r in records if r["kind"] == "event" and "dropped_frames" in r]
    assert drops and drops[-1]["dropped_total"] == n_frames - len(fused) > 0
    assert fused[-1]["t"] == round((n_frames - 1) / FPS, 6)  # the newest frame is always kept
    # every audio chunk was analysed: the same speech windows as the whole recording pushed at once
    pcm = np.concatenate([np.frombuffer(base64.b64decode(clip.chunks[i % len(clip.chunks)]), "<i2")
                          for i in range(n_chunks)]).astype(np.float32) / 32768
    stream = SpeechStream(input_rate=RATE)
    expected = [round(r.t, 6) for r in stream.push(pcm) + stream.flush()]
    assert [r["t"] for r in records if r["kind"] == "speech"] == pytest.approx(expected, abs=1e-5)


def test_speech_analysed_while_the_first_frame_waits_does_not_move_the_fusion_clock_past_it(clip):
    """The race behind a once-flaky burst: audio analysed before the queued first frame must not fuse on its own."""
    from affect_sdk.serve.analysis import AnalysisPool, StreamAnalysis
    from affect_sdk.serve.protocol import parse_message
    from affect_sdk.vision.infer import FaceAnalyzer

    pool = AnalysisPool(1)
    try:
        stream = StreamAnalysis(pool)
        first = parse_message(frame(clip, 0, 0.5))
        stream.check_frame(first)  # received: it now waits in the queue behind the audio
        heard = []
        for i in range(30):  # 3 s of speech, analysed before the frame
            heard += stream.audio(parse_message(audio(clip, i, round(i * AUDIO_CHUNK_S, 6))))
        assert any(r.kind == "speech" for r in heard)
        assert not [r for r in heard if r.kind == "fused"]
        fused = [r for r in stream.frame(FaceAnalyzer(), first) if r.kind == "fused"]
        assert [r.t for r in fused] == [0.5]
    finally:
        pool.close()


def test_connection_limit_and_idle_timeout():
    with running_server(ServeConfig(limits=Limits(max_connections=1, idle_timeout_s=1.0))) as url:
        with connect(ws_url(url)) as first:
            assert recv(first)["kind"] == "session"
            with connect(ws_url(url)) as second:
                assert "server is full" in recv(second)["message"]
                with pytest.raises(ConnectionClosed) as full:
                    recv(second)
            assert full.value.rcvd.code == 1013
            assert "no message for 1 s" in recv(first, timeout=5)["message"]
            with pytest.raises(ConnectionClosed) as idle:
                recv(first)
            assert idle.value.rcvd.code == 1001
        with connect(ws_url(url)) as again:  # the slot is free again
            assert recv(again)["kind"] == "session"


def test_six_clients_streaming_at_once_each_get_fused_results(server, clip):
    results = asyncio.run(run_clients(ws_url(server), 6, 3.0, clip, token=TOKEN))
    for result in results:
        assert result.fused_with_label > 0 and not result.errors
        assert result.fused + result.dropped == result.frames_sent  # every frame fused or reported dropped
        assert result.kinds["speech"] > 0


def test_without_a_token_only_loopback_is_bound():
    assert resolve_bind("127.0.0.1", None) == ("127.0.0.1", None)
    assert resolve_bind("0.0.0.0", "t") == ("0.0.0.0", None)
    host, note = resolve_bind("0.0.0.0", None)
    assert host == "127.0.0.1" and "127.0.0.1 only" in note


def test_affect_serve_starts_says_where_it_listens_and_stops_on_ctrl_c(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "AFFECT_TOKEN"}
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen([sys.executable, "-m", "affect_sdk.cli", "serve", "--host", "0.0.0.0",
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}/health")[0] == 200
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130  # as every affect command: Ctrl-C exits 130
    finally:
        process.kill()
    output = (tmp_path / "serve.log").read_text()
    assert "listens on 127.0.0.1 only, not 0.0.0.0" in output and f"ws://127.0.0.1:{port}/v1/stream" in output


def test_nothing_but_the_serve_command_imports_the_web_stack():
    code = ("import sys, affect_sdk, affect_sdk.cli, affect_sdk.session; "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'websockets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_without_the_serve_extra_the_command_says_how_to_install_it():
    code = ("import sys; sys.modules['starlette'] = None; sys.argv = ['affect', 'serve']; "
            "from affect_sdk.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "pip install 'affect-sdk[serve]'" in out.stderr
