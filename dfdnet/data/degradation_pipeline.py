"""Random degradation presets built on ``dfdnet.data.degradations``.

``paper`` is Eq. 11 of the paper: I_d = JPEG_q((I_h ⊗ k)↓r + n_σ), then resized back, with
k a Gaussian (ρ ∈ {1:0.1:5}) or a motion kernel, r ∈ {1:0.1:8}, σ ∈ {0:1:15}, q ∈ {40:1:80}.
``released`` is the variant in the authors' released code (reference §1): colour jitter on the
HQ face, blur with p 0.9 (65 % Gaussian, odd kernel 3-35, σ 0.3-2; 35 % motion kernel),
bicubic downsample with p 0.95 by 2-10, noise with p 0.9 (σ 1-10), JPEG with p 0.6 (q 40-80).

Every stage's probability and range is a field of ``DegradationConfig``; all randomness comes
from the ``numpy.random.Generator`` passed to ``DegradationPipeline.__call__``, so a sample is
reproducible from its seed. Images are float32 (H, W, 3) RGB in [0, 1].
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfdnet.data import degradations as deg
from dfdnet.data.motion_kernels import load_kernel_set

SHIPPED_MOTION_KERNELS = Path(__file__).with_name('motion_kernels_32.npz')


@dataclass
class DegradationConfig:
    """Probabilities and ranges of each stage. Ranges are inclusive ``(low, high)``; a ``*_step``
    > 0 draws from the grid low, low + step, ..., high (the paper's notation {a:step:b}); 0 draws
    uniformly from the continuous interval.

    color_jitter_prob / color_jitter: chance and strength (factor in [1 - s, 1 + s]) of a
        brightness, contrast and saturation jitter applied to the HQ face (changes the target too).
    blur_prob, motion_prob: chance of blurring, and of using a motion kernel when blurring.
    gaussian_sigma (pixels), gaussian_kernel_size: odd side range, or None for 2·ceil(3σ)+1.
    downsample_prob, scale: chance and factor r of the bicubic downsampling (side / r).
    noise_prob, noise_sigma: chance and std of additive Gaussian noise on the 0-255 scale.
    jpeg_prob, jpeg_quality: chance and quality of the JPEG round trip.
    motion_kernels: a ``.npz`` kernel set or a folder of kernel files (e.g. the authors' 32 .mat
        kernels); None uses the 32 generated kernels shipped with the project.
    interpolation: of the downsampling and of the final resize back to the HQ size.
    resize_interpolations: if set, each of those two resizes draws its kernel from this list
        instead (a face pipeline upscales with its own warp, often bilinear; a photo was made
        smaller by whatever its maker used), so that a restorer does not learn one kernel.
    up_interpolation: if set, the resize back to the HQ size always uses this kernel (the one the
        restore pipeline brings faces to the model's size with: bicubic for this project's models,
        ``dfdnet.pipeline.photo.resolve_resampling``) and only the downscale draws from
        ``resize_interpolations``.
    clean_prob, clean_scale: chance that a face is only resized down by a factor drawn in
        ``clean_scale`` and back (no blur, noise or JPEG): the clean and mild inputs that teach a
        restorer to do no harm. 0 (the presets) keeps Eq. 11 alone.
    """
    color_jitter_prob: float = 0.0
    color_jitter: float = 0.3
    blur_prob: float = 1.0
    motion_prob: float = 0.5
    gaussian_sigma: tuple = (1.0, 5.0)
    gaussian_sigma_step: float = 0.1
    gaussian_kernel_size: tuple | None = None
    downsample_prob: float = 1.0
    scale: tuple = (1.0, 8.0)
    scale_step: float = 0.1
    noise_prob: float = 1.0
    noise_sigma: tuple = (0.0, 15.0)
    noise_sigma_step: float = 1.0
    jpeg_prob: float = 1.0
    jpeg_quality: tuple = (40, 80)
    motion_kernels: str | None = None
    interpolation: str = 'bicubic'
    resize_interpolations: tuple | None = None
    up_interpolation: str | None = None
    clean_prob: float = 0.0
    clean_scale: tuple = (1.0, 2.0)

    def __post_init__(self):
        for name in ('clean_prob', 'color_jitter_prob', 'blur_prob', 'motion_prob', 'downsample_prob', 'noise_prob', 'jpeg_prob'):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'degradation.{name} must be a probability in [0, 1], got {value}')
            setattr(self, name, value)
        for name, minimum in (('clean_scale', 1.0), ('gaussian_sigma', 1e-3), ('scale', 1.0), ('noise_sigma', 0.0), ('jpeg_quality', 0)):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or value[0] > value[1] or value[0] < minimum:
                raise ValueError(f'degradation.{name} must be [low, high] with {minimum} <= low <= high, got {value}')
            setattr(self, name, value)
        if self.jpeg_quality[1] > 100:
            raise ValueError(f'degradation.jpeg_quality must be within [0, 100], got {self.jpeg_quality}')
        if self.gaussian_kernel_size is not None:
            lo, hi = (int(v) for v in self.gaussian_kernel_size)
            if lo < 1 or hi < lo or not any(s % 2 for s in range(lo, hi + 1)):
                raise ValueError(f'degradation.gaussian_kernel_size must be [low, high] containing an odd size, '
                                 f'got {self.gaussian_kernel_size}')
            self.gaussian_kernel_size = (lo, hi)
        if self.interpolation not in deg.INTERPOLATIONS:
            raise ValueError(f'degradation.interpolation must be one of {sorted(deg.INTERPOLATIONS)}, '
                             f'got {self.interpolation!r}')
        if self.up_interpolation is not None and self.up_interpolation not in deg.INTERPOLATIONS:
            raise ValueError(f'degradation.up_interpolation must be one of {sorted(deg.INTERPOLATIONS)} or null, '
                             f'got {self.up_interpolation!r}')
        if self.resize_interpolations is not None:
            self.resize_interpolations = tuple(str(v) for v in self.resize_interpolations)
            unknown = [v for v in self.resize_interpolations if v not in deg.INTERPOLATIONS]
            if unknown or not self.resize_interpolations:
                raise ValueError(f'degradation.resize_interpolations must be a non-empty list of '
                                 f'{sorted(deg.INTERPOLATIONS)}, got {list(self.resize_interpolations)}')
        if not 0.0 <= float(self.color_jitter) < 1.0:
            raise ValueError(f'degradation.color_jitter must be in [0, 1), got {self.color_jitter}')

    @classmethod
    def from_dict(cls, values: dict | None) -> 'DegradationConfig':
        """A preset (key ``preset``: 'paper' or 'released', default 'paper') with fields overridden."""
        values = dict(values or {})
        preset = values.pop('preset', 'paper')
        if preset not in PRESETS:
            raise ValueError(f'unknown degradation preset {preset!r}; choose one of {sorted(PRESETS)}')
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f'unknown degradation option(s) {unknown}; valid: {sorted(names)}')
        return dataclasses.replace(PRESETS[preset], **values)


PRESETS = {
    'paper': DegradationConfig(),
    'released': DegradationConfig(
        color_jitter_prob=1.0, color_jitter=0.3,
        blur_prob=0.9, motion_prob=0.35, gaussian_sigma=(0.3, 2.0), gaussian_sigma_step=0.0,
        gaussian_kernel_size=(3, 35),
        downsample_prob=0.95, scale=(2.0, 10.0), scale_step=0.0,
        noise_prob=0.9, noise_sigma=(1.0, 10.0), noise_sigma_step=0.0,
        jpeg_prob=0.6, jpeg_quality=(40, 80)),
}


def draw(rng: np.random.Generator, bounds, step: float = 0.0) -> float:
    """A value in [low, high]: on the grid low + k·step when step > 0, else uniform."""
    lo, hi = float(bounds[0]), float(bounds[1])
    if step > 0:
        count = int(math.floor((hi - lo) / step + 1e-9))
        return round(lo + step * int(rng.integers(0, count + 1)), 10)
    return float(rng.uniform(lo, hi)) if hi > lo else lo


def color_jitter(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation factors drawn in [1 - s, 1 + s], applied in that order."""
    factors = rng.uniform(1.0 - strength, 1.0 + strength, size=3)
    out = img * factors[0]
    gray = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = (out - gray.mean()) * factors[1] + gray.mean()
    gray = (out @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    out = (out - gray) * factors[2] + gray
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass
class Degraded:
    """A degradation result: target ``gt`` and input ``lq`` (both (H, W, 3) float32 in [0, 1]), the
    parameters of the stages that ran (for logs and manifests), and ``small``: the degraded image
    at its own resolution, before ``lq`` resized it back (what a test set stores as the input)."""
    gt: np.ndarray
    lq: np.ndarray
    params: dict = field(default_factory=dict)
    small: np.ndarray | None = None


class DegradationPipeline:
    """Callable ``(hq, rng) -> Degraded``; ``lq`` has the size of ``hq``."""

    def __init__(self, config: DegradationConfig):
        self.config = config
        kernels_path = config.motion_kernels or SHIPPED_MOTION_KERNELS
        self.motion_kernels = load_kernel_set(kernels_path) if config.blur_prob > 0 and config.motion_prob > 0 else []

    def __call__(self, hq: np.ndarray, rng: np.random.Generator) -> Degraded:
        cfg = self.config
        params = {}
        gt = np.asarray(hq, dtype=np.float32)
        # Every stage draws its decision and parameters whether it runs or not, so that one
        # stage's probability does not shift the random numbers of the next.
        jitter_on = rng.random() < cfg.color_jitter_prob
        if jitter_on:
            gt = color_jitter(gt, cfg.color_jitter, rng)
            params['color_jitter'] = True
        img = gt
        # Drawn only when used, so that the presets' random streams stay as they were.
        if cfg.clean_prob > 0 and rng.random() < cfg.clean_prob:
            scale = draw(rng, cfg.clean_scale)
            params['clean_scale'] = scale
            if scale > 1.0:
                img = self._downscale(img, scale, rng, params)
            return self._finish(gt, img, params, rng)
        blur_on, motion_on = rng.random() < cfg.blur_prob, rng.random() < cfg.motion_prob
        sigma = draw(rng, cfg.gaussian_sigma, cfg.gaussian_sigma_step)
        ksize = None
        if cfg.gaussian_kernel_size is not None:
            odd_sizes = [s for s in range(cfg.gaussian_kernel_size[0], cfg.gaussian_kernel_size[1] + 1) if s % 2]
            ksize = odd_sizes[int(rng.integers(len(odd_sizes)))]
        kernel_index = int(rng.integers(len(self.motion_kernels))) if self.motion_kernels else -1
        if blur_on and motion_on and self.motion_kernels:
            img = deg.filter_kernel(img, self.motion_kernels[kernel_index])
            params['motion_kernel'] = kernel_index
        elif blur_on:
            img = deg.gaussian_blur(img, sigma, ksize)
            params['gaussian_sigma'] = sigma
        down_on = rng.random() < cfg.downsample_prob
        scale = draw(rng, cfg.scale, cfg.scale_step)
        if down_on and scale > 1.0:
            img = self._downscale(img, scale, rng, params)
            params['scale'] = scale
        noise_on = rng.random() < cfg.noise_prob
        noise = draw(rng, cfg.noise_sigma, cfg.noise_sigma_step)
        noise_seed = int(rng.integers(2**63))
        if noise_on and noise > 0:
            img = deg.add_gaussian_noise(img, noise, np.random.default_rng(noise_seed))
            params['noise_sigma'] = noise
        jpeg_on = rng.random() < cfg.jpeg_prob
        quality = int(round(draw(rng, cfg.jpeg_quality, 1.0)))
        if jpeg_on:
            img = deg.jpeg_compress(img, quality)
            params['jpeg_quality'] = quality
        return self._finish(gt, img, params, rng)

    def _interpolation(self, rng: np.random.Generator, params: dict, key: str) -> str:
        """``interpolation``, or a draw from ``resize_interpolations`` (drawn only when that is set,
        so that other configurations keep their random streams)."""
        choices = self.config.resize_interpolations
        if key == 'up_interpolation' and self.config.up_interpolation is not None:
            params[key] = self.config.up_interpolation
            return params[key]
        if not choices:
            return self.config.interpolation
        params[key] = choices[int(rng.integers(len(choices)))]
        return params[key]

    def _downscale(self, img: np.ndarray, scale: float, rng: np.random.Generator, params: dict) -> np.ndarray:
        height, width = img.shape[:2]
        return deg.resize(img, size=(max(1, round(height / scale)), max(1, round(width / scale))),
                          interpolation=self._interpolation(rng, params, 'down_interpolation'))

    def _finish(self, gt: np.ndarray, img: np.ndarray, params: dict, rng: np.random.Generator) -> Degraded:
        """The input resized back to the HQ size."""
        small = img
        if img.shape[:2] != gt.shape[:2]:
            img = deg.resize(img, size=gt.shape[:2],
                             interpolation=self._interpolation(rng, params, 'up_interpolation'))
        return Degraded(gt=gt, lq=np.ascontiguousarray(img, dtype=np.float32), params=params, small=small)
