"""`affect batch`: a folder of recordings into one Parquet dataset (a part per file) and a status table, in local
worker processes or on a real local Ray cluster; the same tables either way, a killed worker loses nothing, a
rerun skips the work done, a bad file is an error row, and long videos are cut into parts and stitched."""
import os
import shutil
import signal
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from affect_sdk.batch import BatchOptions, run_batch
from affect_sdk.batch.plan import Unit, models_sha256, read_manifest, split_video
from affect_sdk.batch.store import part_name
from affect_sdk.batch.work import stitch
from affect_sdk.cli import app
from affect_sdk.errors import InputError
from affect_sdk.predict import PredictOptions, analyze_files
from affect_sdk.tables import COLUMNS, table_rows

pq = pytest.importorskip("pyarrow.parquet")
CLIPS = ["01-01-08-01-01-02-01.mp4", "01-01-01-01-01-01-01.mp4", "01-01-01-01-02-01-01.mp4"]  # 3.2 s, with voice
SPEECH = ["Actor_01/03-01-08-02-01-01-01.flac", "Actor_02/03-01-03-01-01-01-02.flac",
          "Actor_03/03-01-05-02-02-01-03.flac"]
STEP = 6  # every 6th frame: 17 frames a clip keeps the module well under a minute and a half
# parts of 1 s: each 3.2 s clip becomes 4 parts, analysed in parallel and stitched
OPTIONS = BatchOptions(predict=PredictOptions(step=STEP), workers=2, segment_s=1.0)
runner = CliRunner()


@pytest.fixture(scope="module")
def study(shared, tmp_path_factory):
    """Eleven files as a study leaves them: 3 videos with a voice, 3 face images, 3 voice recordings, the shipped
    demo clip cut to its first second, and a damaged image."""
    folder = tmp_path_factory.mktemp("study")
    for name in CLIPS:
        shutil.copy(shared / "data/ravdess_av_clips" / name, folder / name)
    for i, name in enumerate(CLIPS):
        capture = cv2.VideoCapture(str(folder / name))
        capture.set(cv2.CAP_PROP_POS_FRAMES, 40)
        ok, frame = capture.read()
        capture.release()
        assert ok
        cv2.imwrite(str(folder / f"face{i}.png"), frame)
    (folder / "voice").mkdir()
    for name in SPEECH:
        shutil.copy(shared / "data/ravdess_speech" / name, folder / "voice" / Path(name).name)
    _first_second(shared / "data/ravdess_av_clips" / CLIPS[1], folder / "short.avi")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n0000")
    return folder


def _first_second(source: Path, target: Path) -> None:
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(int(fps)):
        ok, frame = capture.read()
        if writer is None:
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), fps, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    capture.release()


