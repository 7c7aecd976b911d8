"""`affect serve`: the ASGI app (Starlette on uvicorn) — health, the browser client, and the /v1/stream WebSocket.

Per connection, two tasks share one inbox: the reader validates each message (an error record answers a bad
one; the connection stays open) and queues it; the analyser takes the queue in order and sends the records.
When analysis falls behind, the inbox drops its oldest frames (reported in an event) but never audio: with too
much audio waiting, the reader simply stops reading, and TCP slows the client down. Analysis runs on the
shared AnalysisPool threads, so the event loop only parses, queues and sends.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import threading
import time
from collections import deque
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from affect_sdk.errors import AffectError, InputError
from affect_sdk.fusion.sync import SyncConfig
from affect_sdk.serve.analysis import AnalysisPool, StreamAnalysis
from affect_sdk.serve.protocol import (PROTOCOL, AudioMessage, ConfigMessage, EndMessage, FrameMessage, Limits,
                                       dumps, error_record, event_record, parse_message, session_header,
                                       sync_options)

log = logging.getLogger("affect_sdk.serve")

STATIC = Path(__file__).parent / "static"
DROP_REPORT_EVERY_S = 1.0  # at most one "frames dropped" event per second per connection
CLOSE_POLICY = 1008  # RFC 6455: policy violation (here: missing or wrong token)
CLOSE_TRY_AGAIN = 1013  # RFC 6455: try again later (here: too many connections)


@dataclass(frozen=True)
class ServeConfig:
    token: str | None = None  # None: no authentication (loopback only)
    limits: Limits = field(default_factory=Limits)
    sync: SyncConfig = field(default_factory=SyncConfig)
    workers: int = 2  # analysis threads; more than the CPU cores only adds contention
    backend: str | None = None
    device: str | None = None  # cpu, cuda or auto (None): as everywhere, via affect_sdk.device


# ---------------------------------------------------------------- binding
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_bind(host: str, token: str | None) -> tuple[str, str | None]:
    """(host to bind, note for the user): without a token the server never listens beyond this machine."""
    if token or is_loopback(host):
        return host, None
    return "127.0.0.1", (f"No token given, so the server listens on 127.0.0.1 only, not {host}; pass --token "
                         "(or set AFFECT_TOKEN) to accept connections from other machines.")


# ---------------------------------------------------------------- one connection
class Inbox:
    """The connection's queue of validated messages: the oldest frames give way, audio never does."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.items: deque = deque()
        self.frames = 0
        self.audio_s = 0.0
        self.audio_rate: int | None = None  # rate of audio queued but not yet analysed
        self.dropped = self.dropped_reported = 0
        self._changed = asyncio.Event()

    async def put(self, message: Any) -> None:
        if isinstance(message, AudioMessage):
            while self.audio_s >= self.limits.max_audio_backlog_s:  # backpressure: stop reading the socket
                await self._wait_change()
            self.audio_s += message.seconds
            self.audio_rate = message.sample_rate
        elif isinstance(message, FrameMessage):
            if self.frames >= self.limits.max_pending_frames:
                oldest = next(i for i, item in enumerate(self.items) if isinstance(item, FrameMessage))
                del self.items[oldest]
                self.frames -= 1
                self.dropped += 1
            self.frames += 1
        self.items.append(message)
        self._changed.set()

    async def get(self) -> Any:
        while not self.items:
            await self._wait_change()
        message = self.items.popleft()
        if isinstance(message, AudioMessage):
            self.audio_s -= message.seconds
            if self.audio_s <= 1e-9:
                self.audio_s, self.audio_rate = 0.0, None
        elif isinstance(message, FrameMessage):
            self.frames -= 1
        self._changed.set()
        return message

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()


