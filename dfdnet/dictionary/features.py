"""Component features of the frozen encoder, cropped exactly as the network crops them.

The encoder comes from exactly one explicit source (no silent fallback):

* ``checkpoint``: a generator checkpoint of any supported format; only ``vgg_extractor.*`` is used
  (and its config gives the encoder type, face size and part sizes);
* ``vgg``: a VGG state dict (torchvision ``features.N.*`` or ``conv1_1.*`` names), the encoder's
  default normalisation (ImageNet for vgg19);
* ``random_seed``: a seeded randomly initialised encoder, for experiments without weights; the
  dictionary metadata records it.

Crops follow ``dfdnet.archs.dft.transfer_slice``: integer image-pixel boxes from
``component_boxes``, ``floor(box / stride)``, plain slicing, bilinear resize (align_corners False)
to ``part_size // stride``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dfdnet.archs.checkpoint import read_checkpoint
from dfdnet.archs.dfdnet_arch import GeneratorConfig, to_core_resolution
from dfdnet.archs.dft import scale_boxes
from dfdnet.archs.vgg import TAP_STRIDES, VGGEncoder, load_vgg_weights, seed_random_weights_
from dfdnet.errors import CheckpointError
from dfdnet.face.components import PART_NAMES, component_boxes, flip_landmarks
from dfdnet.utils.pixels import to_network
from dfdnet.utils.precision import inference_autocast

logger = logging.getLogger(__name__)


@dataclass
class EncoderInfo:
    """Where the encoder's weights came from (written to dictionary.json)."""
    source: str                 # 'checkpoint', 'vgg' or 'random'
    arch: str
    path: str | None = None
    checkpoint_format: str | None = None
    random_seed: int | None = None
    file_sha256: str | None = None
    weights_sha256: str = ''    # sha256 of the encoder's tensors (names, shapes, float32 bytes)

    @property
    def is_random(self) -> bool:
        return self.source == 'random'

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {'random_encoder': self.is_random}


