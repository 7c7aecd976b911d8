"""affect-sdk: real-time audio-visual affect (face + voice -> emotion probabilities and valence/arousal), offline."""
from __future__ import annotations

from affect_sdk.errors import AffectError, DeviceError, InputError, ModelError
from affect_sdk.labels import CLASSES
from affect_sdk.results import FaceAffect, FusedAffect, JsonlWriter, SpeechAffect

__version__ = "0.1.0"

__all__ = [
    "AffectError", "DeviceError", "InputError", "ModelError", "CLASSES",
    "FaceAffect", "SpeechAffect", "FusedAffect", "JsonlWriter", "__version__",
]
