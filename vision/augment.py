"""Batch augmentation of face crops for training, on the training device.

Two families: geometry and photometry that FER2013 itself varies in (affine jitter, flip, brightness, contrast,
occlusion), and degradations that mimic what FER2013 lacks but live input has: webcam blur, sensor noise, JPEG
blocks, exposure/gamma, low-resolution faces far from the camera, and looser or tighter crops than FER2013's.
All randomness comes from one torch.Generator, so a seed fixes the batch (resumed runs repeat uninterrupted ones).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    max_rotation_deg: float = 10.0
    max_shift: float = 0.08  # fraction of the image side
    scale_range: tuple[float, float] = (0.9, 1.1)
    flip: bool = True
    brightness: float = 0.2  # additive, in [0,1] pixel units
    contrast: float = 0.25  # multiplicative around the image mean
    erase_prob: float = 0.25  # random-erasing of one small rectangle (occlusion robustness)
    # webcam / other-corpus degradations (0 switches one off)
    blur_prob: float = 0.0  # Gaussian blur, sigma in blur_sigma (pixels at 48 px)
    blur_sigma: tuple[float, float] = (0.4, 1.4)
    noise_prob: float = 0.0  # additive Gaussian sensor noise, std in noise_std
    noise_std: tuple[float, float] = (0.01, 0.06)
    gamma_prob: float = 0.0  # exposure curve x**gamma, gamma log-uniform in gamma_range
    gamma_range: tuple[float, float] = (0.6, 1.7)
    lowres_prob: float = 0.0  # down to lowres_side px then back up (a small face in a wide shot)
    lowres_side: tuple[int, int] = (14, 32)
    jpeg_prob: float = 0.0  # JPEG round trip at a quality in jpeg_quality
    jpeg_quality: tuple[int, int] = (15, 70)
    # half the face covered: a mask, hand or microphone over mouth and jaw, or sunglasses over the eyes
    half_occlusion_prob: float = 0.0
    lower_occlusion_share: float = 0.7  # of the occluded faces, the share covered below (the rest: eyes)


def webcam_augment(**overrides) -> AugmentConfig:
    """The augmentation for models that must read live webcams and other corpora, not only FER2013."""
    settings = dict(scale_range=(0.85, 1.2), max_shift=0.1, blur_prob=0.25, noise_prob=0.25, gamma_prob=0.3,
                    lowres_prob=0.15, jpeg_prob=0.2)
    settings.update(overrides)
    return AugmentConfig(**settings)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator,
                  size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch [B, 1, H, W] of floats in [0, 1]; returns the batch (resized to `size`) and the flip mask."""
    b, device = x.shape[0], x.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) * (hi - lo) + lo).to(device)

    def chosen(p: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) < p).to(device)

    flips = (torch.rand(b, generator=generator) < 0.5) if cfg.flip else torch.zeros(b, dtype=torch.bool)
    flips = flips.to(device)
    angle = uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg) * math.pi / 180
    scale = uniform(*cfg.scale_range)
    tx, ty = uniform(-cfg.max_shift, cfg.max_shift) * 2, uniform(-cfg.max_shift, cfg.max_shift) * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    sign = torch.where(flips, -1.0, 1.0)
    theta = torch.stack([torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1)
    out_size = size or x.shape[-1]
    grid = F.affine_grid(theta, [b, x.shape[1], out_size, out_size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    contrast = uniform(1 - cfg.contrast, 1 + cfg.contrast).view(b, 1, 1, 1)
    bright = uniform(-cfg.brightness, cfg.brightness).view(b, 1, 1, 1)
    out = ((out - mean) * contrast + mean + bright).clamp(0, 1)
    if cfg.half_occlusion_prob > 0:  # drawn only when on, so runs without it keep their random stream
        out = occlude_half(out, cfg, uniform, chosen, generator)
    out = _degrade(out, cfg, uniform, chosen, generator)  # after occluders: the camera sees them too
    if cfg.erase_prob > 0:
        erase = chosen(cfg.erase_prob)
        side = (uniform(0.15, 0.35) * out_size).long()
        cx = (uniform(0, 1) * out_size).long()
        cy = (uniform(0, 1) * out_size).long()
        ar = torch.arange(out_size, device=device)
        in_x = (ar.view(1, -1) - cx.view(-1, 1)).abs() <= side.view(-1, 1) // 2
        in_y = (ar.view(1, -1) - cy.view(-1, 1)).abs() <= side.view(-1, 1) // 2
        mask = (in_y.unsqueeze(2) & in_x.unsqueeze(1) & erase.view(-1, 1, 1)).unsqueeze(1)
        out = out.masked_fill(mask, 0.5)
    return out, flips


def occlude_half(x: torch.Tensor, cfg: AugmentConfig, uniform, chosen, generator: torch.Generator) -> torch.Tensor:
    """Cover the mouth and jaw (from 58-72 % of the height down) or the eyes (a band centred at 33-45 % of the
    height, 12-20 % high) of a share of the faces with a flat shade and a little texture.

    Talking moves the mouth without any emotion, and masks, hands and microphones hide it; sunglasses hide the
    eyes. A model that sometimes must read the expression from one half of the face learns both halves' cues
    instead of leaning on the mouth alone. Rows are in the output frame, where FER2013-style crops put the eyes
    near 40 % and the mouth near 75 % of the height.
    """
    b, side = x.shape[0], x.shape[-1]
    pick, lower = chosen(cfg.half_occlusion_prob), chosen(cfg.lower_occlusion_share)
    lower_top, eyes_centre, eyes_height = uniform(0.58, 0.72), uniform(0.33, 0.45), uniform(0.12, 0.2)
    left, right, shade = uniform(0.0, 0.12), uniform(0.88, 1.0), uniform(0.1, 0.9)
    texture = 0.03 * torch.randn(x.shape, generator=generator).to(x.device)
    top = torch.where(lower, lower_top, eyes_centre - eyes_height / 2)
    bottom = torch.where(lower, torch.ones_like(lower_top), eyes_centre + eyes_height / 2)
    at = (torch.arange(side, device=x.device, dtype=x.dtype) + 0.5) / side
    rows = (at.view(1, -1) >= top.view(-1, 1)) & (at.view(1, -1) < bottom.view(-1, 1))
    cols = (at.view(1, -1) >= left.view(-1, 1)) & (at.view(1, -1) < right.view(-1, 1))
    covered = (rows.unsqueeze(2) & cols.unsqueeze(1) & pick.view(-1, 1, 1)).unsqueeze(1)
    return torch.where(covered, (shade.view(b, 1, 1, 1) + texture).clamp(0, 1), x)


def _degrade(x: torch.Tensor, cfg: AugmentConfig, uniform, chosen, generator: torch.Generator) -> torch.Tensor:
    """Camera-like degradations, each on its own random subset of the batch (draws happen even when off, so a
    config change does not reshuffle the rest of the stream)."""
    b, side = x.shape[0], x.shape[-1]
    scale = side / 48.0  # the ranges are stated for 48 px crops
    pick, sigma = chosen(cfg.blur_prob), uniform(*cfg.blur_sigma) * scale
    if pick.any():
        x = torch.where(pick.view(b, 1, 1, 1), gaussian_blur(x, sigma), x)
    pick, gamma = chosen(cfg.gamma_prob), torch.exp(uniform(*map(math.log, cfg.gamma_range)))
    if pick.any():
        x = torch.where(pick.view(b, 1, 1, 1), x.clamp_min(1e-4) ** gamma.view(b, 1, 1, 1), x)
    pick, low = chosen(cfg.lowres_prob), uniform(*cfg.lowres_side) * scale
    if pick.any():
        for i in torch.nonzero(pick).flatten().tolist():
            n = max(4, int(low[i]))
            small = F.interpolate(x[i:i + 1], size=(n, n), mode="bilinear", align_corners=False, antialias=True)
            x[i:i + 1] = F.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
    pick, std = chosen(cfg.noise_prob), uniform(*cfg.noise_std)
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    if pick.any():
        x = torch.where(pick.view(b, 1, 1, 1), (x + noise * std.view(b, 1, 1, 1)).clamp(0, 1), x)
    pick, quality = chosen(cfg.jpeg_prob), uniform(*cfg.jpeg_quality)
    if pick.any():
        x = x.clone()
        for i in torch.nonzero(pick).flatten().tolist():
            x[i, 0] = jpeg_roundtrip(x[i, 0], int(quality[i]))
    return x


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of [B, 1, H, W] with its own sigma [B] (separable, reflect-padded)."""
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets.view(1, -1) / sigma.view(-1, 1).clamp_min(1e-3)) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [B, K]
    b = x.shape[0]
    y = F.pad(x.transpose(0, 1), (radius, radius, radius, radius), mode="reflect")  # [1, B, H+2r, W+2r]
    y = F.conv2d(y, kernel.view(b, 1, 1, -1), groups=b)
    y = F.conv2d(y, kernel.view(b, 1, -1, 1), groups=b)
    return y.transpose(0, 1).contiguous()


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode one [H, W] float image in [0, 1] as JPEG at `quality` and decode it (block and ringing artefacts)."""
    pixels = (image.detach().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if ok else pixels
    return torch.from_numpy(decoded).to(image.device, image.dtype) / 255


MIX_MODES = ("none", "mixup", "cutmix")


def mix_batch(x: torch.Tensor, targets: list[torch.Tensor], generator: torch.Generator, mode: str,
              p: float = 0.5, alpha: float = 1.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Mixup or CutMix between each image and a partner of the same batch, with its targets mixed alike.

    Each image is mixed with probability `p`, with lambda ~ Beta(alpha, alpha) as its own share. Mixup blends
    the whole images; CutMix pastes a box of area about (1 - lambda) from the partner, and lambda is then the
    share left after clipping the box at the border. Every target ([B, ...] soft labels, V/A, teacher outputs) is
    mixed with the same per-image weight: lam * own + (1 - lam) * partner's. mode "none" returns the inputs and
    draws nothing, so runs without mixing keep their random stream.
    """
    if mode not in MIX_MODES:
        raise ValueError(f"unknown mix mode {mode!r}; expected one of {', '.join(MIX_MODES)}")
    if mode == "none" or p <= 0:
        return x, targets
    b, side, device = x.shape[0], x.shape[-1], x.device
    partner = torch.randperm(b, generator=generator).to(device)
    mixed = (torch.rand(b, generator=generator) < p).to(device)
    # Beta(a, a) from two Gammas; numpy's generator, seeded from torch's, keeps the run reproducible
    rng = np.random.default_rng(int(torch.randint(2 ** 31 - 1, (1,), generator=generator)))
    lam = torch.from_numpy(rng.beta(alpha, alpha, size=b).astype(np.float32)).to(device)
    if mode == "mixup":
        share = torch.where(mixed, lam, torch.ones_like(lam))
        out = share.view(b, 1, 1, 1) * x + (1 - share.view(b, 1, 1, 1)) * x[partner]
    else:
        cut = torch.sqrt(1 - lam) * side  # box side for an area of (1 - lam)
        cx = torch.from_numpy(rng.uniform(0, side, size=b).astype(np.float32)).to(device)
        cy = torch.from_numpy(rng.uniform(0, side, size=b).astype(np.float32)).to(device)
        x0, x1 = (cx - cut / 2).clamp(0, side).round(), (cx + cut / 2).clamp(0, side).round()
        y0, y1 = (cy - cut / 2).clamp(0, side).round(), (cy + cut / 2).clamp(0, side).round()
        grid = torch.arange(side, device=device, dtype=x.dtype)
        in_x = (grid.view(1, -1) >= x0.view(-1, 1)) & (grid.view(1, -1) < x1.view(-1, 1))
        in_y = (grid.view(1, -1) >= y0.view(-1, 1)) & (grid.view(1, -1) < y1.view(-1, 1))
        box = in_y.unsqueeze(2) & in_x.unsqueeze(1) & mixed.view(-1, 1, 1)  # [B, H, W]
        out = torch.where(box.unsqueeze(1), x[partner], x)
        share = 1 - box.flatten(1).float().mean(1)
    mixed_targets = []
    for target in targets:
        weight = share.view(-1, *([1] * (target.ndim - 1))).to(target.dtype)
        mixed_targets.append(weight * target + (1 - weight) * target[partner])
    return out, mixed_targets
