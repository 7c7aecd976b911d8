"""The record schema (affect-records/1) checked against real output: a session's JSONL, `affect predict --json` and
the serve header; time order in the file; an existing JSONL is refused unless --append or --overwrite."""
import json

import jsonschema
import pytest
from typer.testing import CliRunner

from affect_sdk.cli import app
from affect_sdk.records import RecordOrder, load_schema, schema_path, session_header
from affect_sdk.session import Session, demo_clip

runner = CliRunner()
VALIDATOR = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def demo_jsonl(tmp_path_factory):
    out = tmp_path_factory.mktemp("records") / "demo.jsonl"
    with Session(demo=True, fast=True, jsonl=out) as session:
        list(session)
    return out


def test_the_schema_ships_with_the_package_and_is_valid():
    assert schema_path().is_file() and schema_path().parent.name == "schema"
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_a_session_file_starts_with_its_header_and_every_record_is_valid_and_in_time_order(demo_jsonl):
    records = read_jsonl(demo_jsonl)
    header = records[0]
    assert header["kind"] == "session" and header["schema"] == "affect-records/1"
    assert header["started_at"].endswith("+00:00") or header["started_at"][-6] in "+-"  # a zone, not naive
    assert header["models"]["face"]["name"] == "face-student" and len(header["models"]["speech"]["sha256"]) == 64
    assert header["inputs"]["camera"] == str(demo_clip()) and header["options"]["rule"] == "entropy_weighted"
    for record in records:
        VALIDATOR.validate(record)
    times = [r["t"] for r in records[1:] if r.get("t") is not None]
    assert times == sorted(times)  # speech windows are known late, yet written in their place
    kinds = {r["kind"] for r in records}
    assert {"face", "speech", "fused"} <= kinds
    both = [r for r in records if r["kind"] == "fused" and r["sources"] == ["face", "speech"]]
    assert both and all(abs(sum(r["weights"].values()) - 1) < 1e-5 and set(r["weights"]) == {"face", "speech"}
                        for r in both)
    assert all(r["track_id"] == 0 for r in records if r["kind"] == "face")  # one person: one track


def test_a_broken_record_fails_the_schema():
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({"kind": "fused", "t": 1.0, "label": "happy", "probs": {"happy": 1.0}, "valence": 0,
                            "arousal": 0, "confidence": 1})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(session_header(models={}) | {"started_at": "2026-01-01T00:00:00"})  # no zone


def test_record_order_holds_records_until_the_watermark_passes_them():
    out = []
    order = RecordOrder(out.append)
    for t in (0.0, 0.5, 0.3, 1.0):
        order.add({"kind": "face", "t": t})
    order.add({"kind": "event", "t": None, "message": "x"})
    order.release(0.6)
    assert [r["t"] for r in out] == [0.0, 0.3, 0.5]
    order.add({"kind": "face", "t": 0.8})
    order.release(float("inf"))
    assert [r.get("t") for r in out] == [0.0, 0.3, 0.5, 0.8, 1.0, None]  # the event after what came before it


def test_an_existing_jsonl_is_refused_unless_appended_to_or_overwritten(demo_jsonl, tmp_path):
    out = tmp_path / "run.jsonl"
    out.write_bytes(demo_jsonl.read_bytes())
    before = out.read_bytes()
    result = runner.invoke(app, ["live", "--demo", "--fast", "--no-audio", "--duration", "0.5", "--jsonl", str(out)])
    assert result.exit_code == 2 and out.read_bytes() == before
    assert len(result.output.strip().splitlines()) == 1 and "--append" in result.output
    result = runner.invoke(app, ["live", "--demo", "--fast", "--no-audio", "--duration", "0.5", "--jsonl", str(out),
                                 "--append", "--json"])
    assert result.exit_code == 0, result.output
    records = read_jsonl(out)
    headers = [i for i, r in enumerate(records) if r["kind"] == "session"]
    assert len(headers) == 2 and out.read_bytes().startswith(before)  # old records kept, a new session after them
    assert records[headers[0]]["session_id"] != records[headers[1]]["session_id"]
    table = tmp_path / "run.csv"
    result = runner.invoke(app, ["live", "--demo", "--fast", "--no-audio", "--duration", "0.5", "--jsonl", str(out),
                                 "--overwrite", "--json", "--csv", str(table)])
    assert result.exit_code == 0, result.output
    records = read_jsonl(out)
    assert sum(r["kind"] == "session" for r in records) == 1 and records[0]["kind"] == "session"
    assert max(r["t"] for r in records if r.get("t") is not None) < 0.6
    rows = table.read_text().splitlines()  # live --csv: a row per face and per fused result, file from the header
    assert len(rows) - 1 == sum(r["kind"] in ("face", "fused") for r in records)
    assert rows[1].startswith(f"{demo_clip()},face,0.0,0,")


def test_predict_json_records_of_a_video_with_a_voice_are_valid(shared):
    clip = shared / "data/ravdess_av_clips/01-01-08-01-01-02-01.mp4"
    result = runner.invoke(app, ["predict", str(clip), "--json", "--step", "3"])
    assert result.exit_code == 0, result.output
    for line in result.output.strip().splitlines():
        VALIDATOR.validate(json.loads(line))


def test_the_serve_header_is_the_same_session_record():
    from affect_sdk.fusion.sync import SyncConfig
    from affect_sdk.serve.protocol import Limits, session_header as serve_header

    header = serve_header(models={"face": {"name": "face-student", "sha256": "0" * 64}}, sync=SyncConfig(),
                          limits=Limits())
    VALIDATOR.validate(header)
    assert header["schema"] == "affect-records/1" and header["clock"] == "client" and "limits" in header