class Connection:
    """One WebSocket client: its own stream clock, fusion state and speech buffer."""

    def __init__(self, websocket: WebSocket, pool: AnalysisPool, config: ServeConfig) -> None:
        self.ws, self.pool, self.config = websocket, pool, config
        self.limits = config.limits
        self.stream = StreamAnalysis(pool, config.sync)
        self.inbox = Inbox(self.limits)
        self._send_lock = asyncio.Lock()
        self._last_drop_report = 0.0

    async def send(self, record: Any) -> None:
        async with self._send_lock:  # the reader (errors) and the analyser (results) both send
            await self.ws.send_text(dumps(record))

    async def run(self) -> None:
        await self.send(session_header(models=self.pool.models, sync=self.stream.sync, limits=self.limits))
        analyser = asyncio.create_task(self._analyse())
        ended = False
        try:
            ended = await self._read()
            if ended:
                await analyser  # the analyser answers `end` and then returns
        except (WebSocketDisconnect, RuntimeError):  # the client went away (mid-send, too)
            pass
        finally:
            if not analyser.done():
                analyser.cancel()
            try:
                await analyser
            except (asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                pass
        if ended:
            await self._close(1000, "end of stream")

    async def _read(self) -> bool:
        """Read until `end` (True), a disconnect or the idle timeout (False)."""
        while True:
            try:
                frame = await asyncio.wait_for(self.ws.receive(), self.limits.idle_timeout_s)
            except asyncio.TimeoutError:
                await self.send(event_record(self.stream.state.last_t, f"closing: no message for "
                                                                       f"{self.limits.idle_timeout_s:g} s"))
                await self._close(1001, "idle")
                return False
            if frame["type"] == "websocket.disconnect":
                return False
            text = frame.get("text")
            if text is None:
                await self.send(error_record(f"Binary messages are not part of {PROTOCOL}; send JSON text."))
                continue
            try:
                message = parse_message(text, self.limits)
                self._check_order(message)
            except AffectError as exc:
                await self.send(error_record(str(exc)))
                continue
            except Exception:  # a message the checks above did not foresee: refuse it, keep the connection
                log.exception("could not read a client message")
                await self.send(error_record("The server could not read this message; it was skipped."))
                continue
            if isinstance(message, ConfigMessage) and message.unknown:
                await self.send(error_record(f"Unknown config keys ignored: {', '.join(message.unknown)}; this "
                                             f"server accepts rule and smoothing."))
            await self.inbox.put(message)
            if isinstance(message, EndMessage):
                return True

    def _check_order(self, message: Any) -> None:
        if isinstance(message, FrameMessage):
            self.stream.check_frame(message)
        elif isinstance(message, AudioMessage):
            self.stream.check_audio(message, self.inbox.audio_rate)

    async def _analyse(self) -> None:
        while True:
            message = await self.inbox.get()
            try:
                if isinstance(message, FrameMessage):
                    records = await self.pool.run(lambda face, m=message: self.stream.frame(face, m))
                elif isinstance(message, AudioMessage):
                    records = await self.pool.run(lambda face, m=message: self.stream.audio(m))
                elif isinstance(message, ConfigMessage):
                    self.stream.configure(message.sync)
                    records = [event_record(self.stream.state.last_t, "config applied",
                                            options=sync_options(self.stream.sync))]
                else:
                    records = await self.pool.run(lambda face: self.stream.end())
                    records.append(event_record(self.stream.state.last_t, "end of stream"))
            except AffectError as exc:
                records = [error_record(str(exc))]
            except Exception:  # a bug on one message must not end the connection, let alone the server
                log.exception("analysis of a %s message failed", type(message).__name__)
                records = [error_record(f"The server could not analyse this {type(message).__name__}; it was "
                                        "skipped.")]
            ended = isinstance(message, EndMessage)
            await self._report_drops(final=ended)
            for record in records:
                await self.send(record)
            if ended:
                return

    async def _report_drops(self, final: bool = False) -> None:
        inbox = self.inbox
        new = inbox.dropped - inbox.dropped_reported
        now = time.monotonic()
        if new and (final or now - self._last_drop_report >= DROP_REPORT_EVERY_S):
            inbox.dropped_reported, self._last_drop_report = inbox.dropped, now
            await self.send(event_record(self.stream.state.last_t, f"analysis fell behind: dropped {new} older "
                                         "frames", dropped_frames=new, dropped_total=inbox.dropped))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, reason)
        except RuntimeError:  # already closed by the client
            pass


