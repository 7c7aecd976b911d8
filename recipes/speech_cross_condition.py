"""Cross-condition and leave-actors-out checks of a speech model on RAVDESS actors it never saw.

1. **Conditions**, through the real inference path (SpeechAnalyzer, onnxruntime when shipped), on held-out actors
   (default the test actors 17-20; use 15,16 for validation): clean 16 kHz; telephone (8 kHz input, 300-3400 Hz
   band-pass); telephone with the G.711 mu-law codec at -26 dBFS; noisy (pink noise at 10 dB SNR to the active
   speech level); reverberant (a synthetic room, RT60 0.6 s). Fixed seeds: every model hears the same samples.
   Each condition reports accuracy, balanced accuracy, macro-F1, ECE and each actor's accuracy with their
   mean +- sd (every held-out actor is one leave-actors-out fold of the evaluation).
2. **Personal baseline** (--baseline-check): per held-out actor, their neutral (RAVDESS emotion 01) utterances
   are the resting voice; the actor's other utterances are scored without and with the baseline.
3. **Leave-actors-out training folds** (--train-folds K): actors 01-20 in K folds; each fold trains a model from
   scratch on the other actors (2 of them for validation) with the shipped model's recipe (channel copies,
   narrowband mask, clean+telephone checkpoint choice) and scores its own actors under every condition; mean +- sd
   over folds. K trainings of about 35 minutes each on one CPU thread; rerun the same command to resume.

    python recipes/speech_cross_condition.py --model speech-cnn --out runs/audio-v2/shipped-test.json
    python recipes/speech_cross_condition.py --model speech-cnn --speakers 15,16 --out runs/audio-v2/shipped-val.json
    python recipes/speech_cross_condition.py --train-folds 5 --steps 4000 --out runs/audio-v2/folds.json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from affect_sdk.audio.augment import add_noise, band_limit, mu_law, resample, reverberate, set_level
from affect_sdk.audio.data import Utterance, read_dataset, select_speakers, speaker_key
from affect_sdk.audio.features import MODEL_RATE, load_audio
from affect_sdk.audio.infer import SpeechAnalyzer, utterance_probs
from affect_sdk.labels import CLASS_INDEX, NUM_CLASSES
from affect_sdk.metrics import classification_report
from affect_sdk.registry import resolve_model

CONDITIONS = ("clean", "telephone", "telephone-mulaw", "noisy", "reverb")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess_speech"


def condition(wave: np.ndarray, kind: str, seed: int) -> tuple[np.ndarray, int]:
    """A 16 kHz utterance under one condition, as (samples, their rate): telephone input really is 8 kHz."""
    rng = np.random.default_rng(seed)
    if kind == "clean":
        return wave, MODEL_RATE
    if kind == "telephone":
        return band_limit(resample(wave, MODEL_RATE, 8000), 8000, 300.0, 3400.0), 8000
    if kind == "telephone-mulaw":
        return mu_law(set_level(band_limit(resample(wave, MODEL_RATE, 8000), 8000, 300.0, 3400.0), -26.0)), 8000
    if kind == "noisy":
        return add_noise(wave, 10.0, rng), MODEL_RATE
    if kind == "reverb":
        return reverberate(wave, MODEL_RATE, 0.6, rng), MODEL_RATE
    raise ValueError(f"Unknown condition {kind!r}; expected one of {', '.join(CONDITIONS)}.")


def utterance_reading(analyzer: SpeechAnalyzer, wave: np.ndarray, rate: int) -> tuple[np.ndarray, bool, int]:
    """(probabilities [8], low evidence, narrowest bandwidth) of one utterance, as `affect eval audio` scores it."""
    windows = analyzer.analyze_wave(wave, rate)
    probs = utterance_probs(windows)
    low = probs is None
    if low:
        probs = utterance_probs(analyzer.analyze_wave(wave, rate, gate=False), voiced_only=False)
    return probs, low, min(w.bandwidth for w in windows)


def report(labels: list[int], probs: list[np.ndarray], speakers: list[str]) -> dict:
    """classification_report plus each speaker's accuracy and their mean +- sd."""
    labels_a, probs_a = np.asarray(labels), np.asarray(probs).reshape(-1, NUM_CLASSES)
    out = {k: v for k, v in classification_report(labels_a, probs_a).items()
           if k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "ece", "per_class")}
    hits = probs_a.argmax(axis=1) == labels_a
    per = {s: round(float(hits[np.asarray(speakers) == s].mean()), 4) for s in sorted(set(speakers))}
    values = np.array(list(per.values()))
    out.update(per_speaker=per, speaker_mean=round(float(values.mean()), 4),
               speaker_sd=round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4))
    return out


