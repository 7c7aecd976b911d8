"""Face affect networks: a ResNet-style teacher and a MobileNetV2-style student, both with an 8-class and a V/A head.

Input convention for both: float [B, 1 or 3, H, W] with pixels in [0, 1] (3 channels are averaged to gray, since
FER+ is grayscale); the nets normalise internally so exported ONNX files need no extra preprocessing.
Output: (logits [B, 8], va [B, 2] in [-1, 1]).
"""
from __future__ import annotations

import torch
from torch import nn

from affect_sdk.labels import NUM_CLASSES


class AffectHeads(nn.Module):
    """Pooled features -> class logits and tanh-bounded (valence, arousal)."""

    def __init__(self, features: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classes = nn.Linear(features, NUM_CLASSES)
        self.va = nn.Linear(features, 2)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.dropout(z)
        return self.classes(z), torch.tanh(self.va(z))


def _gray_normalised(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    return (x - 0.5) / 0.25


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True) if groups > 1 or k == 1 else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- teacher
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, act=False))
        self.skip = (nn.Identity() if stride == 1 and cin == cout
                     else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class Teacher(nn.Module):
    """ResNet for small face crops: a stride-1 stem (48x48 keeps its detail), then stages halving the resolution."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), depths: tuple[int, ...] = (1, 1, 2, 1),
                 stem_stride: int = 1, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(1, widths[0], 3, stem_stride)]
        self.depths = tuple(depths)
        cin = widths[0]
        for i, (w, d) in enumerate(zip(widths, depths)):
            for j in range(d):
                layers.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.heads = AffectHeads(cin, dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.pool(self.features(_gray_normalised(x))).flatten(1))


def deepen_teacher(model: Teacher, state: dict[str, torch.Tensor], depths: tuple[int, ...]) -> list[str]:
    """Load the weights of a shallower ResNet of the same widths (its blocks per stage: `depths`) into `model`, so
    that `model` computes exactly what it did (Net2Net-style deepening, Chen et al. 2016).

    Each stage's first blocks are the source's; a block added after them starts as an identity: its last BatchNorm
    scale is zero, so it adds nothing to its input, which is already non-negative (after a ReLU). Training then
    grows the new blocks from there. Returns the names of the blocks that were added."""
    target = list(model.depths)
    if len(depths) != len(target) or any(s > t for s, t in zip(depths, target)):
        raise ValueError(f"cannot deepen blocks per stage {list(depths)} into {target}")
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not key.startswith("features.") or key.split(".")[1] == "0":  # the stem and the heads keep their names
            mapped[key] = value
            continue
        index, rest = int(key.split(".")[1]) - 1, key.split(".", 2)[2]
        stage = next(i for i in range(len(depths)) if index < sum(depths[:i + 1]))
        block = index - sum(depths[:stage])
        mapped[f"features.{1 + sum(target[:stage]) + block}.{rest}"] = value
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if unexpected:
        raise ValueError(f"weights that fit no block: {unexpected[:3]}")
    added = sorted({".".join(k.split(".")[:2]) for k in missing}, key=lambda name: int(name.split(".")[1]))
    for name in added:
        block = model.get_submodule(name)
        if not isinstance(block, BasicBlock) or not isinstance(block.skip, nn.Identity):
            raise ValueError(f"{name} is not an identity-shaped block; only blocks after a stage's first are added")
        nn.init.zeros_(block.body[1][1].weight)
    return added


# ---------------------------------------------------------------- student
class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn(cin, hidden, 1)]
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, cout, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def _divisible(v: float, d: int = 8) -> int:
    return max(d, int(v + d / 2) // d * d)


# MobileNetV2 settings (expand t, channels c, repeats n, stride s) with the stage-3 stride of the ImageNet net
# removed: 48x48 faces end on 3x3 features (total stride 16 instead of 32).
MOBILENETV2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 1), (6, 64, 4, 2), (6, 96, 3, 1),
                        (6, 160, 3, 2), (6, 320, 1, 1))


class Student(nn.Module):
    """MobileNetV2-style student (Sandler et al. 2018) with a width multiplier and face-sized strides."""

    def __init__(self, width: float = 1.0, stem_stride: int = 2, last_channels: int = 640,
                 dropout: float = 0.2, settings: tuple[tuple[int, int, int, int], ...] = MOBILENETV2_SETTINGS
                 ) -> None:
        super().__init__()
        cin = _divisible(32 * width)
        layers: list[nn.Module] = [_conv_bn(1, cin, 3, stem_stride)]
        for t, c, n, s in settings:
            cout = _divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(_conv_bn(cin, last_channels, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.heads = AffectHeads(last_channels, dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.pool(self.features(_gray_normalised(x))).flatten(1))


def _init(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return model


class FaceEnsemble(nn.Module):
    """Several ResNets of one architecture trained apart (other seeds, augmentation, lineage) as one net.

    Logits: the mean of the members' log-probabilities (equal weights), which is what
    vision.teachers.combine_members computes for a teacher ensemble; V/A: the members' mean. One graph, so it is
    exported to one ONNX file, calibrated and given a baseline exactly as a single net is."""

    def __init__(self, members: int, **arch) -> None:
        super().__init__()
        if members < 2:
            raise ValueError(f"an ensemble needs at least 2 members; got {members}")
        self.members = nn.ModuleList(Teacher(**arch) for _ in range(members))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(x) for member in self.members]
        log_probs = torch.stack([torch.log_softmax(logits, dim=1) for logits, _ in outputs]).mean(dim=0)
        return log_probs, torch.stack([va for _, va in outputs]).mean(dim=0)


def create_teacher(members: int = 1, **arch) -> nn.Module:
    """The ResNet ('affect_sdk.vision.nets:create_teacher'); with members > 1, that many in one FaceEnsemble."""
    if "widths" in arch:
        arch["widths"] = tuple(arch["widths"])
    if "depths" in arch:
        arch["depths"] = tuple(arch["depths"])
    return _init(Teacher(**arch) if members == 1 else FaceEnsemble(members, **arch))


def create_student(**arch) -> Student:
    if "settings" in arch:
        arch["settings"] = tuple(tuple(s) for s in arch["settings"])
    return _init(Student(**arch))


def count_gmac(model: nn.Module, input_size: int) -> float:
    """Multiply-accumulates of one forward pass at input_size x input_size (1 channel), in GMAC, counted by thop."""
    import copy
    import warnings

    with warnings.catch_warnings():  # thop imports distutils' deprecated LooseVersion
        warnings.simplefilter("ignore", DeprecationWarning)
        from thop import profile

        probe = copy.deepcopy(model).eval()
        macs, _ = profile(probe, inputs=(torch.zeros(1, 1, input_size, input_size),), verbose=False)
    return float(macs) / 1e9
