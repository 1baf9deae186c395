"""The DFDNet generator (released architecture, reference §2) with the paper's ablation switches."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dfdnet.archs.blocks import (FullResolutionHead, MSDilationBlock, StyleUpBlock, SubpixelHead, confidence_block,
                                 output_head)
from dfdnet.archs.dft import transfer_roi_align, transfer_slice
from dfdnet.archs.dictionary import DictionaryBank
from dfdnet.archs.vgg import TAP_STRIDES, VGGEncoder, tap_channels
from dfdnet.face.components import PART_NAMES
from dfdnet.utils.precision import inference_autocast


@dataclass
class GeneratorConfig:
    """Options of ``DFDNetGenerator``; the defaults are the released model.

    encoder: 'vgg19' (released) or 'vggface' (the paper's VGG16-layout VGG-Face).
    image_size: side of the aligned face (512 released; 256 for the paper's DFDNet256).
    part_sizes: component sizes in image pixels (left eye, right eye, nose, mouth); the atom
        side at stride d is part_size // d.
    dft_levels: which of the four feature levels (0 = stride 2 ... 3 = stride 16) use the
        dictionaries; () gives the "0 DFT" ablation, (2, 3) the "2 DFT" one.
    use_cadain / use_confidence: Table 3 ablations (off: raw atoms / A = 1).
    crop_mode: 'slice' (released integer crops) or 'roi_align' (differentiable, for training).
    width: base channel count (64 released). The encoder's channels are width x (1, 2, 4, 8, 8)
        and the decoder's width x (8, 8, 4, 2, 1), so the taps and the decoder stay matched;
        smaller widths give the narrow variants (16: 1/16 of the convolution work).
    residual: add the input image to the output (output = clamp(input + head, -1, 1)), the head's
        last conv starting at zero so that training starts from the identity. Not in the paper or
        the released model (False); it lets a small model trained briefly on a CPU beat its
        input from the first iterations (see docs/default_model.md).
    compute_size: side at which the encoder, the dictionaries and the decoder run; None (default)
        = image_size. A smaller side (e.g. 256 for 512-px faces; needs ``residual``) keeps
        ``image_size`` in and out: the core sees the area-downscaled face (boxes scaled with it),
        and its residual, upsampled bilinearly, is added to the full-resolution input, so that
        what is good in the input survives. ``part_sizes`` are then in ``compute_size`` pixels.
    full_res_head: with ``compute_size``, also add the residual of a ``FullResolutionHead`` that
        sees the full-resolution input and the upsampled decoder features (it can sharpen above
        the core's band; its cost on a CPU: docs/network.md).
    subpixel_head: with ``compute_size``, also add the residual of a ``SubpixelHead``: the
        full-resolution input space-to-depth beside the decoder's last features, three convs at
        ``compute_size`` and depth-to-space back (detail above the core's band; its cost: docs/network.md).
    subpixel_width: channels of the ``SubpixelHead``'s convolutions; None (default) = ``width``.
    subpixel_blocks: residual blocks in the ``SubpixelHead`` (default 0); new blocks start as the identity.
    """
    encoder: str = 'vgg19'
    image_size: int = 512
    part_sizes: tuple = (80, 80, 50, 110)
    dft_levels: tuple = (0, 1, 2, 3)
    use_cadain: bool = True
    use_confidence: bool = True
    crop_mode: str = 'slice'
    width: int = 64
    residual: bool = False
    compute_size: int | None = None
    full_res_head: bool = False
    subpixel_head: bool = False
    subpixel_width: int | None = None
    subpixel_blocks: int = 0

    def __post_init__(self):
        self.part_sizes = tuple(int(s) for s in self.part_sizes)
        self.dft_levels = tuple(sorted(int(i) for i in self.dft_levels))
        self.width = int(self.width)
        if self.width < 1:
            raise ValueError(f'width must be positive, got {self.width}')
        if self.image_size % 16:
            raise ValueError(f'image_size must be a multiple of 16, got {self.image_size}')
        if self.compute_size is not None:
            self.compute_size = int(self.compute_size)
            if self.compute_size == self.image_size:
                self.compute_size = None
            elif (self.compute_size % 16 or self.compute_size > self.image_size
                  or self.image_size % self.compute_size):
                raise ValueError(f'compute_size must be a multiple of 16 that divides image_size '
                                 f'({self.image_size}), got {self.compute_size}')
            elif not self.residual:
                raise ValueError('compute_size < image_size needs residual: true (the output is the full-resolution '
                                 'input plus the network)')
        self.full_res_head = bool(self.full_res_head)
        if self.full_res_head and self.compute_size is None:
            raise ValueError('full_res_head needs a compute_size smaller than image_size')
        self.subpixel_head = bool(self.subpixel_head)
        if self.subpixel_head and self.compute_size is None:
            raise ValueError('subpixel_head needs a compute_size smaller than image_size')
        if self.subpixel_width is not None:
            self.subpixel_width = int(self.subpixel_width)
            if not self.subpixel_head or self.subpixel_width < 1:
                raise ValueError(f'subpixel_width ({self.subpixel_width}) needs subpixel_head and a positive width')
        self.subpixel_blocks = int(self.subpixel_blocks)
        if (self.subpixel_blocks and not self.subpixel_head) or self.subpixel_blocks < 0:
            raise ValueError(f'subpixel_blocks ({self.subpixel_blocks}) needs subpixel_head and a count >= 0')
        if self.subpixel_head and self.full_res_head:
            raise ValueError('choose one of full_res_head and subpixel_head')
        if len(self.part_sizes) != 4:
            raise ValueError(f'part_sizes needs 4 values (left eye, right eye, nose, mouth), got {self.part_sizes}')
        if not set(self.dft_levels) <= {0, 1, 2, 3}:
            raise ValueError(f'dft_levels must be a subset of (0, 1, 2, 3), got {self.dft_levels}')
        if self.crop_mode not in ('slice', 'roi_align'):
            raise ValueError(f"crop_mode must be 'slice' or 'roi_align', got {self.crop_mode!r}")
        for level in self.dft_levels:
            for part, size in zip(PART_NAMES, self.part_sizes):
                if size // TAP_STRIDES[level] < 2:
                    raise ValueError(f'{part} atoms would be smaller than 2x2 at stride {TAP_STRIDES[level]}')

    @property
    def core_size(self) -> int:
        """Side of the face the encoder, dictionaries and decoder see."""
        return self.compute_size or self.image_size

    @property
    def core_scale(self) -> int:
        """image_size / core_size (1 when the core runs at full resolution)."""
        return self.image_size // self.core_size

    @property
    def feature_sizes(self) -> tuple:
        return tuple(self.core_size // d for d in TAP_STRIDES)

    @property
    def tap_channels(self) -> tuple:
        return tap_channels(self.width)

    def dictionary_layout(self) -> dict:
        """(part, feature size) -> (channels, atom side) for every level that uses DFT."""
        layout = {}
        for level in self.dft_levels:
            for part, size in zip(PART_NAMES, self.part_sizes):
                layout[(part, self.feature_sizes[level])] = (self.tap_channels[level], size // TAP_STRIDES[level])
        return layout

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class DFDNetGenerator(nn.Module):
    """DFDNet: frozen VGG encoder, four-scale dictionary feature transfer, SFT decoder.

    forward(images, boxes): images (B, 3, S, S) RGB in [-1, 1], boxes (B, 4, 4) int
    ``[x1, y1, x2, y2]`` per part from ``component_boxes`` (a tensor, array or float tensor of
    integers) -> (B, 3, S, S) in [-1, 1]. No box value becomes a Python number, so the forward
    traces with the boxes as a graph input (``dfdnet.archs.onnx_export``).
    Module names follow the BasicSR port, so its state dicts load as they are.
    """

    def __init__(self, config: GeneratorConfig | None = None, dictionaries: DictionaryBank | None = None):
        super().__init__()
        self.config = config or GeneratorConfig()
        width = self.config.width
        self.vgg_extractor = VGGEncoder(self.config.encoder, width)
        self.attn_blocks = nn.ModuleDict()
        for level in self.config.dft_levels:
            for part in PART_NAMES:
                self.attn_blocks[f'{part}_{self.config.feature_sizes[level]}'] = confidence_block(self.config.tap_channels[level])
        self.multi_scale_dilation = MSDilationBlock(width * 8, dilations=(4, 3, 2, 1))
        self.upsample0 = StyleUpBlock(width * 8, width * 8)
        self.upsample1 = StyleUpBlock(width * 8, width * 4)
        self.upsample2 = StyleUpBlock(width * 4, width * 2)
        self.upsample3 = StyleUpBlock(width * 2, width)
        self.upsample4 = output_head(width)
        # None unless asked for, so that the state dicts of other configurations stay as they were.
        self.full_res_head = FullResolutionHead(width) if self.config.full_res_head else None
        self.subpixel_head = (SubpixelHead(width, self.config.core_scale, self.config.subpixel_width,
                                           self.config.subpixel_blocks)
                              if self.config.subpixel_head else None)
        self.precision = 'fp32'  # inference: 'bf16' / 'fp16' run forward under autocast (load_generator sets it)
        self.checkpoint_format = None  # the format of the file load_generator read ('released', 'basicsr', ...)
        if self.config.residual:
            nn.init.zeros_(self.upsample4[-2].weight)
            nn.init.zeros_(self.upsample4[-2].bias)
        self.dictionaries = None
        self.spectral_norm_folded = False
        if dictionaries is not None:
            self.set_dictionaries(dictionaries)

    @torch.no_grad()
    def fold_spectral_norm(self) -> 'DFDNetGenerator':
        """For inference: replace each spectral-norm weight by ``weight_orig / sigma(u, v)``.

        This is exactly what eval mode computes at every call from the stored vectors (no power
        iteration), done once: it saves the per-call division and a second copy of ~93 M weights.
        A folded model cannot be trained or saved as a checkpoint.
        """
        for module in self.modules():
            if hasattr(module, 'weight_orig'):
                torch.nn.utils.remove_spectral_norm(module)
        self.spectral_norm_folded = True
        return self

    def set_dictionaries(self, bank: DictionaryBank) -> None:
        """Attach a ``DictionaryBank`` (checked against this network's layout); moved with the model."""
        expected = self.config.dictionary_layout()
        if bank.standardized != self.config.use_cadain:
            raise ValueError('dictionaries must be standardised exactly when CAdaIN is on '
                             f'(use_cadain={self.config.use_cadain}, standardized={bank.standardized})')
        got = bank.layout()
        missing = [k for k in expected if k not in got]
        wrong = {k: got[k] for k in expected if k in got and got[k] != expected[k]}
        if missing or wrong:
            raise ValueError(f'dictionary layout does not fit the network: missing {missing}, '
                             f'wrong (channels, size) {wrong}, expected {expected}')
        param = next(self.parameters())
        self.dictionaries = bank.to(param.device)

    def forward(self, images: torch.Tensor, boxes) -> torch.Tensor:
        with inference_autocast(self.precision, images.device):
            features, updated = self.encode(images, boxes)
            # The bottleneck sees the un-updated coarsest feature, as released.
            x = self.multi_scale_dilation(features[3])
            x = self.upsample0(x, updated[3])
            x = self.upsample1(x, updated[2])
            x = self.upsample2(x, updated[1])
            x = self.upsample3(x, updated[0])
            out = self.upsample4(x)
            scale = self.config.core_scale
            if self.config.residual and scale != 1:
                out = F.interpolate(out, scale_factor=scale, mode='bilinear', align_corners=False)
                if self.subpixel_head is not None:
                    out = out + self.subpixel_head(images, x)
                if self.full_res_head is not None:
                    x = F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False)
                    out = out + self.full_res_head(images, x)
        if self.precision != 'fp32':
            out = out.float()
        if not self.config.residual:
            return out
        return (images + out).clamp(-1.0, 1.0)  # the residual joins the input outside any reduced precision

    def encode(self, images: torch.Tensor, boxes):
        """Encoder features and their dictionary-updated copies (lists of four, strides 2-16)."""
        size = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] != (size, size):
            raise ValueError(f'expected images of shape (B, 3, {size}, {size}), got {tuple(images.shape)}')
        boxes = torch.as_tensor(np.asarray(boxes) if not torch.is_tensor(boxes) else boxes, device=images.device)
        if boxes.shape != (images.shape[0], 4, 4):
            raise ValueError(f'expected boxes of shape ({images.shape[0]}, 4, 4), got {tuple(boxes.shape)}')
        if self.config.dft_levels and self.dictionaries is None:
            raise RuntimeError('no dictionaries attached: load them with load_generator or set_dictionaries')
        images, boxes = to_core_resolution(images, boxes, self.config)
        # channels-last convolutions are faster on a CPU (oneDNN) for the same result (docs/network.md)
        features = self.vgg_extractor(images.contiguous(memory_format=torch.channels_last))
        updated = [self._transfer(level, feat, boxes) if level in self.config.dft_levels else feat
                   for level, feat in enumerate(features)]
        return features, updated

    def _transfer(self, level: int, feature: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        fsize = self.config.feature_sizes[level]
        atom_sets = [self.dictionaries.atoms(part, fsize) for part in PART_NAMES]
        attn = [self.attn_blocks[f'{part}_{fsize}'] for part in PART_NAMES]
        transfer = transfer_slice if self.config.crop_mode == 'slice' else transfer_roi_align
        if self.config.crop_mode == 'slice':
            boxes = boxes.long()
        updated = transfer(feature, boxes, atom_sets, attn, TAP_STRIDES[level],
                           standardized=self.config.use_cadain, use_confidence=self.config.use_confidence)
        for part in PART_NAMES:  # memory-mapped atoms: only the level in use stays resident
            self.dictionaries.release_pages(part, fsize)
        return updated


def to_core_resolution(images: torch.Tensor, boxes, config: GeneratorConfig):
    """Faces (B, 3, image_size, image_size) and int boxes (B, 4, 4) in image pixels -> the same at
    ``config.core_size`` (area downscaling; boxes floored), as the encoder and dictionaries see them."""
    scale = config.core_scale
    if scale == 1:
        return images, boxes
    return F.avg_pool2d(images, scale), torch.div(boxes, scale, rounding_mode='floor')