def cross_conditions(analyzer: SpeechAnalyzer, items: list[Utterance], conditions: tuple[str, ...]) -> dict:
    results = {}
    waves = [load_audio(u.path) for u in items]
    for kind in conditions:
        labels, probs, speakers, low, bands = [], [], [], 0, set()
        for k, (u, wave) in enumerate(zip(items, waves)):
            p, is_low, band = utterance_reading(analyzer, *condition(wave, kind, seed=k))
            labels.append(CLASS_INDEX[u.label])
            probs.append(p)
            speakers.append(speaker_key(u.speaker or ""))
            low += is_low
            bands.add(band)
        results[kind] = {**report(labels, probs, speakers), "low_evidence": low, "bandwidths": sorted(bands)}
        print(f"{kind:16s} acc {results[kind]['accuracy']:.4f}  bal {results[kind]['balanced_accuracy']:.4f}  "
              f"ece {results[kind]['ece']}  actors {results[kind]['speaker_mean']:.4f} +- "
              f"{results[kind]['speaker_sd']:.4f}", file=sys.stderr, flush=True)
    return results


def baseline_check(analyzer: SpeechAnalyzer, items: list[Utterance], scales: tuple[float, ...] = (1.0,)) -> dict:
    """Each actor's non-neutral-code utterances, without and with a baseline from their emotion-01 utterances;
    `scales` also tries the baseline's offset shrunk (x0.5: half of the correction), arms named "with x0.5"."""
    arms = ["without"] + ["with" if scale == 1 else f"with x{scale:g}" for scale in scales]
    rows = {arm: ([], [], []) for arm in arms}
    for speaker in sorted({speaker_key(u.speaker or "") for u in items}):
        own = [u for u in items if speaker_key(u.speaker or "") == speaker]
        rest = [u for u in own if u.path.stem.split("-")[2] == "01"]
        scored = [(u, load_audio(u.path)) for u in own if u not in rest]
        analyzer.clear_baseline()
        analyzer.set_baseline(np.concatenate([load_audio(u.path) for u in rest]))
        full = analyzer.calibration
        for arm, scale in zip(arms, (0.0,) + tuple(scales)):
            analyzer.calibration = replace(full, offset=None if arm == "without" else full.offset * np.float32(scale))
            for u, wave in scored:
                rows[arm][0].append(CLASS_INDEX[u.label])
                rows[arm][1].append(utterance_reading(analyzer, wave, MODEL_RATE)[0])
                rows[arm][2].append(speaker)
    analyzer.clear_baseline()
    return {arm: report(*cols) for arm, cols in rows.items()}


