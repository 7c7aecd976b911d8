"""Which file names are images, videos and sounds: the one list every reader, batch and command uses."""
from __future__ import annotations

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
SOUND_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".au")
MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES + SOUND_SUFFIXES
