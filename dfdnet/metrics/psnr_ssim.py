"""PSNR and SSIM with the standard definitions, on RGB or on the Y channel (BT.601, as BasicSR/MATLAB).

Inputs are (H, W, 3) or (H, W) images, either uint8 (0-255) or float in [0, 1]; both images must
have the same shape. Everything is computed in float64 on the 0-255 scale, so a uint8 image and
the same image as float/255 give the same value.
"""
from __future__ import annotations

import cv2
import numpy as np

# ITU-R BT.601 luma for studio-range YCbCr, as MATLAB rgb2ycbcr: Y in [16, 235] for RGB in [0, 1].
_Y_WEIGHTS_RGB = np.array([65.481, 128.553, 24.966])
_Y_OFFSET = 16.0


def to_float255(img, name: str = 'image') -> np.ndarray:
    """uint8 (0-255) or float ([0, 1]) image -> float64 on the 0-255 scale."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if np.issubdtype(img.dtype, np.floating):
        if img.size and (np.nanmin(img) < -1e-3 or np.nanmax(img) > 1.0 + 1e-3):
            raise ValueError(f'{name}: float images must be in [0, 1] (got values in '
                             f'[{np.nanmin(img):.3g}, {np.nanmax(img):.3g}]); pass uint8 for 0-255 data')
        return img.astype(np.float64) * 255.0
    raise TypeError(f'{name}: expected uint8 or float image, got dtype {img.dtype}')


def rgb_to_y(img255: np.ndarray, channel_order: str = 'rgb') -> np.ndarray:
    """Y (luma) of an (H, W, 3) image on the 0-255 scale -> (H, W) float64 in [16, 235]."""
    if img255.ndim != 3 or img255.shape[2] != 3:
        raise ValueError(f'Y channel needs an (H, W, 3) colour image, got shape {img255.shape}')
    if channel_order not in ('rgb', 'bgr'):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    weights = _Y_WEIGHTS_RGB if channel_order == 'rgb' else _Y_WEIGHTS_RGB[::-1]
    return img255 @ weights / 255.0 + _Y_OFFSET


def _prepare(img1, img2, crop_border: int, test_y_channel: bool, channel_order: str):
    """Validate, convert to float64 0-255, optionally take Y, crop; returns (H, W, C) arrays."""
    a = to_float255(img1, 'img1')
    b = to_float255(img2, 'img2')
    if a.shape != b.shape:
        raise ValueError(f'images have different shapes: {a.shape} vs {b.shape}')
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise ValueError(f'expected (H, W), (H, W, 1) or (H, W, 3) images, got shape {a.shape}')
    if test_y_channel and a.ndim == 3 and a.shape[2] == 3:
        a, b = rgb_to_y(a, channel_order), rgb_to_y(b, channel_order)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if crop_border < 0:
        raise ValueError(f'crop_border must be >= 0, got {crop_border}')
    if crop_border:
        if min(a.shape[:2]) <= 2 * crop_border:
            raise ValueError(f'crop_border {crop_border} leaves nothing of a {a.shape[:2]} image')
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def calculate_psnr(img1, img2, crop_border: int = 0, test_y_channel: bool = False,
                   channel_order: str = 'rgb') -> float:
    """Peak signal-to-noise ratio in dB, 10·log10(255² / MSE); ``inf`` for identical images.

    The MSE is taken over all pixels and channels (after cropping ``crop_border`` pixels from each
    side and, with ``test_y_channel``, converting to BT.601 Y).
    """
    a, b = _prepare(img1, img2, crop_border, test_y_channel, channel_order)
    return _psnr_of_mse(float(np.mean((a - b) ** 2)))


def _psnr_of_mse(mse: float) -> float:
    return float('inf') if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def component_mask(boxes, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the union of a face's component boxes (P, 4) ``[x1, y1, x2, y2]`` in pixels,
    the regions the dictionaries act on (clipped to the image)."""
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.int64).reshape(-1, 4):
        mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = True
    return mask


def masked_psnr(out_img: np.ndarray, gt_img: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB over the pixels of ``mask`` (H, W), all channels, of (H, W, C) uint8 images."""
    diff = out_img[mask].astype(np.float64) - gt_img[mask].astype(np.float64)
    if diff.size == 0:
        raise ValueError('masked_psnr: the mask is empty')
    return _psnr_of_mse(float(np.mean(diff ** 2)))


def _ssim_single_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) of two 2-D float64 images on the 0-255 scale.

    11×11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances, mean over the
    'valid' positions (windows fully inside the image).
    """
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    kernel_1d = cv2.getGaussianKernel(11, 1.5, cv2.CV_64F)
    window = kernel_1d @ kernel_1d.T
    if min(a.shape) < 11:
        raise ValueError(f'SSIM needs images of at least 11×11 pixels, got {a.shape}')

    def local_mean(x):
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a ** 2
    var_b = local_mean(b * b) - mu_b ** 2
    cov_ab = local_mean(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def calculate_ssim(img1, img2, crop_border: int = 0, test_y_channel: bool = False,
                   channel_order: str = 'rgb') -> float:
    """Structural similarity, averaged over channels (1.0 for identical images).

    Standard Gaussian-window SSIM (window 11, sigma 1.5, K = 0.01/0.03, data range 255), equal to
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)`` per channel.
    """
    a, b = _prepare(img1, img2, crop_border, test_y_channel, channel_order)
    return float(np.mean([_ssim_single_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))
