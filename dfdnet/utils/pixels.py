"""The project's pixel conventions, converted here and nowhere else.

Three kinds of picture: uint8 RGB images (files, the restore pipeline, the face tools); float32
images in [0, 1] (the degradations, ``dfdnet.data``); and the network's float32 tensors in
[-1, 1], channels first. ``to_float01`` / ``to_uint8`` go between the first two, ``to_network`` /
``from_network`` between the pictures and the network.
"""
from __future__ import annotations

import numpy as np


def to_float01(image: np.ndarray) -> np.ndarray:
    """uint8 image -> float32 in [0, 1] (``x / 255``), same shape."""
    return np.asarray(image).astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, same shape: ``x * 255`` in float32, rounded to the nearest
    level and clipped to [0, 255] (values outside [0, 1] saturate)."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def to_network(images: np.ndarray, device=None):
    """(..., H, W, 3) RGB -> (..., 3, H, W) float32 torch tensor in [-1, 1] (on ``device``).

    uint8 images become ``x / 127.5 - 1`` (moved to ``device`` while still uint8, and returned as a
    channels-first view of channels-last memory, as the restore pipeline has always fed the
    network); float images in [0, 1] become ``x * 2 - 1`` in contiguous memory (the training
    data's convention). The two agree within one float32 rounding step.
    """
    import torch

    array = np.asarray(images)
    if array.dtype == np.uint8:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if device is not None:
            tensor = tensor.to(device)
        return tensor.movedim(-1, -3).float().div_(127.5).sub_(1.0)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f'to_network: expected uint8 or float images, got {array.dtype}')
    tensor = torch.from_numpy(np.ascontiguousarray(np.moveaxis(array, -1, -3))).float() * 2.0 - 1.0
    return tensor.to(device) if device is not None else tensor


def from_network(tensor) -> np.ndarray:
    """(..., 3, H, W) tensor in [-1, 1] -> (..., H, W, 3) uint8 numpy RGB: ``(y + 1) / 2`` in
    float32, then ``to_uint8`` (rounded and clipped, so values outside [-1, 1] saturate). The
    released code truncates instead, which darkens every pixel by half a level on average."""
    return to_uint8(((tensor.detach().float().cpu() + 1.0) / 2.0).movedim(-3, -1).numpy())