@pytest.fixture(scope="module")
def local_run(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "study.parquet"
    summary = run_batch([study], out, OPTIONS)
    return out, summary


def _status(out: Path) -> dict[str, dict]:
    return {Path(row["file"]).name: row for row in pq.read_table(out / "_status.parquet").to_pylist()}


def _rows(out: Path, file: str) -> list[dict]:
    return pq.read_table(out / part_name(file)).to_pylist()


def test_a_folder_becomes_a_dataset_of_one_part_per_file_and_a_status_table(study, local_run):
    out, summary = local_run
    assert (summary.files, summary.ok, summary.failed, summary.skipped) == (11, 10, 1, 0)
    status = _status(out)
    assert len(status) == 11 and status["broken.png"]["status"] == "error"
    assert "broken.png" in status["broken.png"]["message"] and "Traceback" not in status["broken.png"]["message"]
    assert status["broken.png"]["part_file"] is None and not (out / part_name(str(study / "broken.png"))).exists()
    ok = [s for name, s in status.items() if name != "broken.png"]
    assert all(s["status"] == "ok" and s["message"] is None and s["seconds"] > 0 and len(s["content_sha256"]) == 64
               for s in ok)
    assert {s["parts"] for s in ok} == {1, 4}  # the 3.2 s clips in four parts of 1 s, the 1 s clip whole
    whole = pq.read_table(out).to_pylist()  # the folder read as one dataset: the status files are skipped
    assert set(whole[0]) == set(COLUMNS) and len(whole) == sum(s["rows"] for s in ok)
    for name in ("face0.png", "voice/03-01-08-02-01-01-01.flac", "short.avi"):  # one part: as `affect predict`
        file = str(study / name)
        assert _rows(out, file) == table_rows(analyze_files([file], OPTIONS.predict))


def test_a_long_video_cut_into_parts_reads_as_the_whole_file(study, local_run):
    """Faces and speech windows exactly as the whole file gives them; fused results within smoothing rounding."""
    out, _ = local_run
    file = str(study / CLIPS[0])
    parts = _rows(out, file)
    whole = table_rows(analyze_files([file], OPTIONS.predict))
    key = lambda r: (r["source"], r["t"])  # noqa: E731
    parts, whole = sorted(parts, key=key), sorted(whole, key=key)
    assert [key(r) for r in parts] == [key(r) for r in whole]
    assert [r for r in parts if r["source"] != "fused"] == [r for r in whole if r["source"] != "fused"]
    assert {r["track_id"] for r in parts if r["source"] == "face"} == {0}  # one person, one id across the cuts
    fused = [(a, b) for a, b in zip(parts, whole) if a["source"] == "fused"]
    assert fused and max(abs(a[c] - b[c]) for a, b in fused for c in ("happy", "valence", "arousal")) < 0.01


def test_a_rerun_skips_the_files_done_and_redoes_a_changed_one(study, tmp_path):
    folder = tmp_path / "few"
    folder.mkdir()
    shutil.copy(study / "face0.png", folder / "a.png")
    shutil.copy(study / "voice/03-01-08-02-01-01-01.flac", folder / "b.flac")
    out = tmp_path / "out"
    options = BatchOptions(predict=PredictOptions(step=STEP), workers=1)
    assert run_batch([folder], out, options).ok == 2
    part = out / part_name(str(folder / "a.png"))
    written = part.stat().st_mtime_ns
    again = run_batch([folder], out, options)
    assert (again.ok, again.skipped) == (0, 2) and part.stat().st_mtime_ns == written
    shutil.copy(study / "face1.png", folder / "a.png")  # new content under the same name
    changed = run_batch([folder], out, options)
    assert (changed.ok, changed.skipped) == (1, 1) and part.stat().st_mtime_ns != written
    assert _rows(out, str(folder / "a.png")) == table_rows(analyze_files([folder / "a.png"], options.predict))
    journal = (out / "_status.jsonl").read_text().splitlines()
    assert len(journal) == 3 and len(_status(out)) == 2


def test_other_models_or_options_redo_every_file():
    assert models_sha256(PredictOptions(step=1), 120.0) == models_sha256(PredictOptions(step=1), 120.0)
    assert models_sha256(PredictOptions(step=1), 120.0) != models_sha256(PredictOptions(step=2), 120.0)
    assert models_sha256(PredictOptions(), 120.0) != models_sha256(PredictOptions(face_model="face-teacher"), 120.0)


def test_a_killed_local_worker_costs_only_its_file_which_is_retried(study, tmp_path):
    """One file's worker is killed once (retried, then fine); another's is killed on every try (an error row)."""
    folder = tmp_path / "crash"
    folder.mkdir()
    for name in ("face0.png", "face1.png", "face2.png"):
        shutil.copy(study / name, folder / name)
    killed: list[str] = []

    def kill(unit_id: int, unit: Unit, pid: int) -> None:
        name = Path(unit.file).name
        if name == "face2.png" or (name == "face0.png" and name not in killed):
            killed.append(name)
            os.kill(pid, signal.SIGKILL)

    options = BatchOptions(predict=PredictOptions(step=STEP), workers=2, retries=1)
    summary = run_batch([folder], tmp_path / "out", options, on_start=kill)
    status = _status(tmp_path / "out")
    assert killed.count("face0.png") == 1 and killed.count("face2.png") == 2
    assert status["face0.png"]["status"] == "ok" and status["face0.png"]["attempts"] == 2
    assert status["face1.png"]["status"] == "ok" and status["face1.png"]["attempts"] == 1
    assert status["face2.png"]["status"] == "error" and "SIGKILL" in status["face2.png"]["message"]
    assert (summary.ok, summary.failed) == (2, 1)
    assert _rows(tmp_path / "out", str(folder / "face0.png")) == table_rows(analyze_files([folder / "face0.png"]))


def _ray_workers() -> list[int]:
    """Pids of the Ray actors running our UDF (Ray names the process after the actor class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"AnalyzeUnits" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_a_ray_cluster_with_a_killed_worker_gives_the_local_tables(study, local_run, tmp_path):
    ray = pytest.importorskip("ray")
    out, _ = local_run
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    try:
        finished, result, victims = threading.Event(), {}, []
        worker = threading.Thread(target=lambda: result.update(summary=run_batch(
            [study], tmp_path / "ray.parquet", replace(OPTIONS, ray="auto"),
            on_file=lambda entry: finished.set())))
        worker.start()
        assert finished.wait(120), "no file came back from Ray"
        victims = _ray_workers()[:1]
        for pid in victims:  # mid-run: one file of eleven is done
            os.kill(pid, signal.SIGKILL)
        worker.join(180)
        assert not worker.is_alive()
    finally:
        ray.shutdown()
    assert victims, "no Ray worker process was found to kill"
    summary = result["summary"]
    assert (summary.ok, summary.failed) == (10, 1), summary.errors
    local, remote = _status(out), _status(tmp_path / "ray.parquet")
    assert {k: (v["status"], v["message"], v["rows"]) for k, v in local.items()} == \
           {k: (v["status"], v["message"], v["rows"]) for k, v in remote.items()}
    for status in local.values():
        if status["part_file"]:
            assert pq.read_table(out / status["part_file"]).equals(
                pq.read_table(tmp_path / "ray.parquet" / status["part_file"])), status["file"]


def test_ray_missing_is_one_sentence(study, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the 'ray' extra were not installed
    with pytest.raises(InputError, match=r"pip install 'affect-sdk\[ray\]'"):
        run_batch([study / "face0.png"], tmp_path / "out", BatchOptions(ray="auto"))


def test_the_cli_writes_the_dataset_and_refuses_bad_input_in_one_line(study, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,participant\n{study / 'face0.png'},P01\nmissing.png,P02\n")
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["batch", str(manifest), "--out", str(out), "--workers", "1", "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert "2 files: 1 analysed, 1 failed, 0 skipped" in result.output and "missing.png" in result.output
    assert _status(out)["missing.png"]["message"].startswith("Cannot read")
    for args in (["batch", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")],
                 ["batch", str(study / "face0.png"), "--out", str(manifest)],
                 ["batch", str(study / "broken.png"), "--out", str(tmp_path / "o2")],
                 ["batch", str(study / "face0.png"), "--out", str(tmp_path / "o3"), "--segment-seconds", "0"]):
        failed = runner.invoke(app, args)
        assert failed.exit_code == 2 and failed.output.startswith("error: ") and "Traceback" not in failed.output
        assert len(failed.output.strip().splitlines()) <= 2, failed.output  # the error (and a warning naming it)


# ---------------------------------------------------------------- the pure parts
def test_parts_of_a_video_cover_each_frame_and_speech_window_once():
    parts = split_video(frames=300, fps=30.0, segment_s=4.0, hop_s=0.5, window_s=2.0)
    assert [p.part for p in parts] == [0, 1, 2] and all(p.parts == 3 for p in parts)
    assert [(p.span.first_frame, p.span.end_frame) for p in parts] == [(0, 120), (90, 240), (210, None)]
    assert [p.times[0] for p in parts[1:]] == pytest.approx([4.0 - 0.5 / 30, 8.0 - 0.5 / 30])
    assert [p.speech for p in parts] == [(0.0, 4.0), (4.0, 8.0), (8.0, float("inf"))]
    assert parts[1].span.audio_start == 1.0 and parts[1].span.audio_end == 10.25  # a window before, one after
    assert split_video(frames=100, fps=30.0, segment_s=4.0, hop_s=0.5, window_s=2.0) == []  # fits in one


def test_stitching_keeps_a_person_s_track_across_a_cut_and_numbers_new_people_on():
    def face(t, track, x):
        return {"source": "face", "t": t, "track_id": track, "box_x": x, "box_y": 0, "box_w": 100, "box_h": 100}

    first = [face(0.9, 0, 0), face(0.9, 1, 500)]
    second = [face(1.0, 0, 505), face(1.0, 1, 2), face(1.0, 2, 900), {"source": "speech", "t": 1.0, "track_id": None}]
    rows = stitch([first, second], [0.0, 1.0])
    assert [r["track_id"] for r in rows] == [0, 1, 1, 0, 2, None]


def test_a_manifest_names_files_relative_to_itself(tmp_path):
    (tmp_path / "m.csv").write_text("participant,path\nP1,clips/a.mp4\nP2,/data/b.wav\n")
    assert read_manifest(tmp_path / "m.csv") == [tmp_path / "clips/a.mp4", Path("/data/b.wav")]
    (tmp_path / "bad.csv").write_text("name\na.mp4\n")
    with pytest.raises(InputError, match="needs a 'path' column"):
        read_manifest(tmp_path / "bad.csv")
