"""The browser client of `affect serve` in a real headless Chromium, with the demo clip as its camera and microphone.

Chromium's fake capture devices play a Y4M video and a WAV file (both written here from the shipped clip) through
getUserMedia, so the page runs exactly as with a webcam: canvas -> JPEG frames, AudioWorklet -> 16 kHz PCM,
WebSocket -> fused records on the page. The screenshot is kept in runs/serve_browser.png.
"""
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install -e '.[serve]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[dev]'")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from affect_sdk.labels import CLASSES  # noqa: E402
from affect_sdk.serve.app import ServeConfig, running_server  # noqa: E402
from affect_sdk.session import demo_clip  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[1] / "runs" / "serve_browser.png"
TOKEN = "browser-token"
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="Chromium is not installed: apt install chromium chromium-driver")


def write_y4m(source: Path, target: Path, fps: int = 15, width: int = 320) -> None:
    """The clip's video as an uncompressed YUV4MPEG2 file (what Chromium's fake camera reads), at `fps`."""
    import av

    with av.open(str(source)) as container, target.open("wb") as out:
        taken = 0
        for frame in container.decode(video=0):
            if frame.time is None or frame.time * fps < taken - 1e-6:
                continue
            height = round(frame.height * width / frame.width / 2) * 2  # 4:2:0 needs even sides
            yuv = frame.reformat(width=width, height=height, format="yuv420p").to_ndarray()  # Y, U, V planes
            if not taken:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            out.write(b"FRAME\n" + yuv.tobytes())
            taken += 1


def write_wav(source: Path, target: Path) -> None:
    import soundfile as sf

    from affect_sdk.audio.features import load_audio

    sf.write(target, load_audio(source, 16000), 16000, subtype="PCM_16")


@pytest.fixture(scope="module")
def fake_devices(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fake-devices")
    video, sound = folder / "camera.y4m", folder / "microphone.wav"
    write_y4m(demo_clip(), video)
    write_wav(demo_clip(), sound)
    return video, sound


def chromium(video: Path, sound: Path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,620",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={sound}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))  # Debian's driver: no download


def text(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def test_the_page_shows_live_fused_affect_from_camera_and_microphone(fake_devices):
    with running_server(ServeConfig(token=TOKEN)) as url:
        browser = chromium(*fake_devices)
        try:
            browser.get(f"{url}/?token={TOKEN}")  # browsers cannot set headers: the token rides in the URL
            browser.find_element(By.ID, "start").click()  # a user gesture, as a real page needs for audio
            deadline = time.monotonic() + 30
            while not ("face + speech" in text(browser, "sources") and int(text(browser, "fused-count")) >= 30):
                assert time.monotonic() < deadline, (f"no fused face + speech result on the page in 30 s: "
                                                     f"{text(browser, 'status')!r} {text(browser, 'error')!r}")
                time.sleep(0.25)
            # one script call reads the label and all bars at once: records keep arriving between separate reads
            label, shown = browser.execute_script(
                "return [document.getElementById('label').textContent,"
                " arguments[0].map((n) => Number(document.getElementById('p-' + n).textContent))];", list(CLASSES))
            label = label.lower()
            trail = browser.execute_script("return trail.length")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            browser.save_screenshot(str(SCREENSHOT))
            errors = text(browser, "error")
        finally:
            browser.quit()
    assert label in CLASSES and shown[CLASSES.index(label)] == max(shown)
    assert sum(shown) == pytest.approx(1.0, abs=0.03)
    assert trail >= 10 and not errors
