"""How the voice-activity gate treats speech in noise and noise alone, for several contrast settings.

For each setting ACTIVE/EVIDENCE (VadConfig.contrast_db / evidence_db, dB above a window's quiet frames) it
reports, on RAVDESS utterances of the given actors (2 s windows, 0.5 s hop, as the stream cuts them): the share
of windows voiced and the number of utterances without any voiced window, clean, in pink noise at 10 and 5 dB
SNR and on the telephone band with mu-law (recipes/speech_cross_condition.py's conditions, plus 5 dB SNR); and
the share of voiced windows in 10 s of noise alone (white, pink, mains hum, fan, and pink noise whose level
swings +-30 % at 0.5 Hz). Choose on the validation actors 15-16.

    python recipes/voice_gate_check.py --speakers 15,16 --gates 12/6,6/4,6/3,5/3,4/3 --out runs/s11/voice-gate.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from speech_cross_condition import DATA, condition  # this folder is on sys.path when a recipe runs as a script

from affect_sdk.audio.augment import add_noise, pink_noise, resample
from affect_sdk.audio.data import read_dataset, select_speakers
from affect_sdk.audio.features import MODEL_RATE, VadConfig, load_audio, voice_activity, window_bounds
from affect_sdk.errors import AffectError

WINDOW, HOP = 2 * MODEL_RATE, MODEL_RATE // 2


def speech_condition(wave: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """A 16 kHz utterance under one of speech_cross_condition's conditions, or in pink noise at 5 dB SNR
    ("noisy5"), back at 16 kHz (the gate runs after the stream's resampler)."""
    if kind == "noisy5":
        return add_noise(wave, 5.0, np.random.default_rng(seed))
    out, rate = condition(wave, kind, seed)
    return out if rate == MODEL_RATE else resample(out, rate, MODEL_RATE)


def noise_only(seconds: float = 10.0, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(seconds * MODEL_RATE)
    t = np.arange(n) / MODEL_RATE
    pink = pink_noise(n, rng) * 0.1
    return {"white": rng.standard_normal(n) * 0.05, "pink": pink,
            "hum": 0.3 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 150 * t) + 0.002 * rng.standard_normal(n),
            "fan": np.convolve(rng.standard_normal(n), np.ones(8) / 8, "same") * 0.1,
            "pink_swinging": pink * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))}


def windows(wave: np.ndarray) -> list[np.ndarray]:
    return [wave[a:b] for a, b in window_bounds(len(wave), WINDOW, HOP)]


def parse_gates(text: str) -> dict[str, VadConfig]:
    gates = {}
    for item in text.split(","):
        active, evidence = (float(v) for v in item.split("/"))
        gates[item] = VadConfig(contrast_db=active, evidence_db=evidence)
    return gates


def gate_report(waves: list[np.ndarray], gates: dict[str, VadConfig],
                conditions: tuple[str, ...] = ("clean", "noisy", "noisy5", "telephone-mulaw")) -> dict:
    report = {}
    for kind in conditions:
        cut = [windows(speech_condition(w, kind, seed)) for seed, w in enumerate(waves)]
        report[kind] = {}
        for name, cfg in gates.items():
            voiced = [[voice_activity(w, cfg).voiced for w in ws] for ws in cut]
            report[kind][name] = {"windows_voiced": round(float(np.mean(sum(voiced, []))), 3),
                                  "utterances_without": sum(not any(v) for v in voiced), "utterances": len(voiced)}
    report["noise_only"] = {name: {g: round(float(np.mean([voice_activity(w, cfg).voiced for w in windows(x)])), 3)
                                   for g, cfg in gates.items()} for name, x in noise_only().items()}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--speakers", default="15,16", help="actors (choose on 15,16, never on the test actors)")
    parser.add_argument("--gates", default="12/6,6/3", help="ACTIVE/EVIDENCE contrasts in dB, comma-separated")
    parser.add_argument("--limit", type=int, default=None, help="only the first N utterances")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        gates = parse_gates(args.gates)
    except (ValueError, AffectError):  # not two numbers, or numbers VadConfig refuses
        parser.error(f"--gates {args.gates}: give ACTIVE/EVIDENCE pairs of finite numbers, e.g. 12/6,6/3.")
    try:
        _, items = read_dataset(args.data)
        items = select_speakers(items, [s.strip() for s in args.speakers.split(",")])[: args.limit]
        if not items:
            parser.error(f"No utterances of actors {args.speakers} in {args.data}.")
        waves = [load_audio(it.path, MODEL_RATE) for it in items]
    except AffectError as exc:
        parser.error(str(exc))  # one sentence, exit 2; nothing written
    report = gate_report(waves, gates)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for kind, rows in report.items():
        print(kind, json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
