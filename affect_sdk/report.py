"""Readable fusion-evaluation reports: markdown summary, the JSON, and PNG plots (matplotlib, Agg backend); each file
is replaced atomically, so a full disk leaves the old file or none, never half of one."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASS_INDEX, CLASSES
from affect_sdk.output import replace_file, write_text_file


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _systems(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("vision", summary["vision"]), ("audio", summary["audio"])] + \
        [(f"fused: {rule}", s) for rule, s in summary["fused"].items()]


def plot_confusions(summary: dict[str, Any], path: Path) -> Path:
    """Confusion matrices side by side (rows: true classes present; columns: predicted, plus 'none')."""
    plt = _pyplot()
    rows = [CLASS_INDEX[c] for c in summary["classes"]]
    cols = rows + [len(CLASSES)] if any(
        np.asarray(s["confusion"])[rows, len(CLASSES)].sum() for _, s in _systems(summary)) else rows
    col_names = [CLASSES[i] if i < len(CLASSES) else "none" for i in cols]
    systems = _systems(summary)
    fig, axes = plt.subplots(1, len(systems), figsize=(3.2 * len(systems) + 0.5, 4.0), squeeze=False)
    for ax, (name, s) in zip(axes[0], systems):
        m = np.asarray(s["confusion"])[np.ix_(rows, cols)]
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(cols)), col_names, rotation=60, fontsize=7)
        ax.set_yticks(range(len(rows)), [CLASSES[i] for i in rows], fontsize=7)
        ax.set_title(f"{name}\nacc {s['accuracy']:.2f}", fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
    axes[0][0].set_ylabel("true", fontsize=7)
    fig.suptitle(summary["title"], fontsize=10)
    fig.tight_layout()
    try:
        replace_file(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path


def plot_per_class(summary: dict[str, Any], path: Path) -> Path:
    """Per-class accuracy (recall) bars, one bar per modality / fused rule."""
    plt = _pyplot()
    classes, systems = summary["classes"], _systems(summary)
    width = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(classes) + 2), 4.4))
    x = np.arange(len(classes))
    for k, (name, s) in enumerate(systems):
        ax.bar(x + (k - (len(systems) - 1) / 2) * width, [s["per_class"].get(c, 0.0) for c in classes], width,
               label=f"{name} ({s['accuracy']:.2f})")
    ax.set_xticks(x, classes, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("per-class accuracy (recall)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))  # below: bars stay visible
    ax.set_title(f"{summary['title']}: per-class accuracy", fontsize=10)
    fig.tight_layout()
    try:
        replace_file(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path


def plot_trajectory(trajectory: dict[str, Any], title: str, path: Path) -> Path:
    """Valence and arousal over time for one clip: face per frame, speech per window, fused."""
    plt = _pyplot()
    face, speech = np.asarray(trajectory["face"]).reshape(-1, 4), np.asarray(trajectory["speech"]).reshape(-1, 4)
    fused = np.asarray(trajectory["fused"], dtype=float).reshape(-1, 3)
    fig, axes = plt.subplots(2, 1, figsize=(7, 4.2), sharex=True)
    for k, (ax, name) in enumerate(zip(axes, ("valence", "arousal"))):
        if len(face):
            ax.plot(face[:, 0], face[:, 1 + k], "o", ms=3, label="face (per frame)", color="tab:blue")
        if len(speech):
            ax.plot(speech[:, 0], speech[:, 1 + k], "s--", ms=4, label="speech (per window)", color="tab:orange")
        if len(fused):
            ax.plot(fused[:, 0], fused[:, 1 + k], "-", lw=2, label="fused", color="tab:green")
        ax.set_ylim(-1, 1)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[1].set_xlabel("time in clip (s)")
    fig.suptitle(f"{title}: {trajectory['clip']} (label {trajectory['label']})", fontsize=9)
    fig.tight_layout()
    try:
        replace_file(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path


def _table(summary: dict[str, Any]) -> list[str]:
    lines = ["| system | accuracy | macro-F1 | " + " | ".join(summary["classes"]) + " |",
             "|---|---|---|" + "---|" * len(summary["classes"])]
    for name, s in _systems(summary):
        per = " | ".join(f"{s['per_class'].get(c, 0.0):.2f}" for c in summary["classes"])
        lines.append(f"| {name} | {s['accuracy']:.3f} | {s['macro_f1']:.3f} | {per} |")
    return lines


def write_report(summary: dict[str, Any], out: str | Path, trajectory: dict[str, Any] | None = None) -> list[Path]:
    """OUT/report.md, OUT/fusion.json and PNGs (confusion.png, per_class.png, trajectory.png); returns the paths."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create report folder {out}: {exc.strerror or exc}.") from exc
    written = [out / "fusion.json"]
    write_text_file(written[0], json.dumps({**summary, "trajectory": trajectory}, indent=2, allow_nan=False))
    images = []
    if summary["n"]:
        images += [plot_confusions(summary, out / "confusion.png"), plot_per_class(summary, out / "per_class.png")]
    if trajectory is not None:
        images.append(plot_trajectory(trajectory, summary["title"], out / "trajectory.png"))
    c = summary["counts"]
    md = [f"# {summary['title']}", "",
          f"Data: `{summary['data']}` - {summary['n']} clips evaluated of {c['found']} found "
          f"(skipped {c['skipped']}; without a face {c['no_face']}, without usable audio {c['no_audio']}, "
          f"neither {c['no_face_no_audio']}). Video analysed at {summary['frame_rate']} frames/s "
          "(0 = every frame); a clip's face distribution is the mean over frames with a face, its speech "
          "distribution the mean over voiced windows.", ""]
    if summary.get("synthetic_pairs"):
        md += ["**Synthetic pairs**: each clip pairs a face image with an independent speech recording of the "
               "same class, so face and voice errors are independent; this overstates fusion gains.", ""]
    if summary["n"] < 30:
        md += [f"Only {summary['n']} clips: too few for an accuracy claim; this checks the whole path.", ""]
    md += _table(summary) + [""]
    md += ["A clip whose face (or audio) is missing counts as wrong for vision (or audio) alone and is fused by "
           "the rules' fallback to the other modality.", ""]
    if summary["notes"]:
        md += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    if summary["problems"]:
        md += ["## Clips with problems", ""] + [f"- `{Path(p['path']).name}`: {p['problem']}"
                                               for p in summary["problems"]] + [""]
    md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in images] + [""]
    write_text_file(out / "report.md", "\n".join(md))
    return [out / "report.md", *written, *images]
