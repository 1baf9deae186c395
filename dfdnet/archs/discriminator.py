"""Multi-scale patch discriminators (paper §3.3): one per input scale 1, 1/2, 1/4, 1/8.

Every convolution is spectral-normalised (``torch.nn.utils.spectral_norm``); the outputs are
unbounded patch logits for the hinge loss.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


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

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for scale, disc in zip(self.scales, self.discriminators):
            outputs.append(disc(F.avg_pool2d(x, scale) if scale > 1 else x))
        return outputs
