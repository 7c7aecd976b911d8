"""The speech-emotion networks over level-normalised log-mel windows, both with attentive mean + max pooling: a
temporal (1-D) CNN, which the shipped speech-cnn is (an ensemble of two), and a small 2-D CNN.

forward(x [B, 1, n_mels, frames]) -> (logits [B, 8] over CLASSES, va [B, 2]). V/A is not learned: it is the
expected (valence, arousal) under the class probabilities, from the AffectNet class -> V/A table
(affect_sdk.labels.CLASS_VA), since the speech corpora carry no V/A labels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from affect_sdk.labels import CLASS_VA_ARRAY, NUM_CLASSES


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, pool: tuple[int, int], convs: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(convs):
            layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(pool) if pool != (1, 1) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x))


def attentive_mean_max(h: torch.Tensor, attention: nn.Module) -> torch.Tensor:
    """[B, C, T] -> [B, 2C]: attention-weighted mean over time beside the max over time."""
    weights = torch.softmax(attention(h), dim=-1)  # [B, 1, T]
    return torch.cat([(h * weights).sum(dim=-1), h.amax(dim=-1)], dim=1)


class SpeechCNN(nn.Module):
    """Conv blocks (frequency and time pooled), frequency averaged, then attention-weighted mean + max over time."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128), num_classes: int = NUM_CLASSES,
                 dropout: float = 0.3) -> None:
        super().__init__()
        blocks, c_in = [], 1
        for i, c in enumerate(channels):
            # one conv at full resolution keeps the cost low; two per block after the first pooling
            blocks.append(ConvBlock(c_in, c, (2, 2) if i < len(channels) - 1 else (1, 1), convs=1 if i == 0 else 2))
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.attention = nn.Conv1d(c_in, 1, 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c_in, num_classes)
        self.register_buffer("class_va", torch.from_numpy(CLASS_VA_ARRAY[:num_classes].copy()), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return attentive_mean_max(self.features(x).mean(dim=2), self.attention)  # frequency averaged: [B, C, T]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.head(self.dropout(self.embed(x)))
        return logits, torch.softmax(logits, dim=-1) @ self.class_va


class TimeMaxPool(nn.Module):
    """Max-pool by 2 over time (ceil mode) for [B, C, T]; written as a 2-D pool because torch.export fixes the
    length of MaxPool1d inputs, and the ONNX twin must accept any window length."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x.unsqueeze(2), (1, 2), ceil_mode=True).squeeze(2)


class SpeechConv1d(nn.Module):
    """Temporal CNN: mel bins are input channels; conv + max-pool blocks over time, then attention mean + max.

    Several times cheaper than the 2-D CNN at the same input, which buys many more training epochs on a CPU.
    """

    def __init__(self, n_mels: int = 64, channels: tuple[int, ...] = (128, 192, 256, 256),
                 kernels: tuple[int, ...] = (5, 5, 3, 3), num_classes: int = NUM_CLASSES, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(n_mels)]
        c_in = n_mels
        for i, (c, k) in enumerate(zip(channels, kernels)):
            layers += [nn.Conv1d(c_in, c, k, padding=k // 2, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True)]
            if i < len(channels) - 1:
                layers.append(TimeMaxPool())
            c_in = c
        self.features = nn.Sequential(*layers)
        self.attention = nn.Conv1d(c_in, 1, 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c_in, num_classes)
        self.register_buffer("class_va", torch.from_numpy(CLASS_VA_ARRAY[:num_classes].copy()), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x.flatten(1, 2))  # [B, 1, M, T] -> [B, M, T] -> [B, C, T']
        logits = self.head(self.dropout(attentive_mean_max(h, self.attention)))
        return logits, torch.softmax(logits, dim=-1) @ self.class_va


class SpeechEnsemble(nn.Module):
    """Several SpeechCNNs trained with different seeds; logits are the log of their mean probabilities."""

    def __init__(self, members: int = 2, kind: str = "2d", **kwargs) -> None:
        super().__init__()
        self.members = nn.ModuleList(_single(kind, **kwargs) for _ in range(members))
        self.register_buffer("class_va", self.members[0].class_va.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.stack([torch.softmax(m(x)[0], dim=-1) for m in self.members]).mean(dim=0)
        return torch.log(probs.clamp_min(1e-8)), probs @ self.class_va


def _single(kind: str, **kwargs) -> nn.Module:
    if kind not in ("1d", "2d"):
        raise ValueError(f"Unknown speech network kind {kind!r}; expected '1d' or '2d'.")
    return SpeechConv1d(**kwargs) if kind == "1d" else SpeechCNN(**kwargs)


def create_speech_cnn(members: int = 1, kind: str = "2d", **kwargs) -> nn.Module:
    """Factory used by the registry ('affect_sdk.audio.nets:create_speech_cnn'): kind '2d' or '1d', optionally an
    ensemble of `members` networks."""
    return _single(kind, **kwargs) if members == 1 else SpeechEnsemble(members=members, kind=kind, **kwargs)
