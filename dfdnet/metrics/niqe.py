"""NIQE, the no-reference Natural Image Quality Evaluator (Mittal et al. 2013), MATLAB-compatible.

The algorithm follows the authors' MATLAB code as also implemented by BasicSR: the Y channel
(BT.601, rounded to integers), 96×96 blocks, mean-subtracted contrast-normalised (MSCN) coefficients
with the 7×7 Gaussian window of the pristine model, 18 features per block (generalised Gaussian fit
of the MSCN values plus asymmetric generalised Gaussian fits of the 4 neighbour products) at the full
and at half resolution (MATLAB bicubic ``imresize`` with antialiasing), and the Mahalanobis-like
distance between the multivariate Gaussian of the image's features and the pristine model.
Lower is better. The pristine model is loaded from a user-given ``.npz`` with ``mu_pris_param``
(1, 36), ``cov_pris_param`` (36, 36) and ``gaussian_window`` (7, 7).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma

from dfdnet.metrics.psnr_ssim import rgb_to_y, to_float255

BLOCK_SIZE = 96
_NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
_ALPHA_GRID = np.arange(0.2, 10.001, 0.001)
_R_GRID = gamma(2 / _ALPHA_GRID) ** 2 / (gamma(1 / _ALPHA_GRID) * gamma(3 / _ALPHA_GRID))


@dataclass(frozen=True)
class NiqePristineModel:
    """Multivariate Gaussian of natural-image features: mean (36,), covariance (36, 36), window (7, 7)."""
    mu: np.ndarray
    cov: np.ndarray
    gaussian_window: np.ndarray


def load_pristine_model(path) -> NiqePristineModel:
    """Read the pristine parameters (.npz with mu_pris_param, cov_pris_param, gaussian_window)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'NIQE pristine-parameter file not found: {path}')
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in data.files}
    except Exception as exc:
        raise ValueError(f'{path}: cannot read the NIQE parameters ({type(exc).__name__}: {exc})') from exc
    missing = {'mu_pris_param', 'cov_pris_param', 'gaussian_window'} - set(arrays)
    if missing:
        raise ValueError(f'{path}: missing arrays {sorted(missing)} (found {sorted(arrays)})')
    mu = arrays['mu_pris_param'].reshape(-1)
    cov = arrays['cov_pris_param']
    window = arrays['gaussian_window']
    if mu.shape != (36,) or cov.shape != (36, 36) or window.ndim != 2:
        raise ValueError(f'{path}: expected mu (36,), cov (36, 36), a 2-D window; got '
                         f'{mu.shape}, {cov.shape}, {window.shape}')
    return NiqePristineModel(mu=mu, cov=cov, gaussian_window=window)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's bicubic)."""
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _resize_weights(in_length: int, out_length: int, scale: float):
    """MATLAB imresize contributions along one axis: (indices, weights), each (out_length, P)."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    out_index = np.arange(1, out_length + 1, dtype=np.float64)
    centre = out_index / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(centre - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = centre[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)
    indices, weights = indices[:, keep], weights[:, keep]
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    return indices, weights


def imresize_matlab(img: np.ndarray, scale: float) -> np.ndarray:
    """Bicubic resize of a 2-D float image as MATLAB ``imresize(img, scale)`` (antialiasing on)."""
    out = np.asarray(img, dtype=np.float64)
    for axis in (0, 1):
        in_length = out.shape[axis]
        indices, weights = _resize_weights(in_length, int(math.ceil(in_length * scale)), scale)
        moved = np.moveaxis(out, axis, 0)
        resized = np.einsum('op,op...->o...', weights, moved[indices])
        out = np.moveaxis(resized, 0, axis)
    return out


def _aggd_fit(values: np.ndarray):
    """Asymmetric generalised Gaussian fit by moment matching: (alpha, beta_left, beta_right)."""
    values = values.ravel()
    left, right = values[values < 0], values[values > 0]
    left_std = math.sqrt(np.mean(left ** 2)) if left.size else 0.0
    right_std = math.sqrt(np.mean(right ** 2)) if right.size else 0.0
    mean_sq = np.mean(values ** 2)
    if right_std == 0 or mean_sq == 0:
        return float('nan'), float('nan'), float('nan')
    gamma_hat = left_std / right_std
    r_hat = np.mean(np.abs(values)) ** 2 / mean_sq
    r_hat_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
    alpha = float(_ALPHA_GRID[np.argmin((_R_GRID - r_hat_norm) ** 2)])
    factor = math.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * factor, right_std * factor


def _block_features(block: np.ndarray) -> list[float]:
    """18 NIQE features of one block of MSCN coefficients."""
    alpha, beta_left, beta_right = _aggd_fit(block)
    features = [alpha, (beta_left + beta_right) / 2]
    for shift in _NEIGHBOUR_SHIFTS:
        product = block * np.roll(block, shift, axis=(0, 1))
        alpha, beta_left, beta_right = _aggd_fit(product)
        mean = (beta_right - beta_left) * gamma(2 / alpha) / gamma(1 / alpha)
        features.extend([alpha, mean, beta_left, beta_right])
    return features


def niqe_of_luma(luma: np.ndarray, model: NiqePristineModel) -> float:
    """NIQE of a 2-D luma image on the 0-255 scale (at least 96×96 pixels after cropping to blocks)."""
    rows, cols = luma.shape[0] // BLOCK_SIZE, luma.shape[1] // BLOCK_SIZE
    if rows == 0 or cols == 0:
        raise ValueError(f'NIQE needs an image of at least {BLOCK_SIZE}×{BLOCK_SIZE} pixels, got {luma.shape}')
    img = np.asarray(luma, dtype=np.float64)[:rows * BLOCK_SIZE, :cols * BLOCK_SIZE]
    per_scale = []
    for scale in (1, 2):
        mu = convolve(img, model.gaussian_window, mode='nearest')
        sigma = np.sqrt(np.abs(convolve(img ** 2, model.gaussian_window, mode='nearest') - mu ** 2))
        mscn = (img - mu) / (sigma + 1)
        size = BLOCK_SIZE // scale
        features = [_block_features(mscn[r * size:(r + 1) * size, c * size:(c + 1) * size])
                    for c in range(cols) for r in range(rows)]
        per_scale.append(np.asarray(features))
        if scale == 1:
            img = imresize_matlab(img / 255.0, 0.5) * 255.0
    features = np.concatenate(per_scale, axis=1)
    mu_image = np.nanmean(features, axis=0)
    finite = features[~np.isnan(features).any(axis=1)]
    if finite.shape[0] < 2:
        raise ValueError('NIQE: too few valid blocks (flat image?) to estimate a covariance')
    cov_image = np.cov(finite, rowvar=False)
    diff = model.mu - mu_image
    inv_cov = np.linalg.pinv((model.cov + cov_image) / 2)
    return float(np.sqrt(diff @ inv_cov @ diff))


def calculate_niqe(img, model: NiqePristineModel, crop_border: int = 0, channel_order: str = 'rgb') -> float:
    """NIQE of an (H, W, 3) colour or (H, W) grey image, uint8 or float in [0, 1]; lower is better."""
    img255 = to_float255(img, 'image')
    if img255.ndim == 3 and img255.shape[2] == 3:
        luma = rgb_to_y(img255, channel_order)
    elif img255.ndim == 2 or (img255.ndim == 3 and img255.shape[2] == 1):
        luma = img255.reshape(img255.shape[:2])
    else:
        raise ValueError(f'NIQE expects an (H, W, 3) or (H, W) image, got shape {img255.shape}')
    if crop_border:
        luma = luma[crop_border:-crop_border, crop_border:-crop_border]
    return niqe_of_luma(np.round(luma), model)
