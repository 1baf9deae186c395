"""A slow, literal re-statement of the released DFDNet forward (reference §2), for checks only.

It keeps the released module names (so a released ``latest_net_G.pth`` loads into it with
``strict=True``), the released per-call work (every atom of every dictionary renormalised at
each forward, scores by ``conv2d`` and ``softmax``) and its single-face batch. The parity tests
compare ``DFDNetGenerator`` with it, and ``scripts/benchmarks/inference.py`` times it as the released code's
cost. Do not use it to restore images.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.nn.utils import spectral_norm

from dfdnet.archs.dictionary import dictionary_file_name
from dfdnet.face.components import PART_NAMES

_CODES = ('le', 're', 'no', 'mo')
_PART_SIZES = (80, 80, 50, 110)
_FEATURE_SIZES = (256, 128, 64, 32)
_CHANNELS = (128, 256, 512, 512)


def _sn(cin, cout, dilation=1):
    return spectral_norm(nn.Conv2d(cin, cout, 3, 1, dilation, dilation=dilation))


class _VggExtract(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torchvision.models.vgg19()
        cuts = [0, 8, 17, 26, 35]
        self.features = nn.ModuleList(
            nn.Sequential(*[self.model.features[j] for j in range(cuts[i], cuts[i + 1])]) for i in range(4))
        for i, seq in enumerate(self.features):  # name the children by their torchvision index
            seq._modules = type(seq._modules)((str(cuts[i] + k), m) for k, m in enumerate(seq._modules.values()))
        self.RGB_mean = nn.Parameter(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.RGB_std = nn.Parameter(torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        x = ((x + 1) / 2 - self.RGB_mean) / self.RGB_std
        out = []
        for stage in self.features:  # torchvision's in-place ReLUs modify the previous output
            x = stage(x)
            out.append(x)
        return out


class _ReleasedBlur(nn.Module):
    def __init__(self, channels):
        super().__init__()
        k = torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]]).view(1, 1, 3, 3) / 16
        self.register_buffer('weight', k.repeat(channels, 1, 1, 1))
        self.register_buffer('weight_flip', torch.flip(k, [2, 3]).repeat(channels, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.weight, padding=1, groups=x.shape[1])


class _StyledUp(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Sequential(_ReleasedBlur(cin), _sn(cin, cout), nn.LeakyReLU(0.2))
        self.convup = nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
                                    _sn(cout, cout), nn.LeakyReLU(0.2))
        self.lrelu = nn.LeakyReLU(0.2)
        self.ScaleModel1 = nn.Sequential(_sn(cin, cout), nn.LeakyReLU(0.2, True), _sn(cout, cout))
        self.ShiftModel1 = nn.Sequential(_sn(cin, cout), nn.LeakyReLU(0.2, True), _sn(cout, cout), nn.Sigmoid())

    def forward(self, x, style):
        out = self.lrelu(self.conv1(x))
        out = out * self.ScaleModel1(style) + self.ShiftModel1(style)
        return self.convup(out)


class _ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.Model = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(c, c, 3, 1, 1))

    def forward(self, x):
        return x + self.Model(x)


class _MSDilate(nn.Module):
    def __init__(self, c):
        super().__init__()
        for i, d in enumerate((4, 3, 2, 1), start=1):
            setattr(self, f'conv{i}', nn.Sequential(_sn(c, c, d), nn.LeakyReLU(0.2), _sn(c, c, d)))
        self.convi = _sn(4 * c, c)

    def forward(self, x):
        cat = torch.cat([getattr(self, f'conv{i}')(x) for i in range(1, 5)], 1)
        return self.convi(cat) + x


def _adain_4d(content, style, eps=1e-5):
    def stats(t):
        n, c = t.shape[:2]
        var = t.view(n, c, -1).var(dim=2) + eps
        return t.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)
    s_mean, s_std = stats(style)
    c_mean, c_std = stats(content)
    return (content - c_mean) / c_std * s_std + s_mean


class ReleasedDFDNet(nn.Module):
    """Released layout and semantics. forward(x (1, 3, 512, 512), boxes (4, 4)) -> (1, 3, 512, 512)."""

    def __init__(self, dict_dir=None):
        super().__init__()
        for code, _ in zip(_CODES, PART_NAMES):
            for fsize, ch in zip(_FEATURE_SIZES, _CHANNELS):
                setattr(self, f'{code}_{fsize}', nn.Sequential(_sn(ch, ch), nn.LeakyReLU(0.2), _sn(ch, ch)))
        self.VggExtract = _VggExtract()
        self.MSDilate = _MSDilate(512)
        self.up0, self.up1 = _StyledUp(512, 512), _StyledUp(512, 256)
        self.up2, self.up3 = _StyledUp(256, 128), _StyledUp(128, 64)
        self.up4 = nn.Sequential(_sn(64, 64), nn.LeakyReLU(0.2), _ResBlock(64), _ResBlock(64),
                                 nn.Conv2d(64, 3, 3, 1, 1), nn.Tanh())
        for i, c in enumerate((512, 256, 128, 64)):  # unused by forward, present in the file
            setattr(self, f'to_rgb{i}', nn.Sequential(_sn(c, c), nn.LeakyReLU(0.2), _sn(c, 3)))
        self.dicts = {}
        if dict_dir is not None:
            for part, psize in zip(PART_NAMES, _PART_SIZES):
                for fsize, ch in zip(_FEATURE_SIZES, _CHANNELS):
                    raw = torch.from_numpy(np.load(f'{dict_dir}/{dictionary_file_name(part, fsize)}'))
                    side = psize // (512 // fsize)
                    self.dicts[(part, fsize)] = raw.reshape(raw.shape[0], ch, side, side)

    def forward(self, x, boxes, return_updated=False):
        feats = self.VggExtract(x)
        boxes = torch.as_tensor(np.asarray(boxes))
        updated = []
        for i, fsize in enumerate(_FEATURE_SIZES):
            feat = feats[i]
            new = feat.clone()
            for code, part, box in zip(_CODES, PART_NAMES, boxes):
                d = self.dicts[(part, fsize)].to(x)
                loc = (box // (512 / fsize)).int()
                crop = feat[:, :, loc[1]:loc[3], loc[0]:loc[2]].clone()
                small = F.interpolate(crop, (d.size(2), d.size(3)), mode='bilinear', align_corners=False)
                d_norm = _adain_4d(d, small)
                score = F.softmax(F.conv2d(small, d_norm).view(-1), dim=0)
                k = torch.argmax(score)
                swap = F.interpolate(d_norm[k:k + 1], (crop.size(2), crop.size(3)))
                att = getattr(self, f'{code}_{fsize}')(swap - crop)
                new[:, :, loc[1]:loc[3], loc[0]:loc[2]] = att * swap + crop
            updated.append(new)
        if return_updated:
            return updated
        h = self.MSDilate(feats[-1])
        h = self.up0(h, updated[3])
        h = self.up1(h, updated[2])
        h = self.up2(h, updated[1])
        h = self.up3(h, updated[0])
        return self.up4(h)
