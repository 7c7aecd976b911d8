"""Live wiring: capture threads, face and speech models and fusion in one Session (the sources are in sources.py).

Threads and queues (one direction, as everywhere in affect-sdk):

    camera thread --(newest frame only; older unread frames dropped and counted)--> face thread --+
    microphone (PortAudio callback or file reader) --(bounded queue, never dropped)--> speech thread --+--> events
    events --> Session.__iter__ (caller's thread): FusionState, JSONL (flushed per line), FusedAffect out
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from affect_sdk.checks import duration_seconds
from affect_sdk.clock import SessionClock
from affect_sdk.device import TORCH_THREADS
from affect_sdk.errors import AffectError, InputError
from affect_sdk.fusion.sync import SyncConfig
from affect_sdk.fusion.tracks import TrackedFusion, parse_follow
from affect_sdk.records import Recorder, check_jsonl_target, model_entry, open_jsonl, session_header, sync_options
from affect_sdk.registry import default_model
from affect_sdk.resting import (RestingFace, RestingVoice, baseline_note, calibrate_face, calibrate_voice,
                                check_baseline_options)
from affect_sdk.results import FaceAffect, FusedAffect, SpeechAffect
from affect_sdk.session_stats import SessionStats  # noqa: F401  (re-exported)
from affect_sdk.sources import (  # noqa: F401  (Frame, FrameSlot, demo_clip: re-exported for existing imports)
    _END, CameraSource, Frame, FrameSlot, MicDeviceSource, MicFileSource, demo_clip, open_microphone,
)
from affect_sdk.vision.track import FaceTracker

log = logging.getLogger("affect_sdk.session")

THREAD_JOIN_S = 30.0  # close() waits this long for the workers; one model call takes well under a second
# Fast mode: the voice is analysed at most this far ahead of the faces. Speech runs ~100x faster than the face
# model, and everything it hears ahead waits in memory for its frames, so without a bound a long file would be held.
FAST_AUDIO_LEAD_S = 30.0


class Session:
    """Camera + microphone -> a stream of FusedAffect, as an iterator or through a callback.

        with Session(camera=0, mic="default", jsonl="out.jsonl") as session:
            for fused in session:
                print(fused.label, fused.valence, fused.arousal)

    `camera=None` / `mic=None` turn a modality off; `demo=True` uses the clip shipped in the package for both.
    Errors opening a source or a model are raised by the constructor as one AffectError; problems mid-run (a video
    that ends, a device that stops) are reported through `on_warning` and the session goes on with what is left.
    `detect_side`: faces are searched on the frame downscaled to this longer side (fast; boxes and crops stay in
    full-frame pixels); None searches the full frame. While a session runs, torch uses one thread per model call:
    face and speech already run in parallel threads, and intra-op threads on top of them oversubscribe the CPU.

    `track`: whom the fused stream follows, "largest" (the largest face of each frame), a track id, or "all" (one
    fused stream per person, told apart by `FusedAffect.track_id`). `frames=` / `audio=`: iterables of the app's own
    numpy frames and audio chunks instead of our camera and microphone (affect_sdk.app_sources). `jsonl_mode`:
    "refuse" (an existing non-empty file is an InputError), "append" or "overwrite". `on_record(dict)` gets every
    record as written to the JSONL (docs/records.md), header first; `async for fused in session` works too.
    `face_analyzer` / `speech_analyzer`: already loaded models to use (shared across sessions, or with a baseline).
    `baseline_seconds=S`: the first S s are the person at rest, and the face is calibrated to them (announced in the
    JSONL); `baseline_voice=True` calibrates the voice to them too (opt-in: on RAVDESS it lowered accuracy).
    """

    def __init__(self, camera: int | str | Path | None = 0, mic: str | int | Path | None = "default", *,
                 demo: bool = False, duration: float | None = None, fast: bool = False,
                 jsonl: str | Path | None = None, on_result: Callable[[FusedAffect], Any] | None = None,
                 on_warning: Callable[[str], Any] | None = None, sync: SyncConfig | None = None,
                 face_model: str | None = None, speech_model: str | None = None,
                 backend: str | None = None, device: str | None = None, detect_side: int | None = 320,
                 prior: str | None = None, baseline_seconds: float | None = None, baseline_voice: bool = False,
                 track: str | int = "largest", frames: Iterable | None = None, audio: Iterable | None = None,
                 audio_rate: float = 16000.0,
                 jsonl_mode: str = "refuse", on_record: Callable[[dict[str, Any]], Any] | None = None,
                 face_analyzer: Any = None, speech_analyzer: Any = None) -> None:
        if demo:
            camera = mic = demo_clip()
        if frames is not None or audio is not None:  # the app owns its devices: none of ours is opened
            camera, mic = ("app frames" if frames is not None else None), ("app audio" if audio is not None else None)
        if camera is None and mic is None:
            raise InputError("Both camera and microphone are turned off; keep at least one.")
        duration = duration_seconds("duration", duration)  # NaN or <= 0: InputError; inf: no limit
        self.duration, self.fast = duration, fast
        check_baseline_options(baseline_seconds, baseline_voice, camera is not None, mic is not None)
        self.baseline_seconds, self.baseline_voice = baseline_seconds, baseline_voice
        self.track = parse_follow(track)
        if jsonl is not None:
            check_jsonl_target(jsonl, jsonl_mode)  # refused before any device or model is opened
        self._tracker = FaceTracker()
        self.header: dict[str, Any] | None = None  # the session record, written first (affect_sdk.records)
        self._resting_face = RestingFace(baseline_seconds) if baseline_seconds and camera is not None else None
        self.on_result = on_result
        self._on_warning = on_warning
        self.sync = sync or SyncConfig()
        self.warnings: list[str] = []
        self.stats = SessionStats()
        self.latest_faces: list[FaceAffect] = []
        self.latest_speech: SpeechAffect | None = None
        self.latest_frame: Frame | None = None
        self.latest_fused: FusedAffect | None = None
        self._stop = threading.Event()
        self._events: queue.Queue = queue.Queue(maxsize=10_000)
        self._threads: list[threading.Thread] = []
        self._started = self._closed = False
        self.camera: CameraSource | None = None
        self.mic: MicFileSource | MicDeviceSource | None = None
        self._recorder = Recorder()
        try:
            # Devices first: a missing camera or microphone is reported before any model loads.
            if frames is not None or audio is not None:
                from affect_sdk.app_sources import AudioIterableSource, FrameIterableSource

                self.camera = FrameIterableSource(frames, fast=fast) if frames is not None else None
                self.mic = AudioIterableSource(audio, rate=audio_rate) if audio is not None else None
            else:
                self.camera = CameraSource(camera, fast=fast) if camera is not None else None
                self.mic = open_microphone(mic, fast=fast) if mic is not None else None
            self._face = self._speech = None
            if self.camera is not None:
                from affect_sdk.vision.infer import FaceAnalyzer

                self._face = face_analyzer or FaceAnalyzer(face_model, backend=backend, device=device, prior=prior)
                if detect_side:
                    self._face.detector.max_side = int(detect_side)
            if self.mic is not None:
                from affect_sdk.audio.stream import SpeechStream

                self._speech_model = (speech_analyzer.model if speech_analyzer
                                      else speech_model or default_model("speech"))
                self._speech = speech_analyzer.stream(self.mic.rate) if speech_analyzer else SpeechStream(
                    self._speech_model, input_rate=self.mic.rate, backend=backend, device=device)
            TORCH_THREADS.hold()  # one torch thread per model call while any session runs (after the models load:
            self._holds_torch_threads = True  # a torch backend has imported torch by now, onnxruntime never does)
            self._warm_up()
            self._header_parts = {"inputs": {"camera": None if camera is None else str(camera),
                                             "mic": None if mic is None else str(mic)},
                                  "options": {**sync_options(self.sync), "fast": fast, "duration": duration,
                                              "track": self.track, "prior": getattr(self._face, "prior_mode", None),
                                              "baseline_seconds": baseline_seconds, "baseline_voice": baseline_voice,
                                              "detect_side": detect_side}}
            self._recorder = Recorder(open_jsonl(jsonl, jsonl_mode) if jsonl is not None else None, on_record)
        except BaseException:
            self._release_sources()
            self._release_torch_threads()
            raise
        self.jsonl = Path(jsonl) if jsonl is not None else None

    def _warm_up(self) -> None:
        """Run each model once before the clock starts: first calls pay for lazy imports and allocations (seconds
        for the speech features), which would otherwise show up as a backlog right at the start."""
        if self._face is not None:
            self._face.analyze(np.zeros((240, 320, 3), np.uint8), 0.0)
            self._face.analyze_crops(np.zeros((1, 64, 64), np.uint8))
        if self._speech is not None:
            from affect_sdk.audio.stream import SpeechStream

            # a throwaway stream sharing the runner, with the voice gate off so the model really runs once
            spare = SpeechStream(model=self._speech_model, runner=self._speech.runner, gate=False)
            spare.push(np.zeros(spare.window + spare.hop, np.float32))

    # ---- lifecycle
    def __enter__(self) -> "Session":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the clock, the capture threads and the model threads (idempotent)."""
        if self._started:
            return
        self._started = True
        self.clock = SessionClock()
        self.stats.started_at = self.clock.start
        self._video_done = self.camera is None
        self._audio_done = self.mic is None
        self._audio_watermark = float("-inf")  # session time up to which audio has been analysed
        # analysed frames (faces, t, captured) waiting for audio to catch up (fast mode)
        self._pending: deque[tuple[list[FaceAffect], float, float]] = deque()
        self._state = TrackedFusion(self.sync, audio=self.mic is not None, follow=self.track)
        self._video_watermark = float("-inf")  # session time of the newest analysed frame
        self.header = session_header(models=self._models(), **self._header_parts)
        self._recorder.header(self.header)
        self._undriven: deque[SpeechAffect] = deque()  # speech windows no fused frame has come after yet
        # speech windows not yet handed to fusion, which keeps only its latest 32: a file read fast is heard far
        # ahead of its frames (minutes), so each window goes in just before the first result that can use it
        self._unheard: deque[SpeechAffect] = deque()
        if self.baseline_seconds:
            self._post(("note", baseline_note(self.baseline_seconds, self._resting_face is not None,
                                              self.baseline_voice)))
        if self.camera is not None:
            self._spawn(self.camera.run, self.clock, self._stop, self.duration, self._warn, name="affect-camera")
            self._spawn(self._face_worker, name="affect-face")
        if self.mic is not None:
            try:
                self._threads.append(self.mic.start(self.clock, self._stop, self.duration, self._warn))
            except BaseException:
                self.close()
                raise
            self._spawn(self._speech_worker, name="affect-speech")

    def close(self) -> None:
        """Stop every thread and device, keep everything written so far, close the JSONL file."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._release_sources()
        # Every worker must be out of native code before the interpreter exits: a daemon thread still inside
        # OpenCV, torch or onnxruntime at exit makes the C++ runtime abort ("terminate called without an active
        # exception", SIGABRT; 4 of 27 interrupted runs before this wait). Workers check the stop flag between model
        # calls, so this takes one model call at most.
        deadline = time.monotonic() + THREAD_JOIN_S
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.warning("Session threads still running %g s after close: %s.", THREAD_JOIN_S, ", ".join(stuck))
        self.stats.ended_at = time.monotonic()
        self._recorder.close()
        self._release_torch_threads()

    def stop(self) -> None:
        """Ask the session to end; the iterator finishes after the results already in flight."""
        self._stop.set()

    def _release_torch_threads(self) -> None:
        if getattr(self, "_holds_torch_threads", False):
            self._holds_torch_threads = False
            TORCH_THREADS.release()

    def _release_sources(self) -> None:
        if self.mic is not None:
            self.mic.close()
        if self.camera is not None and not self._started:
            self.camera.capture.release()

    def _spawn(self, target: Callable, *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self._post(("warning", message))
        if self._on_warning is not None:
            self._on_warning(message)
        else:
            log.warning(message)

    def _post(self, event: tuple) -> None:
        while True:
            try:
                self._events.put(event, timeout=0.1)
                return
            except queue.Full:
                if self._closed:
                    return

    # ---- model threads
    def _face_worker(self) -> None:
        slot = self.camera.slot
        try:
            while True:
                frame = slot.get(timeout=0.1)
                if frame is False or self._stop.is_set():
                    break
                if frame is None:
                    continue
                faces, crops = self._face.analyze_with_crops(frame.image, frame.t)
                faces = self._tracker.update(faces, frame.t)
                if self._resting_face is not None and self._resting_face.collecting:
                    resting = self._resting_face.add(crops, frame.t)
                    self._report(calibrate_face(self._face, resting, self.baseline_seconds))
                self._post(("faces", faces, frame))
        except AffectError as exc:
            self._warn(f"Face analysis stopped: {exc} Going on without video.")
        except Exception as exc:  # a bug: end the session and re-raise it from the iterator
            self._post(("crash", exc))
        finally:
            self.stats.frames_dropped = slot.dropped
            self._post(("video-ended",))

    def _report(self, outcome: tuple[str, str] | None) -> None:
        if outcome is not None:
            self._warn(outcome[1]) if outcome[0] == "warning" else self._post(outcome)

    def _speech_worker(self) -> None:
        mic, offset = self.mic, None
        resting = RestingVoice(self.baseline_seconds, mic.rate) if self.baseline_voice else None
        try:
            while True:
                try:
                    item = mic.queue.get(timeout=0.25)
                except queue.Empty:
                    if self._stop.is_set() or getattr(mic, "ended", False):
                        break
                    continue
                if item is _END or self._stop.is_set():  # stopped: leave a backlog unanalysed, end promptly
                    break
                chunk, t = item
                if offset is None:  # the stream's results are stamped on the session clock from its first chunk
                    offset = self._speech.t0 = t
                if resting is not None and resting.collecting:  # set before this chunk's windows are read
                    self._report(calibrate_voice(self._speech, resting.add(chunk), mic.rate))
                results = self._speech.push(chunk)
                # the stream's own clock, not the chunk's end: its resampler holds a few samples back, and every
                # window ending before a frame must be out when that frame is fused (fast mode), or the frame's
                # reading would depend on which thread ran first
                watermark = offset + self._speech.samples_seen / self._speech.rate
                self._post(("speech", results, watermark, len(chunk) / mic.rate))
                while self.fast and not (self._video_done or self._stop.is_set()) and \
                        watermark - max(self._video_watermark, 0.0) > FAST_AUDIO_LEAD_S:
                    time.sleep(0.01)  # the frames catch up (or end)
            if resting is not None and resting.collecting and not self._stop.is_set():
                # the audio ended within the resting seconds: calibrate to what there is
                self._report(calibrate_voice(self._speech, resting.finish(), mic.rate))
            results = self._speech.flush() if offset is not None and not self._stop.is_set() else []
            self._post(("speech", results, float("inf"), 0.0))
        except AffectError as exc:
            self._warn(f"Speech analysis stopped: {exc} Going on without audio.")
        except Exception as exc:  # a bug: end the session and re-raise it from the iterator
            self._post(("crash", exc))
        finally:
            self._post(("audio-ended",))

    # ---- the caller's side
    def __iter__(self) -> Iterator[FusedAffect]:
        self.start()
        try:
            while not (self._video_done and self._audio_done):
                try:
                    event = self._events.get(timeout=0.1)
                except queue.Empty:
                    if self._stop.is_set() and all(not t.is_alive() for t in self._threads):
                        break
                    continue
                yield from self._handle(event)
                self._release_records()
            yield from self._advance(float("inf"))
        finally:
            self.close()  # a session runs once: the end of the iteration (or leaving it early) releases everything

    def __aiter__(self):
        """`async for fused in session:` the session runs in a worker thread; the event loop stays free."""
        from affect_sdk.aio import iterate_in_thread

        return iterate_in_thread(self).__aiter__()

    def run(self) -> dict[str, Any]:
        """Run to the end (duration, end of files, or stop()), calling on_result for each fused result."""
        with self:
            for fused in self:
                if self.on_result is not None:
                    self.on_result(fused)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        out = {**self.stats.summary(), "warnings": list(self.warnings)}
        return out | ({"jsonl": str(self.jsonl)} if self.jsonl is not None else {})

    def _handle(self, event: tuple) -> Iterator[FusedAffect]:
        kind = event[0]
        if kind == "faces":
            faces, frame = event[1], event[2]
            self.stats.count_frame(faces, self.camera.captured, self.camera.slot.dropped)
            self.latest_faces, self.latest_frame = faces, frame
            self._video_watermark = frame.t
            for face in faces:
                self._recorder.add(face)
            self._pending.append((faces, frame.t, frame.captured))
            # Live: fuse at once with what audio has given so far. Fast: wait until audio has caught up with the
            # frame, so a file fuses exactly as it would when played in real time.
            wait_for_audio = self.fast and not self._audio_done
            yield from self._advance(self._audio_watermark if wait_for_audio else float("inf"))
        elif kind == "speech":
            results, watermark, seconds = event[1], event[2], event[3]
            self.stats.audio_seconds += seconds
            for result in results:
                self.stats.count_speech(result)
                self.latest_speech = result
                self._recorder.add(result)
                self._unheard.append(result)
                self._undriven.append(result)
            self._audio_watermark = max(self._audio_watermark, watermark)
            yield from self._advance(self._audio_watermark)
        elif kind == "video-ended":
            self._video_done = True
            self.stats.frames_captured = self.camera.captured
            self.stats.frames_dropped = self.camera.slot.dropped
            self._event_record("video ended")
            yield from self._advance(float("inf") if self._audio_done or not self.fast else self._audio_watermark)
        elif kind == "audio-ended":
            self._audio_done = True
            self.stats.audio_overflows = self.mic.overflows
            self._event_record("audio ended")
            yield from self._advance(float("inf"))
        elif kind in ("warning", "note"):  # notes (e.g. the personal baseline) are recorded, not warned about
            self._event_record(event[1])
        elif kind == "crash":
            raise event[1]

    def _advance(self, up_to: float) -> Iterator[FusedAffect]:
        """Fuse the analysed frames up to session time `up_to`; with no video left, each speech window that no
        frame came after drives one fused result, stamped when it was fully heard."""
        while self._pending and self._pending[0][1] <= up_to:
            faces, t, captured = self._pending.popleft()
            self._state.add_faces(faces, t)
            while self._undriven and self._undriven[0].end <= t:
                self._undriven.popleft()
            yield from self._emit(t, captured)
        if self._video_done and not self._pending:
            while self._undriven:
                yield from self._emit(self._undriven.popleft().end)

    def _emit(self, t: float, captured: float | None = None) -> Iterator[FusedAffect]:
        if self._state.last_t is not None and t <= self._state.last_t:
            return  # keep fused times strictly increasing
        while self._unheard and self._unheard[0].end <= t + 1e-6:  # fusion reads windows heard by t (end <= t)
            self._state.add_speech(self._unheard.popleft())
        for fused in self._state.fuse(t):  # one result, or one per person with track="all"
            self.stats.count_fused(fused, captured)
            self.latest_fused = fused
            self._recorder.add(fused)
            yield fused

    def _release_records(self) -> None:
        """Write the records no later one can come before: frames arrive in order (but wait in _pending for audio
        when fast), and a speech window not yet out ends after the audio watermark, so its centre is at most half a
        window (plus resampler slack) before it."""
        video = float("inf") if self._video_done else self._video_watermark
        if self._pending:
            video = min(video, self._pending[0][1])
        audio = float("inf") if self._audio_done else self._audio_watermark - self._speech_lead()
        self._recorder.release(min(video, audio))

    def _speech_lead(self) -> float:
        stream = self._speech
        return (stream.window / stream.rate / 2 + 0.25) if stream is not None else 0.0

    def _models(self) -> dict[str, Any]:
        return {"face": model_entry(self._face.model) if self._face is not None else None,
                "detector": model_entry("yunet") if self._face is not None else None,
                "speech": model_entry(self._speech_model) if self._speech is not None else None}

    def _event_record(self, message: str) -> None:
        t = self.clock.now() if self.fast is False else self._state.last_t
        self._recorder.add({"kind": "event", "t": None if t is None else round(t, 6), "message": message})

