"""Random camera-shake motion-blur kernels after Boracchi & Foi (2012).

A camera trajectory is a 2-D random walk whose velocity has a fixed speed and whose direction
is perturbed by Gaussian jitter, rare abrupt "shakes" and a pull back towards the origin; the
kernel (PSF) is the trajectory rasterised with bilinear splatting and normalised to sum 1.
All randomness comes from a ``numpy.random.Generator``, so the same seed gives the same kernels.

A kernel set is stored as one ``.npz`` file (``kernel_000``, ``kernel_001``, ... float32 arrays
of odd side, non-negative, sum 1) plus a ``meta`` JSON string recording the seed and settings.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class TrajectoryConfig:
    """Settings of the trajectory random walk (lengths in kernel pixels).

    num_steps: samples along the trajectory; max_length: maximum path length;
    anxiety_max: upper bound of the per-kernel "shakiness" in [0, 1]; the Gaussian jitter,
    big-shake and centripetal strengths are drawn per kernel in [0, *_max].
    """
    num_steps: int = 2000
    max_length: float = 60.0
    anxiety_max: float = 0.1
    gaussian_max: float = 10.0
    big_shake_freq_max: float = 0.2
    centripetal_max: float = 0.7


def random_trajectory(rng: np.random.Generator, config: TrajectoryConfig = TrajectoryConfig()) -> np.ndarray:
    """One camera trajectory: complex array (num_steps,) of positions, centred on its mean.

    The speed is constant (max_length / (num_steps - 1) per step); each step changes the
    velocity by anxiety * (Gaussian jitter - centripetal * position) plus, with a small
    probability, an abrupt reversal-like shake.
    """
    n = config.num_steps
    step = config.max_length / (n - 1)
    anxiety = config.anxiety_max * rng.random()
    gaussian = config.gaussian_max * rng.random()
    big_shake_freq = config.big_shake_freq_max * rng.random()
    centripetal = config.centripetal_max * rng.random()
    # Draw all random numbers up front (vectorised) and run the cheap recursion in Python.
    jitter = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    shake_draw = rng.random(n)
    shake_angle = rng.random(n) - 0.5
    phase = 2 * np.pi * rng.random()
    velocity = np.exp(1j * phase) * step
    positions = np.zeros(n, dtype=np.complex128)
    for t in range(n - 1):
        shake = 0j
        if shake_draw[t] < big_shake_freq * anxiety:
            shake = 2 * velocity * np.exp(1j * (np.pi + shake_angle[t]))
        velocity = velocity + shake + anxiety * (gaussian * jitter[t] - centripetal * positions[t]) * step
        speed = abs(velocity)
        velocity = velocity / speed * step if speed > 0 else np.exp(1j * phase) * step
        positions[t + 1] = positions[t] + velocity
    return positions - positions.mean()


def rasterize_trajectory(positions: np.ndarray, size: int) -> np.ndarray:
    """Splat a centred trajectory (complex positions, pixels) into a (size, size) PSF.

    Bilinear splatting; points outside the kernel are clipped to its border. Returns a float32
    array, non-negative, summing to 1.
    """
    centre = (size - 1) / 2.0
    x = np.clip(positions.real + centre, 0, size - 1)
    y = np.clip(positions.imag + centre, 0, size - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, size - 1), np.minimum(y0 + 1, size - 1)
    fx, fy = x - x0, y - y0
    psf = np.zeros((size, size), dtype=np.float64)
    np.add.at(psf, (y0, x0), (1 - fx) * (1 - fy))
    np.add.at(psf, (y0, x1), fx * (1 - fy))
    np.add.at(psf, (y1, x0), (1 - fx) * fy)
    np.add.at(psf, (y1, x1), fx * fy)
    return (psf / psf.sum()).astype(np.float32)


def random_motion_kernel(rng: np.random.Generator, size: int, config: TrajectoryConfig | None = None) -> np.ndarray:
    """A (size, size) float32 motion-blur kernel (non-negative, sum 1); size must be odd."""
    if size < 3 or size % 2 == 0:
        raise ValueError(f'motion kernel size must be odd and >= 3, got {size}')
    config = config or TrajectoryConfig(max_length=float(size))
    trajectory = random_trajectory(rng, config)
    # Scale the path so that it spans the kernel (its longest half-extent = (size - 1) / 2):
    # the kernel side then sets the blur length, as in the authors' 7-35 px kernels.
    centred = trajectory - (trajectory.real.max() + trajectory.real.min()) / 2 \
        - 1j * (trajectory.imag.max() + trajectory.imag.min()) / 2
    extent = max(np.abs(centred.real).max(), np.abs(centred.imag).max(), 1e-9)
    return rasterize_trajectory(centred * ((size - 1) / 2.0 / extent), size)


def generate_motion_kernels(count: int, seed: int, sizes=(7, 35)) -> list[np.ndarray]:
    """``count`` kernels with odd sides drawn uniformly in ``sizes`` (inclusive), from ``seed``."""
    lo, hi = int(sizes[0]), int(sizes[1])
    if lo < 3 or hi < lo:
        raise ValueError(f'kernel sizes must satisfy 3 <= min <= max, got {sizes}')
    odd_sizes = [s for s in range(lo, hi + 1) if s % 2 == 1]
    if not odd_sizes:
        raise ValueError(f'no odd kernel size in {sizes}')
    rng = np.random.default_rng(seed)
    kernels = []
    for _ in range(count):
        size = int(rng.choice(odd_sizes))
        kernels.append(random_motion_kernel(rng, size, TrajectoryConfig(max_length=float(size))))
    return kernels


def save_kernel_set(path, kernels: list[np.ndarray], **meta) -> None:
    """Write kernels to one compressed ``.npz`` (atomically) with a ``meta`` JSON record."""
    from dfdnet.utils.files import atomic_path

    arrays = {f'kernel_{i:03d}': np.asarray(k, dtype=np.float32) for i, k in enumerate(kernels)}
    arrays['meta'] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as fh:
            np.savez_compressed(fh, **arrays)


def load_kernel_set(path) -> list[np.ndarray]:
    """Motion kernels from a ``.npz`` kernel set or a folder of kernel files.

    A folder (e.g. the authors' 32 ``.mat`` kernels) is read with
    ``dfdnet.data.degradations.load_motion_kernels``. Every kernel is checked: 2-D, finite,
    non-negative and with a positive sum; it is returned normalised to sum 1 (float32).
    """
    path = Path(path)
    if path.is_dir():
        from dfdnet.data.degradations import load_motion_kernels

        named = load_motion_kernels(path)  # sorted by file name
        raw = list(named.values())
        names = [str(path / name) for name in named]
    elif path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = sorted(k for k in data.files if k.startswith('kernel_'))
                raw = [data[k] for k in keys]
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f'cannot read motion-kernel set {path}: {exc}') from exc
        names = [f'{path}:{k}' for k in keys]
    else:
        raise FileNotFoundError(f'motion kernels not found: {path} (expected a .npz kernel set or a folder)')
    if not raw:
        raise ValueError(f'no motion kernels in {path}')
    kernels = []
    for name, kernel in zip(names, raw):
        kernel = np.asarray(kernel, dtype=np.float64)
        if kernel.ndim != 2 or not np.all(np.isfinite(kernel)) or kernel.min() < 0 or kernel.sum() <= 0:
            raise ValueError(f'{name}: not a valid blur kernel (need a finite, non-negative 2-D array '
                             f'with positive sum; got shape {kernel.shape})')
        kernels.append((kernel / kernel.sum()).astype(np.float32))
    logger.info('loaded %d motion kernels from %s', len(kernels), path)
    return kernels


def kernel_set_meta(path) -> dict:
    """The ``meta`` record of a ``.npz`` kernel set (empty if absent)."""
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data['meta'])) if 'meta' in data.files else {}

