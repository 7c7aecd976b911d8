"""Shared fixtures: the read-only data folder beside the repo, and a private PulseAudio server as a real microphone."""
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"the shared data folder {SHARED} is not beside the repo")
    return SHARED


# ---------------------------------------------------------------- a real microphone: a private PulseAudio server
PULSE_PACKAGES = "pulseaudio pulseaudio-utils libasound2-plugins libportaudio2"


@dataclass
class PulseMic:
    """A virtual microphone: what `play` sends into sink `vsink` is recorded from source `vmic` (the default)."""

    device: str  # the PortAudio (ALSA) device that reaches PulseAudio
    env: dict

    def play(self, path: Path) -> subprocess.Popen:
        """Play a sound file into the virtual microphone (returns at once; wait() on the process if needed)."""
        return subprocess.Popen(["paplay", "-d", "vsink", str(path)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pactl_ok(env: dict) -> bool:
    try:
        return subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=2).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def pulse_mic(tmp_path_factory) -> PulseMic:
    """A private PulseAudio server (null sink `vsink` at 16 kHz mono, its monitor remapped as source `vmic`),
    reachable by sounddevice through ALSA's `default` device (pulse ALSA plugin from libasound2-plugins)."""
    if not all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "paplay", "pacat")):
        pytest.skip(f"PulseAudio is not installed; the real-microphone tests need: apt install {PULSE_PACKAGES}")
    runtime = tmp_path_factory.mktemp("pulse")
    # HOME too: the server keeps its cookie and state there instead of in the real home directory.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime),
           "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
    log = (runtime / "pulseaudio.log").open("w")
    server = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
         "-L", "module-native-protocol-unix auth-anonymous=1",
         "-L", "module-null-sink sink_name=vsink rate=16000 channels=1",
         "-L", "module-remap-source master=vsink.monitor source_name=vmic"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10.0
    while not _pactl_ok(env):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            log.close()
            pytest.fail(f"the private PulseAudio server did not start:\n{(runtime / 'pulseaudio.log').read_text()}")
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-source", "vmic"], env=env, check=True, capture_output=True)
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER")}
    os.environ.update(XDG_RUNTIME_DIR=env["XDG_RUNTIME_DIR"], PULSE_SERVER=env["PULSE_SERVER"])
    if "sounddevice" in sys.modules:  # PortAudio lists devices once, at initialisation: rescan now pulse is up
        sys.modules["sounddevice"]._terminate()
        sys.modules["sounddevice"]._initialize()
    # An idle null sink runs in 2 s blocks, so a recording opened on it waited ~1.7 s for its first audio. A
    # low-latency stream of silence keeps the sink clocked in 20 ms steps (and the microphone truly silent).
    keep_clocked = subprocess.Popen(
        ["pacat", "--playback", "--device=vsink", "--latency-msec=20", "--format=s16le", "--rate=16000",
         "--channels=1", "/dev/zero"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import sounddevice as sd

        # A process's first recording through the pulse ALSA plugin still takes ~1.6 s to deliver; later ones
        # start at once. Pay that here, not inside the tests' short sessions.
        try:
            with sd.InputStream(device="default", channels=1, samplerate=16000, dtype="float32") as warm_up:
                warm_up.read(160)
        except Exception as exc:  # PortAudio errors are untyped
            pytest.fail(f"PortAudio cannot record from the private PulseAudio server through ALSA 'default' ({exc}); "
                        f"the pulse ALSA plugin comes with libasound2-plugins (apt install {PULSE_PACKAGES}).")
        yield PulseMic(device="default", env=env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        keep_clocked.terminate()
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def speech_flac(shared) -> Path:
    """A real RAVDESS utterance (actor 01, surprised, strong; 16 kHz mono FLAC, ~3.4 s)."""
    path = shared / "data" / "ravdess_speech" / "Actor_01" / "03-01-08-02-01-01-01.flac"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path
