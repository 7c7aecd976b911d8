"""affect-sdk: real-time audio-visual affect (face + voice -> emotion probabilities and valence/arousal), offline."""
from __future__ import annotations

from affect_sdk.errors import AffectError, DeviceError, InputError, ModelError
from affect_sdk.labels import CLASSES
from affect_sdk.results import FaceAffect, FusedAffect, JsonlWriter, SpeechAffect, UtteranceAffect

__version__ = "0.1.0"

__all__ = [
    "AffectError", "DeviceError", "InputError", "ModelError", "CLASSES",
    "FaceAffect", "SpeechAffect", "FusedAffect", "UtteranceAffect", "JsonlWriter", "Session", "demo_clip",
    "FaceAnalyzer", "SpeechAnalyzer", "SpeechStream", "fuse", "FaceTracker", "analyze_files", "to_dataframe",
    "__version__",
]

# Names that pull in OpenCV, torch, the models or pandas: imported only when first asked for.
_LAZY = {
    "Session": "affect_sdk.session", "demo_clip": "affect_sdk.session",
    "FaceAnalyzer": "affect_sdk.vision.infer", "FaceTracker": "affect_sdk.vision.track",
    "SpeechAnalyzer": "affect_sdk.audio.infer", "SpeechStream": "affect_sdk.audio.stream",
    "fuse": "affect_sdk.fusion.sync", "analyze_files": "affect_sdk.predict", "to_dataframe": "affect_sdk.tables",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'affect_sdk' has no attribute {name!r}")
