"""Progress bars: drawn on stderr when it is a terminal, never otherwise and never with --quiet; stdout untouched."""
import json
import os
import pty
import sys
import threading

import pytest
from typer.testing import CliRunner

from affect_sdk.cli import app

CLIP = "data/ravdess_av_clips/01-01-08-01-01-02-01.mp4"


@pytest.fixture()
def pty_stderr(monkeypatch):
    """attach() puts sys.stderr on a pseudo-terminal (drained by a thread) and returns a function giving what the
    terminal got. Attached inside the test: pytest's own capture replaces sys.stderr until the test body runs."""
    primary, secondary = pty.openpty()
    terminal = os.fdopen(secondary, "w", buffering=1)
    chunks = []

    def drain():
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def seen():
        terminal.flush()
        terminal.close()
        reader.join(timeout=5)
        os.close(primary)
        return b"".join(chunks).decode(errors="replace")

    def attach():
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setenv("COLUMNS", "100")
        return seen

    return attach


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as done:
        app(args)
    assert done.value.code in (0, None)
    return capsys.readouterr().out


def test_predict_draws_a_bar_with_eta_when_stderr_is_a_terminal(shared, pty_stderr, capsys):
    terminal_stderr = pty_stderr()
    out = run_cli(["predict", str(shared / CLIP), "--json", "--step", "10"], capsys)
    drawn = terminal_stderr()
    assert "ETA" in drawn and "━" in drawn and "01-01-08-01-01-02-01.mp4" in drawn
    assert json.loads(out.splitlines()[-1])["kind"] == "video_summary"  # stdout: JSON lines only


def test_quiet_draws_nothing_on_a_terminal(shared, pty_stderr, capsys):
    terminal_stderr = pty_stderr()
    run_cli(["predict", str(shared / CLIP), "--json", "--step", "10", "--quiet"], capsys)
    assert "ETA" not in terminal_stderr()


def test_no_bar_when_stderr_is_not_a_terminal(shared):
    result = CliRunner().invoke(app, ["predict", str(shared / CLIP), "--json", "--step", "10"])
    assert result.exit_code == 0 and result.stderr == ""
