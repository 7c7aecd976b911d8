"""Writes that fail (disk full, file-size limit, closed pipe) are one clear line and exit 2, and every line or file
already written stays whole."""
import json
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from affect_sdk.errors import InputError, OutputError
from affect_sdk.output import JsonlWriter, write_text_file

AFFECT = [sys.executable, "-m", "affect_sdk.cli"]


def _limit_file_size(limit: int):
    """preexec_fn: files this process writes may not grow past `limit` bytes; writes past it fail with EFBIG, like
    a disk that fills up (Python ignores SIGXFSZ, so the write fails instead of killing the process)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _all_lines_whole(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the last line was left half-written"
    return [json.loads(line) for line in text.splitlines()]


def test_jsonl_on_a_full_device_is_one_line_and_exit_2():
    done = subprocess.run([*AFFECT, "live", "--demo", "--fast", "--jsonl", "/dev/full", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = _error_lines(done.stderr)
    assert len(lines) == 1 and "Cannot write /dev/full: No space left on device" in lines[0]


def test_a_disk_that_fills_mid_run_keeps_every_written_line_whole(tmp_path):
    out = tmp_path / "session.jsonl"
    done = subprocess.run([*AFFECT, "live", "--demo", "--fast", "--jsonl", str(out), "--json"], capture_output=True,
                          text=True, timeout=300, preexec_fn=_limit_file_size(20_000))
    assert done.returncode == 2, done.stderr
    lines = _error_lines(done.stderr)
    assert len(lines) == 1 and "File too large" in lines[0] and "records before it are complete" in lines[0]
    records = _all_lines_whole(out)
    assert len(records) > 10 and out.stat().st_size <= 20_000


def test_the_writer_cuts_a_failed_line_back_and_refuses_more(tmp_path):
    path = tmp_path / "out.jsonl"
    with JsonlWriter(path) as writer:
        writer.write({"kind": "event", "n": 1})
        with pytest.raises(InputError, match="Out of range float"):
            writer.write({"kind": "event", "n": float("nan")})  # refused before a byte is written
    with pytest.raises(OutputError, match="No space left"):
        JsonlWriter("/dev/full").write({"kind": "event"})
    assert _all_lines_whole(path) == [{"kind": "event", "n": 1}]


def test_report_files_are_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report.md"
    write_text_file(target, "old report\n")
    code = ("import sys\nfrom affect_sdk.output import write_text_file\nfrom affect_sdk.errors import OutputError\n"
            "try:\n    write_text_file(sys.argv[1], 'x' * 50_000)\nexcept OutputError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_file_size(10_000))
    assert f"Cannot write {target}: File too large" in done.stdout
    assert target.read_text() == "old report\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_eval_fusion_report_on_a_full_disk_is_one_line(shared, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(shared / "data/ravdess_av_clips/01-01-08-01-01-02-01.mp4", clips)
    out = tmp_path / "report"
    done = subprocess.run([*AFFECT, "eval", "fusion", "--data", str(clips), "--frame-rate", "1", "--report", str(out),
                           "--json"], capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size(12_000))
    assert done.returncode == 2, done.stderr
    error = [line for line in _error_lines(done.stderr) if "error" in line]
    assert len(error) == 1 and "File too large" in error[0] and "Traceback" not in done.stderr
    for path in out.iterdir():  # what was written is whole; no temporary file is left behind
        assert not path.name.startswith(".")
        if path.suffix == ".png":
            assert path.read_bytes().endswith(b"IEND\xaeB`\x82")
        elif path.suffix == ".json":
            json.loads(path.read_text())


def test_a_closed_stdout_pipe_is_one_line_and_exit_2(shared):
    clip = shared / "data/ravdess_av_clips/01-01-08-01-01-02-01.mp4"
    process = subprocess.Popen([*AFFECT, "predict", str(clip), "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.readline()  # the reader takes one line and goes away, like `| head -1`
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 2, stderr
    lines = _error_lines(stderr)
    assert len(lines) == 1 and "Cannot write standard output" in lines[0] and "Broken pipe" in lines[0]


def test_overwrite_empties_the_file_and_append_keeps_it(tmp_path):
    path = tmp_path / "out.jsonl"
    with JsonlWriter(path) as writer:
        writer.write({"kind": "event", "n": 1})
    with JsonlWriter(path) as writer:
        writer.write({"kind": "event", "n": 2})
    assert [r["n"] for r in _all_lines_whole(path)] == [1, 2]
    with JsonlWriter(path, overwrite=True) as writer:
        writer.write({"kind": "event", "n": 3})
    assert [r["n"] for r in _all_lines_whole(path)] == [3]


def test_a_report_into_a_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="gone/report.md"):
        write_text_file(tmp_path / "gone" / "report.md", "text")


def test_an_atomically_written_file_gets_the_permissions_a_plain_write_would_and_keeps_an_existing_files(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    fresh = write_text_file(tmp_path / "report.md", "text")
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)  # not mkstemp's 0600

    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o600)
    write_text_file(private, '{"a": 1}')
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text() == '{"a": 1}'


def test_a_filesystem_that_refuses_modes_still_gets_the_whole_file(tmp_path, monkeypatch):
    import os

    def refuse(*args, **kwargs):  # vfat or some network mounts: chmod fails with EPERM, writing does not
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    written = write_text_file(tmp_path / "report.md", "whole text")
    assert written.read_text() == "whole text" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
