"""Building blocks of the DFDNet generator, with the released layer layouts.

Every "SN" conv uses ``torch.nn.utils.spectral_norm`` so that the state-dict keys are
``weight_orig``/``weight_u``/``weight_v``; in eval mode the stored vectors are used as-is.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


def sn_conv(in_ch: int, out_ch: int, dilation: int = 1) -> nn.Module:
    """Spectral-normalised 3x3 conv, 'same' padding."""
    return spectral_norm(nn.Conv2d(in_ch, out_ch, 3, 1, padding=dilation, dilation=dilation))


def confidence_block(channels: int) -> nn.Sequential:
    """Conf(x) = SNconv(LReLU0.2(SNconv(x))), no sigmoid (reference §2 step 7)."""
    return nn.Sequential(sn_conv(channels, channels), nn.LeakyReLU(0.2), sn_conv(channels, channels))


class MSDilationBlock(nn.Module):
    """Multi-scale dilated bottleneck: four dilated branches, fused, plus the input."""

    def __init__(self, channels: int, dilations=(4, 3, 2, 1)):
        super().__init__()
        self.conv_blocks = nn.ModuleList(
            nn.Sequential(sn_conv(channels, channels, d), nn.LeakyReLU(0.2), sn_conv(channels, channels, d))
            for d in dilations)
        self.conv_fusion = sn_conv(channels * len(dilations), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_fusion(torch.cat([block(x) for block in self.conv_blocks], 1)) + x


def binomial_kernel(channels: int) -> torch.Tensor:
    """(channels, 1, 3, 3) depthwise kernel [[1,2,1],[2,4,2],[1,2,1]]/16, on the CPU (also under a
    default-device context: the module moves with ``.to``)."""
    k = torch.tensor([1.0, 2.0, 1.0], device='cpu')
    return ((k[:, None] * k[None, :]) / 16.0).expand(channels, 1, 3, 3).contiguous()


class Blur(nn.Module):
    """Depthwise 3x3 binomial blur [[1,2,1],[2,4,2],[1,2,1]]/16 with zero padding."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer('kernel', binomial_kernel(channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel, padding=1, groups=x.shape[1])


class StyleUpBlock(nn.Module):
    """SFT up-block: blur-conv, spatial scale/shift from the style features, x2 up, conv.

    x: (B, in, H, W), style: (B, in, H, W) -> (B, out, 2H, 2W).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Sequential(Blur(in_ch), sn_conv(in_ch, out_ch), nn.LeakyReLU(0.2))
        self.convup = nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
                                    sn_conv(out_ch, out_ch), nn.LeakyReLU(0.2))
        self.scale_block = nn.Sequential(sn_conv(in_ch, out_ch), nn.LeakyReLU(0.2), sn_conv(out_ch, out_ch))
        self.shift_block = nn.Sequential(sn_conv(in_ch, out_ch), nn.LeakyReLU(0.2), sn_conv(out_ch, out_ch),
                                         nn.Sigmoid())

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # The released block applies LeakyReLU(0.2) twice in a row here.
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = h * self.scale_block(style) + self.shift_block(style)
        return self.convup(h)


class UpResBlock(nn.Module):
    """x + conv(LReLU(conv(x))), plain convs."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def output_head(channels: int) -> nn.Sequential:
    """SNconv -> LReLU -> 2 x UpResBlock -> conv(->3) -> tanh."""
    return nn.Sequential(sn_conv(channels, channels), nn.LeakyReLU(0.2), UpResBlock(channels),
                         UpResBlock(channels), nn.Conv2d(channels, 3, 3, 1, 1), nn.Tanh())


class FullResolutionHead(nn.Module):
    """Residual at full resolution for a network whose core runs at a lower one.

    forward(images (B, 3, S, S), features (B, C, S, S) upsampled decoder features) -> (B, 3, S, S).
    The last conv starts at zero, so a new head adds nothing until it is trained.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, 1, 1), nn.LeakyReLU(0.2))
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels, channels, 3, 1, 1), nn.LeakyReLU(0.2),
                                  UpResBlock(channels))
        self.out = nn.Conv2d(channels, 3, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.fuse(torch.cat([self.stem(images), features], 1)))


class SubpixelHead(nn.Module):
    """Full-resolution residual computed at the core's resolution (a light x``scale`` head).

    forward(images (B, 3, S, S) in [-1, 1], features (B, in_channels, S/r, S/r) decoder output) ->
    (B, 3, S, S). The input enters space-to-depth (``pixel_unshuffle``) beside the features, and
    the residual leaves depth-to-space (``pixel_shuffle``), so every convolution runs at S/r:
    detail above the core's band for the cost of three convolutions of ``channels`` (default
    ``in_channels``), plus two per residual block (``blocks``, default none) between the body and
    the output. The last conv, and the last conv of every residual block, start at zero: a new head
    adds nothing until it is trained, and blocks added to a trained head keep its function.
    """

    def __init__(self, in_channels: int, scale: int, channels: int | None = None, blocks: int = 0):
        super().__init__()
        self.scale = int(scale)
        channels = int(channels or in_channels)
        sub = 3 * self.scale ** 2
        self.body = nn.Sequential(nn.Conv2d(sub + in_channels, channels, 3, 1, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*(UpResBlock(channels) for _ in range(int(blocks))))
        for block in self.blocks:
            nn.init.zeros_(block.body[-1].weight)
            nn.init.zeros_(block.body[-1].bias)
        self.out = nn.Conv2d(channels, sub, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = torch.cat([F.pixel_unshuffle(images, self.scale).to(features.dtype), features], 1)
        return F.pixel_shuffle(self.out(self.blocks(self.body(x))), self.scale)

    @torch.no_grad()
    def widened_state(self, narrow: dict, prefix: str = '') -> dict:
        """This head's state dict holding a narrower head's ``narrow`` weights so that it computes
        exactly what they compute (Net2Net-style): the old hidden channels come first, the new ones
        keep this head's initialisation but start with zero weight into the old channels and the
        output, so training grows them from the old function instead of from scratch."""
        if any(k.startswith(f'{prefix}blocks.') for k in narrow):
            raise ValueError('cannot widen a head that has residual blocks (only body and output are widened)')
        own = {k: v.clone() for k, v in self.state_dict().items()}
        old = narrow[f'{prefix}body.0.weight'].shape[0]
        if old > own['body.0.weight'].shape[0]:
            raise ValueError(f'cannot widen a head of {old} channels to {own["body.0.weight"].shape[0]}')
        own['body.0.weight'][:old] = narrow[f'{prefix}body.0.weight']
        own['body.0.bias'][:old] = narrow[f'{prefix}body.0.bias']
        own['body.2.weight'][:old] = 0.0
        own['body.2.weight'][:old, :old] = narrow[f'{prefix}body.2.weight']
        own['body.2.bias'][:old] = narrow[f'{prefix}body.2.bias']
        own['out.weight'].zero_()
        own['out.weight'][:, :old] = narrow[f'{prefix}out.weight']
        own['out.bias'].copy_(narrow[f'{prefix}out.bias'])
        return own
