"""`affect predict PATH...` and `analyze_files`: folders of images, videos and sounds into one table; a video with
a voice is fused like live; a bad file is reported and skipped; tables with and without pandas."""
import csv
import json
import shutil
import subprocess
import sys

import cv2
import pytest
from typer.testing import CliRunner

import affect_sdk
from affect_sdk.cli import app
from affect_sdk.labels import CLASSES
from affect_sdk.predict import PredictOptions, analyze_files
from affect_sdk.tables import COLUMNS, table_rows

runner = CliRunner()
VOICED_CLIP = "data/ravdess_av_clips/01-01-08-01-01-02-01.mp4"  # surprised, with its sound track


@pytest.fixture(scope="module")
def media_folder(shared, tmp_path_factory):
    """A folder as a study leaves it: a video with sound, a face image, a speech recording in a subfolder, a
    broken image, and a text file that is no media at all."""
    folder = tmp_path_factory.mktemp("study")
    shutil.copy(shared / VOICED_CLIP, folder / "clip.mp4")
    capture = cv2.VideoCapture(str(shared / VOICED_CLIP))
    ok, frame = capture.read()
    capture.release()
    assert ok
    cv2.imwrite(str(folder / "face.png"), frame)
    (folder / "voice").mkdir()
    shutil.copy(shared / "data/ravdess_speech/Actor_01/03-01-08-02-01-01-01.flac", folder / "voice" / "says.flac")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n0000")
    (folder / "notes.txt").write_text("not media\n")
    return folder


def test_a_folder_becomes_one_table_and_a_bad_file_is_skipped(media_folder, tmp_path):
    out = tmp_path / "table.csv"
    result = runner.invoke(app, ["predict", str(media_folder), "--csv", str(out), "--step", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "broken.png" in result.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS and {"happy", "contempt", "track_id", "box_w"} <= set(rows[0])
    files = {row["file"].rsplit("/", 1)[-1] for row in rows}
    assert files == {"clip.mp4", "face.png", "says.flac"}  # the broken image and the text file add no row
    faces = [r for r in rows if r["source"] == "face"]
    assert faces and all(r["track_id"] == "0" and abs(sum(float(r[c]) for c in CLASSES) - 1) < 1e-4 for r in faces)
    assert any(r["source"] == "speech" and r["file"].endswith("says.flac") for r in rows)
    assert any(r["source"] == "fused" and r["file"].endswith("clip.mp4") for r in rows)
    errors = [json.loads(line) for line in result.stdout.splitlines() if '"file_error"' in line]
    assert len(errors) == 1 and errors[0]["file"].endswith("broken.png")


def test_analyze_files_fuses_a_video_with_its_voice_through_the_live_fusion(shared):
    records = list(analyze_files([shared / VOICED_CLIP], PredictOptions(step=2)))
    kinds = [r["kind"] for r in records]
    assert kinds[-1] == "video_summary" and kinds[-2] == "fused_summary"  # the face summary stays last
    assert {"frame", "speech", "fused"} <= set(kinds) and all(r["file"].endswith(".mp4") for r in records)
    fused = records[-2]
    assert fused["sources"] == ["face", "speech"] and fused["both"] > 0 and fused["label"] in CLASSES
    assert records[-1]["sources"] == ["face", "speech"] and "evidence" in records[-1]
    both = [r for r in records if r["kind"] == "fused" and len(r["sources"]) == 2]
    assert both and all(r["track_id"] == 0 and set(r["weights"]) == {"face", "speech"} for r in both)
    face_only = list(analyze_files([shared / VOICED_CLIP], PredictOptions(step=6, fuse=False)))
    assert "speech" not in {r["kind"] for r in face_only} and face_only[-1]["sources"] == ["face"]


def test_one_bad_file_alone_is_one_error_line(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n0000")
    result = runner.invoke(app, ["predict", str(bad), str(tmp_path / "missing.png")])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: File {tmp_path / 'missing.png'} does not exist; expected an image, a video, a sound file or a folder."]


def test_to_dataframe_has_a_column_per_class(shared):
    pytest.importorskip("pandas")
    image = shared / "data/ferplus/FER2013Test/fer0032220.png"
    frame = affect_sdk.to_dataframe(analyze_files([image]))
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 1
    assert frame.loc[0, "source"] == "face" and frame.loc[0, "track_id"] == 0
    assert frame.loc[0, "label"] == max(CLASSES, key=lambda c: frame.loc[0, c])


def test_parquet_round_trips(shared, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "faces.parquet"
    image = shared / "data/ferplus/FER2013Test/fer0032220.png"
    result = runner.invoke(app, ["predict", str(image), "--parquet", str(out), "-q"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == list(COLUMNS) and table.num_rows == 1


def test_csv_needs_no_pandas(tmp_path):
    """The csv module alone: pandas made unimportable in a fresh interpreter."""
    code = ("import sys; sys.modules['pandas'] = None\n"
            "from affect_sdk.results import FaceAffect\n"
            "from affect_sdk.tables import table_rows, write_csv\n"
            "face = FaceAffect(t=0.5, probs=(0.1, 0.9, 0, 0, 0, 0, 0, 0), valence=0.5, arousal=0.2, confidence=0.9,"
            " box=(1, 2, 3, 4), track_id=3)\n"
            f"write_csv(table_rows([face]), {str(tmp_path / 'out.csv')!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    expected = ["", "face", "0.5", "3", "happy", "0.1", "0.9", *["0.0"] * 6, "0.5", "0.2", "0.9", "1", "2", "3", "4"]
    assert rows == [dict(zip(COLUMNS, expected))]


def test_table_rows_reads_result_objects_and_jsonl_dicts_alike():
    from affect_sdk.results import SpeechAffect

    speech = SpeechAffect(t=1.0, probs=None, valence=float("nan"), arousal=float("nan"), confidence=0.0,
                          voiced=False, start=0.0, end=2.0)
    rows = table_rows([speech, speech.to_dict()])
    assert rows[0] == rows[1] and rows[0]["source"] == "speech" and rows[0]["label"] is None
    with pytest.raises(affect_sdk.InputError, match="sources"):
        table_rows([], sources=["faces"])


@pytest.mark.parametrize("command", [["predict", "{flac}"], ["predict", "{clip}", "--step", "10"],
                                     ["live", "--demo", "--fast", "--duration", "0.5"]], ids=["sound", "video", "live"])
def test_asking_for_a_missing_gpu_is_one_line_on_every_command(shared, speech_flac, command):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal cannot be shown here")
    args = [a.format(flac=speech_flac, clip=shared / VOICED_CLIP) for a in command] + ["--device", "cuda"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: Compute device 'cuda' was asked for, but this machine has no usable CUDA GPU."]


def test_baseline_sound_file_calibrates_the_voice(shared, speech_flac):
    rest = shared / "data" / "ravdess_speech" / "Actor_01" / "03-01-01-01-01-01-01.flac"  # actor 01, neutral
    plain = list(analyze_files([speech_flac]))[-1]
    rested = list(analyze_files([speech_flac], PredictOptions(baseline=rest)))[-1]
    assert plain["kind"] == rested["kind"] == "speech_summary"
    assert plain["baseline"] is False and rested["baseline"] is True and rested["probs"] != plain["probs"]
    out = runner.invoke(app, ["predict", str(speech_flac), "--json", "--baseline", str(speech_flac.parent / "no.flac")])
    assert out.exit_code == 2 and "does not exist" in out.output
