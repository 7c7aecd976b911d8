"""The README's "for HCI apps" examples run as a user runs them (their own __main__, argv and working folder)."""
import csv
import json
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture()
def run_example(tmp_path, capsys, monkeypatch):
    """run_example(name, *argv) -> its stdout; it runs in tmp_path, where its files land."""
    monkeypatch.chdir(tmp_path)

    def run(name: str, *args: str) -> str:
        monkeypatch.setattr(sys, "argv", [name, *args])
        capsys.readouterr()
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        return capsys.readouterr().out

    return run


def test_the_reaction_app_reacts_to_a_held_state(run_example, tmp_path):
    out = run_example("hci_reactions.py", "--demo").splitlines()
    reactions = [line for line in out if line.startswith("[")]
    assert reactions, out  # at least one state lasted a second and got its reaction
    assert out[-1].endswith("fused results; bye.") and int(out[-1].split()[0]) >= 90


def test_the_study_log_writes_a_record_and_a_table_with_phases(run_example, tmp_path):
    out = run_example("study_log.py", "P07", "--demo")
    assert "P07.jsonl" in out
    records = [json.loads(line) for line in (tmp_path / "P07.jsonl").read_text().splitlines()]
    assert records[0]["kind"] == "session"
    rows = list(csv.DictReader((tmp_path / "P07.csv").open()))
    assert {r["phase"] for r in rows} == {"instructions", "task"} and {r["participant"] for r in rows} == {"P07"}
    assert sum(r["source"] == "fused" for r in rows) == sum(r["kind"] == "fused" for r in records)
    run_example("study_log.py", "P07", "--demo")  # a second run replaces the first (overwrite)
    assert sum(json.loads(line)["kind"] == "session" for line in (tmp_path / "P07.jsonl").open()) == 1


def test_several_people_get_one_stream_each(run_example, tmp_path):
    out = run_example("several_people.py").splitlines()
    assert [line.split(":")[0] for line in out] == ["person 0", "person 1"]
    assert all("of 97 frames" in line for line in out)