# ---------------------------------------------------------------- the app
def token_matches(websocket: WebSocket, token: str | None) -> bool:
    if token is None:
        return True
    header = websocket.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else websocket.query_params.get("token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def create_app(config: ServeConfig = ServeConfig()) -> Starlette:
    """The ASGI app; models load at startup (lifespan), so the first client does not wait for them."""
    connections: set[Connection] = set()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        app.state.pool = await asyncio.to_thread(AnalysisPool, config.workers, backend=config.backend,
                                                device=config.device)
        try:
            yield
        finally:
            app.state.pool.close()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "protocol": PROTOCOL, "connections": len(connections),
                             "max_connections": config.limits.max_connections,
                             "models": request.app.state.pool.models})

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def stream(websocket: WebSocket) -> None:
        if not token_matches(websocket, config.token):
            await websocket.close(CLOSE_POLICY)  # before accept: the handshake is answered with HTTP 403
            return
        await websocket.accept()
        if len(connections) >= config.limits.max_connections:
            await websocket.send_text(dumps(error_record(
                f"The server is full ({config.limits.max_connections} connections); try again later.")))
            await websocket.close(CLOSE_TRY_AGAIN, "server full")
            return
        connection = Connection(websocket, websocket.app.state.pool, config)
        connections.add(connection)
        try:
            await connection.run()
        except Exception:  # whatever one connection meets, the server and the other clients go on
            log.exception("a connection failed")
        finally:
            connections.discard(connection)

    return Starlette(routes=[Route("/", index), Route("/health", health), WebSocketRoute("/v1/stream", stream),
                             Mount("/static", StaticFiles(directory=STATIC), name="static")], lifespan=lifespan)


def uvicorn_config(app: Starlette, host: str, port: int, limits: Limits, log_level: str = "info"):
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, ws="websockets-sansio", ws_max_size=limits.max_message_bytes,
                          ws_ping_interval=20.0, ws_ping_timeout=20.0, log_level=log_level, access_log=False,
                          lifespan="on")


@contextmanager
def running_server(config: ServeConfig = ServeConfig(), host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """The server on a background thread (port 0: a free one), for apps that embed it and for tests; yields its
    base URL once the models are loaded and it accepts connections."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(create_app(config), host, port, config.limits, log_level="warning"))
    server.install_signal_handlers = lambda: None  # signals belong to the embedding program's main thread
    thread = threading.Thread(target=server.run, name="affect-serve", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise InputError(f"affect serve could not start on {host}:{port} (see the log above).")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)


def serve(host: str = "127.0.0.1", port: int = 8765, token: str | None = None, *, workers: int = 2,
          max_connections: int = Limits.max_connections, backend: str | None = None, device: str | None = None,
          say=print) -> None:
    """Run the server until Ctrl-C. `token` None falls back to AFFECT_TOKEN; see resolve_bind for the host."""
    import uvicorn

    token = token or os.environ.get("AFFECT_TOKEN") or None
    if port is None or not 0 <= port <= 65535:
        raise InputError(f"The port must be from 0 to 65535; got {port}.")
    host, note = resolve_bind(host, token)
    if note:
        say(note)
    config = ServeConfig(token=token, workers=workers, backend=backend, device=device,
                         limits=Limits(max_connections=max_connections))
    server = uvicorn.Server(uvicorn_config(create_app(config), host, port, config.limits))
    shown = f"[{host}]" if ":" in host else host
    say(f"affect serve: http://{shown}:{port}/ (browser client), ws://{shown}:{port}/v1/stream "
        f"({PROTOCOL}){', token required' if token else ''}; Ctrl-C stops it.")
    server.run()
    if server.should_exit:  # stopped by a signal that uvicorn handled without re-raising: exit as Ctrl-C does
        raise KeyboardInterrupt
