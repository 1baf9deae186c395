"""Colour correction of a restored face towards its input crop (``--color_fix``).

A restorer may shift a face's colour; these put the input's low-frequency colour back while
keeping the restored detail. Both take and return (S, S, 3) uint8 RGB.

* ``adain``: per-channel mean and standard deviation of the restored face matched to the input's
  (AdaIN on pixels);
* ``wavelet``: the restored face's detail (the image minus its low-pass) on the input's low-pass,
  the low-pass being ``WAVELET_LEVELS`` successive Gaussian blurs of doubling sigma (the à-trous
  scheme of the wavelet colour fix of StableSR/CodeFormer).
"""
from __future__ import annotations

import numpy as np

COLOR_FIXES = ('none', 'adain', 'wavelet')
WAVELET_LEVELS = 5


def _low_pass(image: np.ndarray, levels: int) -> np.ndarray:
    import cv2  # here: the command line reads COLOR_FIXES without loading OpenCV

    for level in range(levels):
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=float(2 ** level), borderType=cv2.BORDER_REFLECT)
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def adain_color_fix(restored: np.ndarray, reference: np.ndarray) -> np.ndarray:
    out, ref = restored.astype(np.float32), reference.astype(np.float32)
    mean, std = out.mean((0, 1)), out.std((0, 1)) + 1e-5
    return _to_uint8((out - mean) / std * ref.std((0, 1)) + ref.mean((0, 1)))


def wavelet_color_fix(restored: np.ndarray, reference: np.ndarray, levels: int = WAVELET_LEVELS) -> np.ndarray:
    out, ref = restored.astype(np.float32), reference.astype(np.float32)
    return _to_uint8(out - _low_pass(out, levels) + _low_pass(ref, levels))


def color_fix(restored: np.ndarray, reference: np.ndarray, method: str) -> np.ndarray:
    """``restored`` with its colour matched to ``reference`` by ``method`` ('none' returns it as is)."""
    if method == 'none':
        return restored
    if restored.shape != reference.shape:
        raise ValueError(f'colour fix needs faces of one shape, got {restored.shape} and {reference.shape}')
    if method == 'adain':
        return adain_color_fix(restored, reference)
    if method == 'wavelet':
        return wavelet_color_fix(restored, reference)
    raise ValueError(f'color fix must be one of {COLOR_FIXES}, got {method!r}')
