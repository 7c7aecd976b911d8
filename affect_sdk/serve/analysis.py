"""The models behind `affect serve`: a pool of analysis threads shared by all connections, one stream state each.

The pool owns the models: each worker thread has its own FaceAnalyzer (YuNet keeps per-call state, so a detector
cannot be shared between threads); the speech network is one runner shared by every stream (inference holds no
state). A connection's StreamAnalysis holds everything that is its own — fusion state, speech buffer, clock —
and is only ever used by one job at a time, so it needs no lock. Fusion is affect_sdk.fusion.sync's
FusionState, driven the way `Session` drives it live: each analysed frame is fused at once with the speech
windows already heard.
"""
from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
from typing import Any, Callable

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.fusion.sync import FusionState, SyncConfig
from affect_sdk.registry import default_model, get_spec
from affect_sdk.results import FaceAffect, FusedAffect, SpeechAffect
from affect_sdk.serve.protocol import AudioMessage, FrameMessage, ProtocolError, decode_jpeg
from affect_sdk.vision.track import FaceTracker

DETECT_SIDE = 320  # faces are searched on the frame scaled to this longer side, as in `affect live`
_STOP = object()


class AnalysisPool:
    """`workers` threads, each with its own face model; `await pool.run(fn)` calls fn(face_analyzer) on one.

    Jobs wait in one FIFO queue, and a connection has at most one job in it at a time, so connections take turns.
    """

    def __init__(self, workers: int = 2, *, backend: str | None = None, device: str | None = None) -> None:
        from affect_sdk.runtime import create_runner

        if workers < 1:
            raise InputError(f"The server needs at least one analysis worker; got {workers}.")
        self.face_model = default_model("face")
        self.speech_model = default_model("speech")
        self.backend, self.device = backend, device
        self._torch_threads: int | None = None
        self.speech_runner = create_runner(self.speech_model, backend=backend, device=device)
        self._jobs: queue.Queue = queue.Queue()
        self._ready = threading.Barrier(workers + 1)
        self._failure: BaseException | None = None
        self._threads = [threading.Thread(target=self._work, name=f"affect-serve-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()
        self._ready.wait()  # every worker has loaded and warmed its model (or failed doing so)
        if self._failure is not None:
            self.close()
            raise self._failure
        # One torch thread per call (speech features always run on torch): the workers already run side by side,
        # and intra-op threads on top of them oversubscribe a small CPU, as measured for `Session`.
        import torch

        self._torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self._warm_up_speech()

    @property
    def models(self) -> dict[str, dict[str, str]]:
        return {task: {"name": name, "sha256": get_spec(name).sha256}
                for task, name in (("face", self.face_model), ("speech", self.speech_model))}

    def _work(self) -> None:
        from affect_sdk.vision.infer import FaceAnalyzer

        face = None
        try:
            face = FaceAnalyzer(self.face_model, backend=self.backend, device=self.device)
            face.detector.max_side = DETECT_SIDE
            face.analyze(np.zeros((240, 320, 3), np.uint8), 0.0)  # first calls pay for allocations: pay them now
        except BaseException as exc:  # a missing or corrupt model: reported by the constructor
            self._failure = exc
        self._ready.wait()
        if face is None:
            return
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            fn, loop, future = job
            try:
                result = fn(face)
            except BaseException as exc:  # handed to the awaiting connection, never lost in this thread
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

    def _warm_up_speech(self) -> None:
        from affect_sdk.audio.stream import SpeechStream

        spare = SpeechStream(model=self.speech_model, runner=self.speech_runner, gate=False)
        spare.push(np.zeros(int(spare.rate * 2.5), np.float32))

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((fn, loop, future))
        return await future

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=5.0)
        if self._torch_threads is not None:
            import torch

            torch.set_num_threads(self._torch_threads)


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if future.cancelled():  # the connection went away while its job ran
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class StreamAnalysis:
    """One connection's stream: frames and audio on the client's clock in, face/speech/fused results out."""

    def __init__(self, pool: AnalysisPool, sync: SyncConfig = SyncConfig()) -> None:
        self.pool = pool
        self.state = FusionState(sync, audio=True)
        self.tracker = FaceTracker()  # track_id per person, as in the JSONL
        self.speech = None  # a SpeechStream, created by the first audio chunk (its rate and start time)
        self.sample_rate: int | None = None
        self.frames = 0
        self.has_video = False  # set when the first frame arrives, before it waits in the queue
        self.speech_results = 0

    @property
    def sync(self) -> SyncConfig:
        return self.state.config

    def configure(self, changes: dict[str, Any]) -> None:
        """New fusion options from the next fused result on; smoothing carries on from the current state."""
        self.state.config = dataclasses.replace(self.state.config, **changes)

    def check_frame(self, message: FrameMessage) -> None:
        """Refuse a frame that cannot be fused in order, before it waits in the queue."""
        # From the first frame received (not analysed) on, only frames drive fused results: speech analysed while
        # that frame still waits in the queue must not push the fusion clock past it.
        self.has_video = True
        last = self.state.last_t
        if last is not None and message.t <= last:
            raise ProtocolError(f"Frame t={message.t:g} s is not after the last fused time {last:g} s; "
                                "frame times must increase.")

    def check_audio(self, message: AudioMessage, pending_rate: int | None) -> None:
        rate = self.sample_rate or pending_rate
        if rate is not None and message.sample_rate != rate:
            raise ProtocolError(f"The audio sample rate changed from {rate} to {message.sample_rate} Hz; "
                                "keep one rate per connection.")

    def frame(self, face, message: FrameMessage) -> list[FaceAffect | FusedAffect]:
        """Decode, analyse and fuse one frame (runs on a pool thread, with that thread's face analyzer)."""
        self.check_frame(message)  # checked again: frames queued together may have come out of order
        faces = self.tracker.update(face.analyze(decode_jpeg(message), message.t), message.t)
        self.frames += 1
        self.state.add_faces(faces, message.t)
        return [*faces, self.state.fuse(message.t)]

    def audio(self, message: AudioMessage) -> list[SpeechAffect | FusedAffect]:
        """Push a chunk; the first chunk's t places the audio on the stream clock, later chunks follow on."""
        if self.speech is None:
            from affect_sdk.audio.stream import SpeechStream

            self.speech = SpeechStream(model=self.pool.speech_model, runner=self.pool.speech_runner,
                                       input_rate=message.sample_rate, t0=message.t)
            self.sample_rate = message.sample_rate
        return self._fuse_speech(self.speech.push(message.samples))

    def end(self) -> list[SpeechAffect | FusedAffect]:
        return self._fuse_speech(self.speech.flush()) if self.speech is not None else []

    def _fuse_speech(self, results: list[SpeechAffect]) -> list[SpeechAffect | FusedAffect]:
        """Speech results feed the fusion; with no video at all, each window also drives one fused result
        stamped when it was fully heard (as `Session` does for audio-only sessions)."""
        out: list[SpeechAffect | FusedAffect] = []
        for result in results:
            self.speech_results += 1
            self.state.add_speech(result)
            out.append(result)
            if not self.has_video and (self.state.last_t is None or result.end > self.state.last_t):
                out.append(self.state.fuse(result.end))
        return out
