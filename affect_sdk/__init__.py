"""affect-sdk: real-time audio-visual affect (face + voice -> emotion probabilities and valence/arousal), offline."""
from __future__ import annotations

from affect_sdk.errors import AffectError, DeviceError, InputError, ModelError
from affect_sdk.labels import CLASSES
from affect_sdk.results import FaceAffect, FusedAffect, JsonlWriter, SpeechAffect

__version__ = "0.1.0"

__all__ = [
    "AffectError", "DeviceError", "InputError", "ModelError", "CLASSES",
    "FaceAffect", "SpeechAffect", "FusedAffect", "JsonlWriter", "Session", "demo_clip", "__version__",
]


def __getattr__(name: str):
    # The live Session pulls in OpenCV, torch and the models: import it only when asked for.
    if name in ("Session", "demo_clip"):
        from affect_sdk import session

        return getattr(session, name)
    raise AttributeError(f"module 'affect_sdk' has no attribute {name!r}")