def train_folds(folds: int, steps: int, out: Path, data: Path, conditions: tuple[str, ...],
                band_norm: bool = False, ema_decay: float = 0.0) -> dict:
    """Leave-actors-out training with the shipped (v2) recipe from scratch: fold f tests its actors, validates on
    two of the next fold's, trains on the rest. Resumable: a finished fold's scores are kept in its folder, and a
    fold cut short resumes from its last checkpoint."""
    import dataclasses

    from affect_sdk.audio.augment import AugmentConfig
    from affect_sdk.audio.train import TrainConfig, train

    actors = [f"{a:02d}" for a in range(1, 21)]
    groups = [actors[i::folds] for i in range(folds)]
    _, items = read_dataset(data)
    results = []
    for f, test in enumerate(groups):
        val = groups[(f + 1) % folds][:2]
        run = out.with_suffix("") / f"fold-{f}"
        scores = run / "held-out.json"
        if not scores.is_file():
            # v2's channel copies and checkpoint choice (clean + telephone validation), trained from scratch
            cfg = TrainConfig(data=str(data), out=str(run), val_speakers=tuple(val), test_speakers=tuple(test),
                              steps=steps, seed=f, select="clean+telephone", ema_decay=ema_decay,
                              augment=AugmentConfig(telephone_p=0.25, opus_p=0.1, mic_p=0.15))
            cfg.features = dataclasses.replace(cfg.features, narrowband_mask=True, band_norm=band_norm)
            train(cfg)
            analyzer = SpeechAnalyzer(resolve_model(cfg.out), backend="torch")
            scores.write_text(json.dumps(cross_conditions(analyzer, select_speakers(items, test), conditions)))
        results.append(json.loads(scores.read_text()))
        print(json.dumps({"fold": f, "test": test, "validation": val,
                          "accuracy": {k: results[-1][k]["accuracy"] for k in conditions}}), flush=True)
    summary = {}
    for kind in conditions:
        accs = np.array([r[kind]["accuracy"] for r in results])
        summary[kind] = {"folds": accs.round(4).tolist(), "mean": round(float(accs.mean()), 4),
                         "sd": round(float(accs.std(ddof=1)), 4) if folds > 1 else 0.0}
    recipe = "v2 from scratch" + (", per-band normalisation" if band_norm else "") + (
        f", weight average {ema_decay}" if ema_decay else "")
    return {"folds": folds, "groups": groups, "steps": steps, "recipe": recipe, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="speech-cnn", help="Registered speech model or a training run folder.")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--speakers", default="17,18,19,20", help="Held-out actors (never 15,16 for a final score"
                        " of a model selected on them).")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--prior", default=None, help="Output prior: train, blend or balanced.")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--baseline-check", action="store_true")
    parser.add_argument("--baseline-scales", default="1", help="--baseline-check: offsets to try, as fractions of "
                        "the full correction (e.g. 0.25,0.5,1).")
    parser.add_argument("--train-folds", type=int, default=0, help="Train K leave-actors-out fold models (hours).")
    parser.add_argument("--steps", type=int, default=4000, help="Training steps per fold (--train-folds).")
    parser.add_argument("--band-norm", action="store_true", help="--train-folds: with per-band normalisation "
                        "(each mel band minus its own mean over the window).")
    parser.add_argument("--ema", type=float, default=0.0, help="--train-folds: a moving average of the weights "
                        "with this per-step decay is selected and scored (0: off).")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results.")
    args = parser.parse_args()
    conditions = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
    if args.train_folds:
        result = train_folds(args.train_folds, args.steps, args.out, args.data, conditions, args.band_norm, args.ema)
    else:
        analyzer = SpeechAnalyzer(resolve_model(args.model), backend=args.backend, prior=args.prior)
        _, items = read_dataset(args.data)
        items = select_speakers(items, [s.strip() for s in args.speakers.split(",")])
        result = {"model": args.model, "backend": analyzer.runner.backend, "prior": analyzer.prior_mode,
                  "speakers": args.speakers, "conditions": cross_conditions(analyzer, items, conditions)}
        if args.baseline_check:
            scales = tuple(float(x) for x in args.baseline_scales.split(","))
            result["baseline"] = baseline_check(analyzer, items, scales)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "conditions"} | {
        "accuracy": {k: v["accuracy"] for k, v in result.get("conditions", {}).items()}}))


if __name__ == "__main__":
    main()
