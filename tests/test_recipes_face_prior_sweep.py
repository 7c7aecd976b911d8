"""recipes/face_prior_sweep.py: the sweep's arithmetic, and bad input as one sentence."""
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
from face_prior_sweep import sweep  # noqa: E402


def test_a_stronger_prior_adjustment_moves_answers_to_the_rare_class():
    prior = np.array([0.9] + [0.1 / 7] * 7)
    logits = np.zeros((4, 8))
    logits[:, 0], logits[:, 1] = 1.0, 0.0  # every face leans to the frequent class
    labels = np.array([0, 1, 1, 1])
    rows = sweep(logits, labels, prior, [0.0, 1.0])
    assert rows[0]["accuracy"] == 0.25 and rows[0]["neutral_recall"] == 1.0
    assert rows[1]["neutral_recall"] == 0.0 and rows[1]["balanced_accuracy"] >= rows[0]["balanced_accuracy"]


def test_an_unknown_model_is_one_sentence():
    done = subprocess.run([sys.executable, "recipes/face_prior_sweep.py", "--models", "no-such-model"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 2 and "Traceback" not in done.stderr and "no-such-model" in done.stderr
