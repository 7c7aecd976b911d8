"""Ctrl-C and SIGTERM: `affect live` and `affect predict` flush, print their summary, join their workers and exit
130 / 143, with every JSONL line whole and no abort ("terminate called ...") at interpreter exit."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.live import make_inputs

AFFECT = [sys.executable, "-m", "affect_sdk.cli"]


@pytest.fixture(scope="module")
def long_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A 20 s looped video of the demo face and its looped voice: long enough to be interrupted mid-run."""
    return make_inputs(20.0, tmp_path_factory.mktemp("long"))


def _default_sigint() -> None:
    # A shell's background job starts with SIGINT ignored, and that is inherited: undo it, like a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_live(video: Path, audio: Path, jsonl: Path, signum: int, after_records: int) -> tuple[int, str, str]:
    """Run `affect live` on the files, send `signum` once the JSONL has `after_records` lines; (code, out, err)."""
    process = subprocess.Popen([*AFFECT, "live", "--camera", str(video), "--mic", str(audio), "--jsonl", str(jsonl),
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if jsonl.is_file() and jsonl.read_bytes().count(b"\n") >= after_records + 1:  # + the session header
            break
        time.sleep(0.05)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def whole_lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), "the last JSONL line is cut"
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("signum, code, after", [(signal.SIGINT, 130, 1), (signal.SIGINT, 130, 60),
                                                 (signal.SIGTERM, 143, 30)], ids=["int-early", "int-late", "term"])
def test_an_interrupted_live_run_exits_130_or_143_with_whole_jsonl(long_inputs, tmp_path, signum, code, after):
    jsonl = tmp_path / "live.jsonl"
    returncode, out, err = interrupt_live(*long_inputs, jsonl, signum, after)
    assert returncode == code, err
    assert "terminate called" not in err and "Traceback" not in err
    records = whole_lines(jsonl)
    assert len(records) >= after
    summary = json.loads(out.strip().splitlines()[-1])  # the summary was printed before exiting
    assert summary["frames_analysed"] >= 1 and summary["seconds"] < 20


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["int", "term"])
def test_an_interrupted_predict_exits_130_or_143(long_inputs, signum, code):
    process = subprocess.Popen([*AFFECT, "predict", str(long_inputs[0]), "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    first = process.stdout.readline()  # a frame result: the command is running
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert json.loads(first)["kind"] == "frame" and all(json.loads(line) for line in out.splitlines())
    assert "Traceback" not in err
