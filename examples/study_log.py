"""Log a study session: every face, voice and fused reading to a JSONL record and a CSV table, with the phase of the
study the participant was in (marked by the experimenter's app as it goes).

    python examples/study_log.py P07                 # camera 0 + default microphone until Ctrl-C
    python examples/study_log.py P07 --demo          # the sample clip shipped with affect-sdk
    -> P07.jsonl (docs/records.md) and P07.csv (one row per face per frame, speech window and fused result)
"""
import csv
import sys

from affect_sdk import Session
from affect_sdk.tables import COLUMNS, table_rows

participant = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "P00"
PHASES = [(0.0, "instructions"), (1.5, "task")]  # (start in seconds, phase): your protocol's timeline
phase_at = lambda t: [name for start, name in PHASES if t >= start][-1]  # noqa: E731

with open(f"{participant}.csv", "w", newline="") as out:
    table = csv.DictWriter(out, fieldnames=["participant", "phase", *COLUMNS])
    table.writeheader()

    def log(record):  # every record, in time order, as it is written to the JSONL too
        for row in table_rows([record]):
            table.writerow({"participant": participant, "phase": phase_at(row["t"] or 0.0), **row})
        out.flush()  # a crash loses nothing already logged

    with Session(demo="--demo" in sys.argv, jsonl=f"{participant}.jsonl", jsonl_mode="overwrite",
                 on_record=log) as session:
        for fused in session:
            pass  # a study app would show its task here; the session logs in the background
print(f"{participant}: {session.summary()['fused']} fused readings -> {participant}.jsonl, {participant}.csv")
