"""recipes/teacher_ensemble_eval.py: bad input is one sentence, exit 2 (it was a traceback)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_missing_data_folder_or_unknown_member_is_one_sentence(tmp_path, shared):
    for args in (["--members", "face-student", "--data", str(tmp_path / "missing")],
                 ["--members", "no-such-model", "--data", str(shared / "data/ferplus"), "--split", "valid"]):
        done = subprocess.run([sys.executable, "recipes/teacher_ensemble_eval.py", *args], capture_output=True,
                              text=True, cwd=REPO, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr and done.stdout == ""
        assert "error: " in done.stderr.strip().splitlines()[-1]
