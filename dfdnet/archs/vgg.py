"""Frozen VGG encoders with the four DFDNet feature taps.

Layers are named as in the original VGG papers (``conv1_1``, ``relu1_1``, ``pool1``, ...).
``vgg19`` is the released model's encoder (torchvision layout, ImageNet normalisation);
``vggface`` is the paper's VGG-Face (VGG16 layout) with the Oxford model's own normalisation.
Both give features of 128/256/512/512 channels at strides 2/4/8/16; ``width`` < 64 gives a
narrower VGG of the same layout (all channels scaled by width/64) for small models.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

# Number of 3x3 convs in each of the five VGG blocks.
_BLOCK_DEPTHS = {'vgg19': (2, 2, 4, 4, 4), 'vggface': (2, 2, 3, 3, 3)}
_CHANNEL_MULTIPLIERS = (1, 2, 4, 8, 8)  # x width (64 = VGG's own 64/128/256/512/512)

# The taps: relu2_2, last ReLU of blocks 3 and 4, and the last conv of block 5 *before* its
# ReLU (the released code cut torchvision's Sequential so that in-place ReLUs gave exactly this).
ENCODER_TAPS = {
    'vgg19': ('relu2_2', 'relu3_4', 'relu4_4', 'conv5_4'),
    'vggface': ('relu2_2', 'relu3_3', 'relu4_3', 'conv5_3'),
}
TAP_STRIDES = (2, 4, 8, 16)


def tap_channels(width: int = 64) -> tuple:
    """Channels of the four taps for a VGG of base ``width`` (64: 128/256/512/512)."""
    return tuple(width * m for m in _CHANNEL_MULTIPLIERS[1:])

# Normalisation applied to x in [0, 1]: (x - mean) / std.
ENCODER_NORMALISATION = {
    'vgg19': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # Oxford VGG-Face expects 0-255 RGB minus its mean image colour.
    'vggface': ((129.186279296875 / 255, 104.76238250732422 / 255, 93.59396362304688 / 255),
                (1 / 255, 1 / 255, 1 / 255)),
}


def vgg_layer_names(arch: str) -> list[str]:
    """Layer names of a VGG ``features`` stack in torchvision index order."""
    names = []
    for block, depth in enumerate(_BLOCK_DEPTHS[arch], start=1):
        for i in range(1, depth + 1):
            names += [f'conv{block}_{i}', f'relu{block}_{i}']
        names.append(f'pool{block}')
    return names


class VGGEncoder(nn.Module):
    """VGG feature stack truncated at the last tap; returns the four tap features.

    Input: (B, 3, H, W) RGB in [-1, 1]. Output: list of four tensors
    (B, 128, H/2, W/2), (B, 256, H/4, W/4), (B, 512, H/8, W/8), (B, 512, H/16, W/16)
    for width 64 (channels scale with ``width``).
    ``mean``/``std`` are buffers so that a checkpoint's own values are used.
    """

    def __init__(self, arch: str = 'vgg19', width: int = 64):
        super().__init__()
        if arch not in _BLOCK_DEPTHS:
            raise ValueError(f'unknown encoder {arch!r}; choose one of {sorted(_BLOCK_DEPTHS)}')
        if int(width) < 1:
            raise ValueError(f'encoder width must be positive, got {width}')
        self.arch = arch
        self.width = int(width)
        self.taps = ENCODER_TAPS[arch]
        names = vgg_layer_names(arch)
        names = names[:names.index(self.taps[-1]) + 1]
        layers = OrderedDict()
        in_ch = 3
        for name in names:
            if name.startswith('conv'):
                out_ch = self.width * _CHANNEL_MULTIPLIERS[int(name[4]) - 1]
                layers[name] = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
                in_ch = out_ch
            elif name.startswith('relu'):
                layers[name] = nn.ReLU(inplace=True)  # each tapped ReLU is followed by a pool
            else:
                layers[name] = nn.MaxPool2d(2, 2)
        self.vgg_net = nn.Sequential(layers)
        mean, std = ENCODER_NORMALISATION[arch]
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1))
        self.init_weights()
        self.requires_grad_(False)

    @torch.no_grad()
    def init_weights(self) -> None:
        """torchvision's VGG initialisation (Kaiming normal, fan-out; zero biases) from the global RNG."""
        for module in self.vgg_net:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, num_levels: int = 4) -> list[torch.Tensor]:
        """The first ``num_levels`` tap features (the stack stops after the last one needed)."""
        x = ((x + 1) / 2 - self.mean) / self.std
        features = []
        for name, layer in self.vgg_net.named_children():
            x = layer(x)
            if name in self.taps:
                features.append(x)
                if len(features) == num_levels:
                    break
        return features


def torchvision_to_named(state_dict: dict, arch: str = 'vgg19') -> dict:
    """Map torchvision ``features.<idx>.*`` keys (or bare ``<idx>.*``) to ``<layer name>.*``.

    Classifier keys are dropped; the result loads into ``VGGEncoder.vgg_net``.
    """
    names = vgg_layer_names(arch)
    out = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] == 'features':
            parts = parts[1:]
        if parts[0] == 'classifier' or not parts[0].isdigit():
            continue
        idx = int(parts[0])
        if idx < len(names):
            out['.'.join([names[idx]] + parts[1:])] = value
    return out


def load_vgg_weights(encoder: VGGEncoder, path) -> None:
    """Load a VGG weights file into ``encoder`` (strictly, for the layers it has).

    Accepts a torchvision state dict (``features.<idx>.*``, e.g. ImageNet VGG19) or one keyed by
    layer name (``conv1_1.weight``, e.g. the common PyTorch conversion of Oxford VGG-Face); fully
    connected layers are ignored. Raises ``CheckpointError`` naming the file on any mismatch.
    """
    from dfdnet.errors import CheckpointError
    from dfdnet.utils.files import load_torch_file

    path = Path(path)
    state = load_torch_file(path, 'VGG weights file', CheckpointError)
    for key in ('state_dict', 'params'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: expected a state dict, got {type(state).__name__}')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if any(k.split('.')[0] == 'features' or k.split('.')[0].isdigit() for k in state):
        state = torchvision_to_named(state, encoder.arch)
    # Layers past the last tap and the fully connected layers are not used.
    wanted = encoder.vgg_net.state_dict()
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise CheckpointError(f'{path}: not a {encoder.arch} weights file; missing {missing[:8]}'
                              f'{" ..." if len(missing) > 8 else ""}')
    try:
        encoder.vgg_net.load_state_dict({k: state[k] for k in wanted}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f'{path}: {exc}') from exc


def load_vgg_encoder(arch: str, path) -> VGGEncoder:
    """A frozen, eval-mode ``VGGEncoder`` ('vgg19' or 'vggface') with weights from a user file."""
    encoder = VGGEncoder(arch)
    load_vgg_weights(encoder, path)
    return encoder.eval()


def seed_random_weights_(encoder: VGGEncoder, seed: int) -> VGGEncoder:
    """Give ``encoder`` seeded random weights (torchvision's init), leaving the global RNG as it was.

    The same seed gives the same encoder everywhere (dictionary building, training, tests).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        encoder.init_weights()
    return encoder
