"""Fidelity between a PSNR-trained generator and its adversarial fine-tune, per face.

Network interpolation (ESRGAN): every weight the fine-tune changed is
``fidelity * faithful + (1 - fidelity) * sharp``. ``FidelityBlend`` keeps both sets of those
weights and moves a loaded generator to any fidelity in place. With ``fidelity='auto'`` each face
gets its own value from how much fine detail its input still has (``input_sharpness``): a clean
face keeps the faithful generator (no harm), a blurred or small one gets the sharp end.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# Luma weights of ITU-R BT.601, as cv2.COLOR_RGB2YCrCb.
_LUMA = (0.299, 0.587, 0.114)
_SIZE = 512
_SIGMAS_512 = (0.7, 1.0, 2.0)  # Gaussian blurs that bound the two bands, in pixels of a 512-px aligned face


def input_sharpness(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) RGB in [-1, 1] -> (B,) float32: how much of the finest detail an aligned face has.

    The luma energy of the finest band (the image minus its Gaussian blur of sigma 0.7) divided by that
    of the band between blurs of sigma 1 and 2 (sigmas in pixels of a 512-px face),
    over the central half of the face (eyes, nose, mouth). A face upsampled from a small or blurred
    one has almost nothing in the finest band, even when noise was added before it was upsampled;
    the ratio does not depend on contrast or brightness. Faces of another size are measured resized
    to 512 px (bicubic). Figures for sharp and degraded faces are in docs/default_model.md
    ("Fidelity per face").
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f'expected (B, 3, S, S) images, got {tuple(images.shape)}')
    luma = sum(w * images[:, c:c + 1].float() for c, w in enumerate(_LUMA))
    if luma.shape[-2:] != (_SIZE, _SIZE):
        luma = F.interpolate(luma, size=(_SIZE, _SIZE), mode='bicubic', align_corners=False,
                             antialias=luma.shape[-1] > _SIZE)
    # imported here, not with the module: torchvision is slow to import and adds to every run's memory,
    # and only the per-face fidelity needs it
    from torchvision.transforms.v2.functional import gaussian_blur

    size = _SIZE
    blurred = []
    for sigma in _SIGMAS_512:
        kernel = 2 * math.ceil(3 * sigma) + 1
        blurred.append(gaussian_blur(luma, [kernel, kernel], [sigma, sigma]))
    lo, hi = size // 4, size - size // 4
    finest = (luma - blurred[0])[..., lo:hi, lo:hi].square().mean(dim=(1, 2, 3))
    middle = (blurred[1] - blurred[2])[..., lo:hi, lo:hi].square().mean(dim=(1, 2, 3))
    return finest / middle.clamp_min(1e-12)


@dataclass(frozen=True)
class AutoFidelity:
    """The per-face rule: ``lowest`` at or below sharpness ``sharp_below``, 1 at or above
    ``faithful_above``, linear between, rounded to ``step`` (faces of one value share a forward)."""
    sharp_below: float = 0.10
    faithful_above: float = 0.14
    lowest: float = 0.0
    step: float = 0.05

    def __post_init__(self):
        if not 0.0 <= self.lowest <= 1.0:
            raise ValueError(f'auto fidelity: lowest must be within [0, 1], got {self.lowest}')
        if not 0.0 <= self.sharp_below < self.faithful_above:
            raise ValueError(f'auto fidelity: need 0 <= sharp_below < faithful_above, got {self.sharp_below}, '
                             f'{self.faithful_above}')
        if not 0.0 < self.step <= 1.0:
            raise ValueError(f'auto fidelity: step must be within (0, 1], got {self.step}')

    def __call__(self, images: torch.Tensor) -> list:
        """(B, 3, S, S) in [-1, 1] -> B fidelities in [lowest, 1]."""
        t = (input_sharpness(images) - self.sharp_below) / (self.faithful_above - self.sharp_below)
        values = self.lowest + (1.0 - self.lowest) * t.clamp(0.0, 1.0)
        return [round(round(v / self.step) * self.step, 6) for v in values.tolist()]

    def to_dict(self) -> dict:
        return asdict(self)


class FidelityBlend:
    """The two weight sets of the parameters a fine-tune changed, to move a generator between them.

    faithful: the generator itself (its weights now, spectral norm folded); sharp: the state dict of
    its fine-tune, folded the same way. Only tensors that differ are kept (both on the generator's
    device, in its dtype and memory format). ``auto``: an ``AutoFidelity`` rule when each face gets
    its own fidelity, else None.
    """

    def __init__(self, faithful: nn.Module, sharp: dict, auto: AutoFidelity | None = None):
        current = faithful.state_dict()
        self.keys = [k for k, v in current.items()
                     if v.is_floating_point() and not torch.equal(v, sharp[k].to(v.device, v.dtype))]
        self.faithful = {k: current[k].clone() for k in self.keys}
        self.sharp = {k: sharp[k].to(current[k].device, current[k].dtype) for k in self.keys}
        self.auto = auto
        self.fidelity = 1.0

    @torch.no_grad()
    def apply(self, model: nn.Module, fidelity: float) -> None:
        """Set ``model``'s changed weights to ``fidelity`` in [0, 1] (1: faithful, 0: sharp)."""
        fidelity = float(fidelity)
        if not 0.0 <= fidelity <= 1.0:
            raise ValueError(f'fidelity must be within [0, 1], got {fidelity}')
        if fidelity == self.fidelity:
            return
        state = model.state_dict()
        for key in self.keys:
            state[key].copy_(torch.lerp(self.faithful[key], self.sharp[key], 1.0 - fidelity))
        self.fidelity = fidelity

    def to(self, device) -> FidelityBlend:
        """Move both weight sets to ``device`` (after the generator moved there)."""
        for store in (self.faithful, self.sharp):
            for key, value in store.items():
                store[key] = value.to(device)
        return self


def restore_batch(generator: nn.Module, images: torch.Tensor, boxes: torch.Tensor) -> tuple:
    """``generator(images, boxes)``, each face at its own fidelity when the generator carries an automatic
    ``fidelity_blend`` (faces of one value share a forward). Returns (output (B, 3, S, S), the B
    fidelities, or None for a generator without a blend)."""
    blend = getattr(generator, 'fidelity_blend', None)
    if blend is None:
        return generator(images, boxes), None
    if blend.auto is None:
        return generator(images, boxes), [blend.fidelity] * len(images)
    fidelities = blend.auto(images)
    output = None
    for value in sorted(set(fidelities)):
        index = torch.tensor([i for i, v in enumerate(fidelities) if v == value], device=images.device)
        blend.apply(generator, value)
        part = generator(images[index], boxes[index])
        output = part.new_empty((len(images),) + part.shape[1:]) if output is None else output
        output[index] = part
    return output, fidelities


__all__ = ['AutoFidelity', 'FidelityBlend', 'input_sharpness', 'restore_batch']
