"""One error hierarchy: every failure a user can cause is an AffectError with one clear sentence."""
from __future__ import annotations


class AffectError(Exception):
    """Base of every error affect-sdk raises on purpose; its message is one sentence for a person."""


class InputError(AffectError):
    """Bad input: an unreadable or corrupt file, a wrong option value, an unknown label, empty data."""


class DeviceError(AffectError):
    """A camera, microphone or compute device that is missing, will not open or stopped working."""


class ModelError(AffectError):
    """A model that is not registered, whose weights are missing or fail their checksum, or will not load."""


class OutputError(AffectError):
    """A result file, report or pipe that cannot be written: disk full, I/O error, closed pipe, read-only place."""