def file_sha256(path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as fh:
        for chunk in iter(lambda: fh.read(block), b''):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(module: torch.nn.Module) -> str:
    """sha256 over the module's state dict (sorted names, shapes and float32 little-endian bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f'{name}:{tuple(tensor.shape)};'.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().astype('<f4').tobytes())
    return digest.hexdigest()


def load_encoder(checkpoint=None, vgg=None, random_seed=None, arch: str = 'vgg19'):
    """The frozen encoder from exactly one source -> (VGGEncoder in eval mode on CPU, GeneratorConfig, EncoderInfo).

    Raises ``ValueError`` when no source or several are given and ``CheckpointError`` naming the
    file when the weights cannot be read or do not fit.
    """
    given = [name for name, value in (('--checkpoint', checkpoint), ('--vgg', vgg), ('--random_encoder', random_seed))
             if value is not None]
    if len(given) != 1:
        raise ValueError('the dictionary encoder needs exactly one source: --checkpoint FILE (a generator '
                         'checkpoint), --vgg FILE (a torchvision VGG19 state dict) or --random_encoder SEED '
                         f'(an explicitly random encoder); got {given or "none"}')
    if checkpoint is not None:
        state, config, fmt = read_checkpoint(checkpoint)
        prefix = 'vgg_extractor.'
        enc_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        encoder = VGGEncoder(config.encoder, config.width)
        _load_strict(encoder, enc_state, checkpoint, ignore_extra=True)
        info = EncoderInfo('checkpoint', config.encoder, str(Path(checkpoint).resolve()), fmt,
                           file_sha256=file_sha256(checkpoint))
    elif vgg is not None:
        config = GeneratorConfig(encoder=arch)
        encoder = VGGEncoder(arch)
        load_vgg_weights(encoder, vgg)  # torchvision features.N.* or conv1_1.* names; CheckpointError
        path = Path(vgg)
        info = EncoderInfo('vgg', arch, str(path.resolve()), 'vgg-state-dict', file_sha256=file_sha256(path))
    else:
        config = GeneratorConfig(encoder=arch)
        encoder = seed_random_weights_(VGGEncoder(arch), random_seed)  # as train.py's random_encoder_seed
        info = EncoderInfo('random', arch, random_seed=int(random_seed))
        logger.warning('using a RANDOMLY INITIALISED encoder (seed %d): the dictionary is for experiments only',
                       int(random_seed))
    encoder.eval().requires_grad_(False)
    info.weights_sha256 = weights_sha256(encoder)
    config = dataclasses.replace(config, dft_levels=(0, 1, 2, 3))
    return encoder, config, info


def _load_strict(encoder: VGGEncoder, state: dict, source, ignore_extra: bool) -> None:
    try:
        result = encoder.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f'{source}: encoder weights do not fit a {encoder.arch} encoder: {exc}') from exc
    if result.missing_keys:
        raise CheckpointError(f'{source}: encoder weights missing for {result.missing_keys} '
                              f'(is this a {encoder.arch} checkpoint?)')
    if result.unexpected_keys and not ignore_extra:
        raise CheckpointError(f'{source}: unexpected encoder keys {result.unexpected_keys}')


def feature_layout(config: GeneratorConfig) -> dict:
    """(part, feature size) -> (level, channels, atom side) for the four levels."""
    layout = {}
    for level, stride in enumerate(TAP_STRIDES):
        fsize = config.feature_sizes[level]
        for part, psize in zip(PART_NAMES, config.part_sizes):
            layout[(part, fsize)] = (level, config.tap_channels[level], psize // stride)
    return layout


def crop_components(features: list, boxes: torch.Tensor, config: GeneratorConfig) -> dict:
    """Resized component crops of a batch.

    Args:
        features: the encoder's taps, (B, C_l, H_l, W_l); the first L of the four give levels 0..L-1.
        boxes: (B, 4, 4) int64 image-pixel boxes from ``component_boxes`` (parts in PART_NAMES order).
    Returns:
        {(part, feature size): (crops (B, C, s, s) float32, valid (B,) bool)}; a crop whose box is
        empty at that stride is all zeros and not valid.
    """
    out = {}
    for level, feat in enumerate(features):
        stride = TAP_STRIDES[level]
        bsz, channels, height, width = feat.shape
        fboxes = scale_boxes(boxes, stride, height, width).tolist()
        for p, (part, psize) in enumerate(zip(PART_NAMES, config.part_sizes)):
            side = psize // stride
            crops = torch.zeros(bsz, channels, side, side, dtype=torch.float32, device=feat.device)
            valid = torch.zeros(bsz, dtype=torch.bool)
            for b in range(bsz):
                x1, y1, x2, y2 = fboxes[b][p]
                if x2 <= x1 or y2 <= y1:
                    continue
                crop = feat[b:b + 1, :, y1:y2, x1:x2]
                crops[b] = F.interpolate(crop, (side, side), mode='bilinear', align_corners=False)[0].float()
                valid[b] = True
            out[(part, height)] = (crops, valid)
    return out


def encode_levels(encoder: VGGEncoder, images: torch.Tensor, num_levels: int = 4) -> list:
    """The first ``num_levels`` taps of ``encoder`` (stops early: level 0 alone is ~4x cheaper)."""
    return encoder(images, num_levels=num_levels)


@torch.no_grad()
def extract_samples(encoder: VGGEncoder, faces: list, landmarks: list, config: GeneratorConfig, flip: bool,
                    device='cpu', precision: str = 'fp32') -> dict:
    """Component features of a batch of aligned faces (and of their mirror images when ``flip``).

    Args:
        faces: list of (S, S, 3) uint8 RGB aligned faces, S = config.image_size.
        landmarks: list of (68, 2) landmarks in the same pixels.
        flip: also take each face mirrored, with ``flip_landmarks`` (its left eye is the
            original right eye, and is stored as a left-eye sample).
        precision: the encoder pass ('fp32', 'bf16', 'fp16' autocast); the crops are float32.
    Returns:
        {(part, feature size): (crops (B * V, C, s, s) float32 CPU, valid (B * V,) bool)} with
        V = 2 if flip else 1; rows are face-major: face 0, face 0 mirrored, face 1, ...
    """
    size = config.image_size
    images, boxes = [], []
    for face, points in zip(faces, landmarks):
        if face.shape != (size, size, 3):
            raise ValueError(f'expected an aligned ({size}, {size}, 3) face, got {face.shape}')
        image = to_network(face)
        images.append(image)
        boxes.append(component_boxes(points, size))
        if flip:
            images.append(image.flip(-1))
            boxes.append(component_boxes(flip_landmarks(points, size), size))
    batch = torch.stack(images).to(device)
    box_tensor = torch.as_tensor(np.stack(boxes), dtype=torch.long)
    batch, box_tensor = to_core_resolution(batch, box_tensor, config)  # what the generator's encoder sees
    with inference_autocast(precision, batch.device):
        features = encoder(batch)
    features = [f.float() for f in features]
    return {key: (crops.cpu(), valid) for key, (crops, valid) in crop_components(features, box_tensor, config).items()}
