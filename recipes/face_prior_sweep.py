"""Ad-hoc (FER+ Valid only): accuracy and balanced accuracy of a face model under logit adjustment s*log(prior)."""
import sys
import numpy as np
from affect_sdk.registry import get_spec
from affect_sdk.vision.data import cached_ferplus
from affect_sdk.vision.infer import FaceAnalyzer

for name in sys.argv[1].split(","):
    valid = cached_ferplus("../shared/data/ferplus", "valid", ".cache")
    prior = cached_ferplus("../shared/data/ferplus", "train", ".cache").soft.mean(axis=0)
    logits, _ = FaceAnalyzer(name, backend="torch", prior="train").raw_outputs(valid.images)
    y = valid.labels
    for s in (0, 0.25, 0.5, 0.75, 1.0):
        pred = (logits - s * np.log(prior)).argmax(1)
        acc = (pred == y).mean()
        rec = [np.mean(pred[y == c] == c) for c in np.unique(y)]
        print(f"{name} s={s:.2f} acc {acc:.4f} bal {np.mean(rec):.4f} mean {(acc + np.mean(rec)) / 2:.4f} "
              f"neutral-recall {rec[0]:.3f}", flush=True)
