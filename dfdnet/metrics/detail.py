"""Fine detail inside the component boxes: the energy of a difference of Gaussians (σ 1 minus σ 2)
of the luma, relative to the ground truth's. About 0.1-0.2 for blurry results, 1 for the truth,
well above 1.5 for over-sharpened or noisy ones.
"""
from __future__ import annotations

import cv2
import numpy as np

from dfdnet.metrics.psnr_ssim import rgb_to_y

DOG_SIGMAS = (1.0, 2.0)


def detail_energy(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared DoG (σ 1 − σ 2, luma on the 0-255 scale) over the pixels of ``mask`` (H, W) of
    an (H, W, 3) uint8 RGB image (or (H, W) grey); the blurs see the whole image, so box edges are not
    edges of the signal. ValueError for an empty mask."""
    if not mask.any():
        raise ValueError('detail_energy: the mask is empty')
    luma = rgb_to_y(image) if image.ndim == 3 else image.astype(np.float64)
    luma = luma.astype(np.float32)
    dog = cv2.GaussianBlur(luma, (0, 0), DOG_SIGMAS[0]) - cv2.GaussianBlur(luma, (0, 0), DOG_SIGMAS[1])
    return float(np.mean(dog[mask].astype(np.float64) ** 2))


def detail_ratio(out_img: np.ndarray, gt_img: np.ndarray, mask: np.ndarray) -> float:
    """``detail_energy`` of the output over the ground truth's inside ``mask``; NaN if the truth has none."""
    reference = detail_energy(gt_img, mask)
    return detail_energy(out_img, mask) / reference if reference > 0 else float('nan')
