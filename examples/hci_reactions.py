"""A tiny HCI app: follow the user's face and voice and react when a state has lasted a moment.

    python examples/hci_reactions.py            # camera 0 + default microphone, Ctrl-C to stop
    python examples/hci_reactions.py --demo     # the sample clip shipped with affect-sdk
"""
import sys

from affect_sdk import Session

HOLD_S = 1.0  # a state must last this long before the app reacts (no flicker)
REACTIONS = {"anger": "You seem tense. Take a short break?", "sad": "Rough moment? Your work is saved.",
             "fear": "Not sure about this step? Press F1 for help.", "surprise": "Unexpected? Here is what changed.",
             "happy": "Glad it works!", "neutral": "Focused. Notifications stay muted."}
candidate, since, shown = None, 0.0, None
with Session(demo="--demo" in sys.argv) as session:
    for fused in session:  # one FusedAffect per video frame (or per speech window without video)
        label = fused.label  # None: no face in view and nothing voiced
        if label != candidate:
            candidate, since = label, fused.t
        elif label != shown and label in REACTIONS and fused.t - since >= HOLD_S:
            shown = label
            sources = "+".join(fused.sources)
            print(f"[{fused.t:5.1f} s] {label} ({sources}, V {fused.valence:+.2f} A {fused.arousal:+.2f}): "
                  f"{REACTIONS[label]}")
print(f"{session.summary()['fused']} fused results; bye.")
