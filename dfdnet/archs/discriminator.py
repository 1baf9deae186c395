"""Discriminators: multi-scale patch discriminators on the whole face (paper §3.3, one per input
scale 1, 1/2, 1/4, 1/8) and component discriminators on the eyes and mouth (as GFPGAN's facial
component losses), where the dictionaries act.

Every convolution is spectral-normalised (``torch.nn.utils.spectral_norm``); the outputs are
unbounded patch logits for the hinge loss. With ``return_features=True`` each discriminator also
returns its hidden activations, for feature matching (pix2pixHD).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class PatchDiscriminator(nn.Module):
    """Strided SN-conv stack: (B, 3, H, W) in [-1, 1] -> (B, 1, H / 2**num_down, W / 2**num_down).

    Args:
        base_channels: channels of the first conv, doubled at each stride-2 conv up to max_channels.
        num_down: number of stride-2 4x4 convs.
    """

    def __init__(self, base_channels: int = 64, num_down: int = 3, max_channels: int = 512):
        super().__init__()
        layers = [spectral_norm(nn.Conv2d(3, base_channels, 3, 1, 1)), nn.LeakyReLU(0.2, True)]
        channels = base_channels
        for _ in range(num_down):
            out = min(channels * 2, max_channels)
            layers += [spectral_norm(nn.Conv2d(channels, out, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            channels = out
        layers += [spectral_norm(nn.Conv2d(channels, channels, 3, 1, 1)), nn.LeakyReLU(0.2, True),
                   spectral_norm(nn.Conv2d(channels, 1, 3, 1, 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """logits, or (logits, [the activation after each LeakyReLU]) with ``return_features``."""
        if not return_features:
            return self.body(x)
        features = []
        for layer in self.body:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        return x, features


class MultiScaleDiscriminator(nn.Module):
    """Independent patch discriminators on the image average-pooled by each factor in ``scales``.

    forward(x (B, 3, H, W)) -> list of logits, one (B, 1, h, w) map per scale, in ``scales`` order.
    H and W must be divisible by max(scales) * 2**num_down.
    """

    def __init__(self, scales=(1, 2, 4, 8), base_channels: int = 64, num_down: int = 3, max_channels: int = 512):
        super().__init__()
        self.scales = tuple(int(s) for s in scales)
        if not self.scales or any(s < 1 for s in self.scales):
            raise ValueError(f'discriminator scales must be positive integers, got {scales}')
        self.num_down = num_down
        self.discriminators = nn.ModuleList(PatchDiscriminator(base_channels, num_down, max_channels)
                                            for _ in self.scales)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """A list of logits, one per scale; with ``return_features``, (logits, features) where
        features[i] is scale i's list of activations."""
        results = [disc(F.avg_pool2d(x, scale) if scale > 1 else x, return_features)
                   for scale, disc in zip(self.scales, self.discriminators)]
        if not return_features:
            return results
        return [r[0] for r in results], [r[1] for r in results]


# Component order of the boxes (B, 4, 4): left eye, right eye, nose, mouth (dfdnet.face.components).
COMPONENT_INDEX = {'left_eye': 0, 'right_eye': 1, 'nose': 2, 'mouth': 3}


def component_crops(x: torch.Tensor, boxes: torch.Tensor, parts, crop_sizes, enlarge: float = 1.0) -> list:
    """RoIAlign crops (B, C, s, s) of ``x`` for each named part, its box (from ``boxes`` (B, 4, 4),
    ``[x1, y1, x2, y2]`` in x's pixels) scaled about its centre by ``enlarge``."""
    from dfdnet.archs.dft import roi_align

    boxes = boxes.to(x.dtype)
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]) / 2 * enlarge
    boxes = torch.cat([centre - half, centre + half], dim=-1)
    return [roi_align(x, boxes[:, COMPONENT_INDEX[p]], (s, s), 1.0) for p, s in zip(parts, crop_sizes)]


class ComponentDiscriminator(nn.Module):
    """One patch discriminator per facial component, on RoIAlign crops of its box.

    Args:
        parts: component names (keys of ``COMPONENT_INDEX``), e.g. ('left_eye', 'right_eye', 'mouth').
        crop_sizes: side in pixels each part's box is resampled to (about its box at 512 px).
        enlarge: each box is scaled about its centre by this factor first (GFPGAN: 1.4 for the eyes).
    forward(x (B, 3, H, W) in [-1, 1], boxes (B, 4, 4) ``[x1, y1, x2, y2]`` in x's pixels) -> list of
    logits (B, 1, h, w), one per part in ``parts`` order; with ``return_features``, (logits, features).
    """

    def __init__(self, parts=('left_eye', 'right_eye', 'mouth'), crop_sizes=(80, 80, 112), enlarge: float = 1.2,
                 base_channels: int = 32, num_down: int = 3, max_channels: int = 256):
        super().__init__()
        self.parts = tuple(str(p) for p in parts)
        unknown = [p for p in self.parts if p not in COMPONENT_INDEX]
        if unknown or not self.parts:
            raise ValueError(f'component discriminator parts must be some of {sorted(COMPONENT_INDEX)}, got {parts}')
        self.crop_sizes = tuple(int(c) for c in crop_sizes)
        if len(self.crop_sizes) != len(self.parts) or min(self.crop_sizes) < 2 ** (num_down + 1):
            raise ValueError(f'need one crop size >= {2 ** (num_down + 1)} per part, got {crop_sizes} for {self.parts}')
        self.enlarge = float(enlarge)
        self.discriminators = nn.ModuleList(PatchDiscriminator(base_channels, num_down, max_channels)
                                            for _ in self.parts)

    def crops(self, x: torch.Tensor, boxes: torch.Tensor) -> list[torch.Tensor]:
        """Each part's (B, 3, s, s) crop of x, its box enlarged about its centre."""
        return component_crops(x, boxes, self.parts, self.crop_sizes, self.enlarge)

    def forward(self, x: torch.Tensor, boxes: torch.Tensor, return_features: bool = False):
        results = [disc(crop, return_features) for crop, disc in zip(self.crops(x, boxes), self.discriminators)]
        if not return_features:
            return results
        return [r[0] for r in results], [r[1] for r in results]
