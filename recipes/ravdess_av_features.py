"""Recipe: vision-only vs audio-only vs fused accuracy on RAVDESS paired per-clip features, leave-actors-out.

Data: ../shared/data/ravdess_av_features/ravdess_au_mfcc.npz (1,440 audio-visual clips of 24 actors; OpenFace
action units averaged per clip and a 259-step MFCC-derived series per clip; see its SOURCE.md). Per modality a
small classifier is trained on the training actors; its test-actor probabilities go through affect-sdk's own
fusion rules (affect_sdk.fusion.rules), the fitted rule with weights fitted (affect_sdk.fusion.fit) on
out-of-fold probabilities of the TRAINING actors only (inner leave-actors-out), never on test actors.

    .venv/bin/python recipes/ravdess_av_features.py --out runs/fusion/ravdess_av_features.json

Folds: 4 folds of 6 actors (1-6, 7-12, 13-18, 19-24); the last one is the reference split of SOURCE.md
(train 1-18, test 19-24). Labels: RAVDESS codes through affect_sdk.labels.RAVDESS_CODES (calm -> neutral), so
7 classes are present; classifiers output those 7 and contempt gets probability 0, masked for both modalities.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from affect_sdk.fusion.fit import FitConfig, fit_weights
from affect_sdk.fusion.rules import BASE_RULES, class_mask, fuse
from affect_sdk.labels import CLASS_INDEX, CLASSES, NUM_CLASSES, RAVDESS_CODES

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/ravdess_av_features/ravdess_au_mfcc.npz"
PRESENT = tuple(sorted({CLASS_INDEX[c] for c in RAVDESS_CODES.values()}))  # 7 class indices, no contempt
MASKS = (class_mask([CLASSES[i] for i in PRESENT]),) * 2
SILENCE = -65.0  # values at or below this (~-65.8) are silent frames; exact zeros are padding


@dataclass(frozen=True)
class RecipeConfig:
    folds: int = 4  # leave-6-actors-out folds over 24 actors
    inner_folds: int = 3  # inner leave-actors-out folds on the training actors, for fitting fusion weights
    vision: str = "softmax"  # softmax (regression) | mlp
    audio: str = "softmax"  # softmax | mlp, both on summary statistics of the series
    hidden: int = 64
    weight_decay: float = 0.1  # AdamW decoupled weight decay
    epochs: int = 300
    seed: int = 0


def load(path: Path):
    data = np.load(path)
    y = np.array([CLASS_INDEX[RAVDESS_CODES[f"{int(e):02d}"]] for e in data["emotion"]])
    return data["action_units"].astype(np.float64), data["mfcc_frames"].astype(np.float64), y, data["actor"].astype(int)


def series_summary(series: np.ndarray) -> np.ndarray:
    """Fixed-length description of each MFCC-derived series [N, T] -> [N, F]: level, spread, contour, timing.

    The series is one value per audio frame (see SOURCE.md): silence sits at ~-65.8 and trailing zeros are padding,
    so statistics are taken over voiced frames, plus where speech starts/ends and how long it lasts.
    """
    feats = []
    t_axis = np.linspace(0.0, 1.0, series.shape[1])
    for row in series:
        valid = row[row != 0.0] if np.any(row != 0.0) else row
        voiced = valid[valid > SILENCE]
        if voiced.size < 4:
            voiced = valid
        d = np.diff(voiced)
        idx = np.flatnonzero(row > SILENCE)
        start, end = (t_axis[idx[0]], t_axis[idx[-1]]) if idx.size else (0.0, 0.0)
        slope = np.polyfit(np.arange(voiced.size), voiced, 1)[0] if voiced.size > 1 else 0.0
        thirds = [part.mean() for part in np.array_split(voiced, 3)]
        feats.append([
            voiced.mean(), voiced.std(), voiced.min(), voiced.max(), *np.percentile(voiced, [10, 25, 50, 75, 90]),
            np.abs(d).mean(), d.std(), np.percentile(np.abs(d), 90), slope, *thirds,
            voiced.size / max(valid.size, 1), valid.size / series.shape[1], start, end, end - start,
            ((voiced[1:] - voiced.mean()) * (voiced[:-1] - voiced.mean()) > 0).mean() if voiced.size > 1 else 0.0,
        ])
    return np.asarray(feats, dtype=np.float64)


class Classifier:
    """Standardise, then softmax regression or a one-hidden-layer MLP, full-batch in torch; predicts [N, 8]."""

    def __init__(self, kind: str, config: RecipeConfig) -> None:
        self.kind, self.config = kind, config

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Classifier":
        torch.manual_seed(self.config.seed)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        xt = torch.tensor((x - self.mean) / self.std, dtype=torch.float32)
        yt = torch.tensor([PRESENT.index(int(c)) for c in y])
        k, d = len(PRESENT), x.shape[1]
        if self.kind == "softmax":
            self.net = torch.nn.Linear(d, k)
        elif self.kind == "mlp":
            self.net = torch.nn.Sequential(torch.nn.Linear(d, self.config.hidden), torch.nn.GELU(),
                                           torch.nn.Dropout(0.3), torch.nn.Linear(self.config.hidden, k))
        else:
            raise ValueError(f"unknown classifier {self.kind!r}")
        opt = torch.optim.AdamW(self.net.parameters(), lr=1e-2, weight_decay=self.config.weight_decay)
        self.net.train()
        for _ in range(self.config.epochs):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.net(xt), yt, label_smoothing=0.05)
            loss.backward()
            opt.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        logits = self.net(torch.tensor((x - self.mean) / self.std, dtype=torch.float32))
        out = np.zeros((len(x), NUM_CLASSES))
        out[:, PRESENT] = torch.softmax(logits, dim=1).numpy()
        return out


def actor_groups(actors: np.ndarray, n: int) -> list[np.ndarray]:
    ids = np.unique(actors)
    return [ids[i * len(ids) // n:(i + 1) * len(ids) // n] for i in range(n)]


def modality_probs(x_au, x_audio, y, train, test, config):
    face = Classifier(config.vision, config).fit(x_au[train], y[train]).predict(x_au[test])
    speech = Classifier(config.audio, config).fit(x_audio[train], y[train]).predict(x_audio[test])
    return face, speech


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(axis=1) == y).mean())


def run_fold(x_au, x_audio, y, actors, test_actors, config):
    train = ~np.isin(actors, test_actors)
    test = np.isin(actors, test_actors)
    # out-of-fold probabilities on the training actors -> fitted fusion weights (test actors never seen)
    oof_face, oof_speech = np.zeros((train.sum(), NUM_CLASSES)), np.zeros((train.sum(), NUM_CLASSES))
    train_idx = np.flatnonzero(train)
    for inner in actor_groups(actors[train], config.inner_folds):
        held = np.isin(actors[train_idx], inner)
        f, s = modality_probs(x_au, x_audio, y, train_idx[~held], train_idx[held], config)
        oof_face[held], oof_speech[held] = f, s
    fitted = {
        "fitted": fit_weights(oof_face, oof_speech, y[train], config=FitConfig(), masks=MASKS),
        "fitted_per_class": fit_weights(oof_face, oof_speech, y[train],
                                        config=FitConfig(per_class=True), masks=MASKS),
    }
    face, speech = modality_probs(x_au, x_audio, y, train, test, config)
    result = {"test_actors": [int(a) for a in test_actors], "n_test": int(test.sum()),
              "vision": accuracy(face, y[test]), "audio": accuracy(speech, y[test]), "fused": {}}
    for rule in BASE_RULES:
        result["fused"][rule] = accuracy(fuse(rule, face, speech, masks=MASKS), y[test])
    for name, params in fitted.items():
        result["fused"][name] = accuracy(fuse("fitted", face, speech, params=params, masks=MASKS), y[test])
    result["fitted_weights"] = {name: p.to_dict() for name, p in fitted.items()}
    return result


def summarise(folds: list[dict]) -> dict:
    def stats(values):
        return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4),
                "folds": [round(v, 4) for v in values]}

    rules = list(folds[0]["fused"])
    out = {"vision": stats([f["vision"] for f in folds]), "audio": stats([f["audio"] for f in folds]),
           "fused": {r: stats([f["fused"][r] for f in folds]) for r in rules}}
    better = max(out["vision"]["mean"], out["audio"]["mean"])
    best_rule = max(rules, key=lambda r: out["fused"][r]["mean"])
    out["best_rule"] = best_rule
    out["gain_over_better_single_pp"] = round(100 * (out["fused"][best_rule]["mean"] - better), 2)
    out["goal_met_5pp"] = out["gain_over_better_single_pp"] >= 5.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("runs/fusion/ravdess_av_features.json"))
    parser.add_argument("--vision", default=RecipeConfig.vision, choices=["softmax", "mlp"])
    parser.add_argument("--audio", default=RecipeConfig.audio, choices=["softmax", "mlp"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = RecipeConfig(vision=args.vision, audio=args.audio, seed=args.seed)
    began = time.time()
    x_au, series, y, actors = load(args.data)
    x_audio = series_summary(series)
    folds = [run_fold(x_au, x_audio, y, actors, group, config) for group in actor_groups(actors, config.folds)]
    summary = summarise(folds)
    reference = folds[-1]  # train 1-18, test 19-24
    print(f"RAVDESS AV features, {config.folds} leave-6-actors-out folds, vision={config.vision} on 35 AUs, "
          f"audio={config.audio} on {x_audio.shape[1]} series statistics")
    print(f"{'':26s} {'mean':>6s} {'std':>6s}   folds (test actors 1-6, 7-12, 13-18, 19-24)")
    rows = [("vision only", summary["vision"]), ("audio only", summary["audio"])]
    rows += [(f"fused: {r}", s) for r, s in summary["fused"].items()]
    for name, s in rows:
        print(f"{name:26s} {s['mean']:6.3f} {s['std']:6.3f}   " + "  ".join(f"{v:.3f}" for v in s["folds"]))
    print(f"best fused rule {summary['best_rule']}: {summary['gain_over_better_single_pp']:+.1f} pp over the "
          f"better single modality (goal +5 pp: {'met' if summary['goal_met_5pp'] else 'not met'})")
    print(f"reference split (train 1-18, test 19-24): vision {reference['vision']:.3f}, audio "
          f"{reference['audio']:.3f}, fused {summary['best_rule']} {reference['fused'][summary['best_rule']]:.3f} "
          f"(softmax-regression reference 0.447 / 0.286 / 0.517 concatenated)")
    report = {"recipe": "ravdess_av_features", "data": str(args.data), "config": asdict(config),
              "n_clips": int(len(y)), "classes": [CLASSES[i] for i in PRESENT], "summary": summary, "folds": folds,
              "seconds": round(time.time() - began, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
