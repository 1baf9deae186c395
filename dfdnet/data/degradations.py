"""Deterministic degradation primitives for synthetic low-quality faces.

Every function takes a float32 image of shape (H, W, 3), RGB, values in [0, 1] and returns a new
float32 image (the input is never modified). All randomness is explicit: the only random
primitive, :func:`add_gaussian_noise`, takes a ``numpy.random.Generator``. The random degradation
presets (paper Eq. 11, the released variant) are built on top of these functions elsewhere.

Borders: filtering uses OpenCV's ``BORDER_REFLECT_101`` (``dcb|abcd|cba``), OpenCV's default.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np

from dfdnet.utils.image_io import INTERPOLATIONS
from dfdnet.utils.pixels import to_float01, to_uint8

logger = logging.getLogger(__name__)

KERNEL_SUFFIXES = ('.mat', '.npy', '.png')
_BORDER = cv2.BORDER_REFLECT_101


def _check_image(img, where: str) -> np.ndarray:
    """Validate an (H, W, 3) float image in [0, 1]; return it as float32 (no copy when possible)."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f'{where}: expected a numpy array, got {type(img).__name__}')
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'{where}: expected an (H, W, 3) image, got shape {img.shape}')
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f'{where}: expected a float image in [0, 1], got dtype {img.dtype} '
                        '(convert uint8 with dfdnet.utils.pixels.to_float01)')
    return img.astype(np.float32, copy=False)


def gaussian_kernel(sigma: float, kernel_size: int | None = None) -> np.ndarray:
    """Isotropic 2-D Gaussian kernel, float64 (k, k), sum 1.

    ``kernel_size`` defaults to ``2 * ceil(3 * sigma) + 1`` and must be odd and positive.
    """
    if not sigma > 0:
        raise ValueError(f'gaussian_kernel: sigma must be > 0, got {sigma}')
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3 * sigma) + 1
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'gaussian_kernel: kernel_size must be a positive odd integer, got {kernel_size}')
    kernel_1d = cv2.getGaussianKernel(int(kernel_size), float(sigma), cv2.CV_64F)
    return kernel_1d @ kernel_1d.T


def gaussian_blur(img: np.ndarray, sigma: float, kernel_size: int | None = None) -> np.ndarray:
    """Blur with an isotropic Gaussian of standard deviation ``sigma`` pixels.

    ``sigma <= 0`` returns an unchanged copy. ``kernel_size`` defaults to ``2 * ceil(3 * sigma) + 1``.
    """
    img = _check_image(img, 'gaussian_blur')
    if sigma <= 0:
        return img.copy()
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3 * sigma) + 1
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'gaussian_blur: kernel_size must be a positive odd integer, got {kernel_size}')
    size = int(kernel_size)
    return cv2.GaussianBlur(img, (size, size), sigmaX=float(sigma), sigmaY=float(sigma), borderType=_BORDER)


def filter_kernel(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel with a 2-D ``kernel`` (e.g. a motion-blur kernel), I ⊗ k.

    A true convolution (the kernel is flipped before ``cv2.filter2D``, which correlates). The kernel
    is used as given: normalise it to sum 1 to keep the brightness.
    """
    img = _check_image(img, 'filter_kernel')
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f'filter_kernel: expected a non-empty 2-D kernel, got shape {kernel.shape}')
    if not np.all(np.isfinite(kernel)):
        raise ValueError('filter_kernel: the kernel has non-finite values')
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    return cv2.filter2D(img, -1, flipped, borderType=_BORDER)


def resize(img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None,
           interpolation: str = 'bicubic', clip: bool = True) -> np.ndarray:
    """Resize by a ``scale`` factor (new side = round(side * scale)) or to ``size = (height, width)``.

    Exactly one of ``scale`` / ``size`` must be given. ``interpolation`` is one of
    nearest, bilinear, bicubic (default), area, lanczos. Bicubic and Lanczos overshoot; with
    ``clip`` (default) the result is clipped back to [0, 1].
    """
    img = _check_image(img, 'resize')
    if (scale is None) == (size is None):
        raise ValueError('resize: give exactly one of scale or size')
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'resize: unknown interpolation {interpolation!r}, expected one of {sorted(INTERPOLATIONS)}')
    if scale is not None:
        if not scale > 0:
            raise ValueError(f'resize: scale must be > 0, got {scale}')
        height = max(1, int(round(img.shape[0] * scale)))
        width = max(1, int(round(img.shape[1] * scale)))
    else:
        height, width = (int(v) for v in size)
        if height < 1 or width < 1:
            raise ValueError(f'resize: size must be positive (height, width), got {size}')
    if (height, width) == img.shape[:2]:
        return img.copy()
    out = cv2.resize(img, (width, height), interpolation=INTERPOLATIONS[interpolation])
    return np.clip(out, 0.0, 1.0) if clip else out


def add_gaussian_noise(img: np.ndarray, sigma_255: float, rng: np.random.Generator,
                       clip: bool = True) -> np.ndarray:
    """Add i.i.d. Gaussian noise of standard deviation ``sigma_255`` on the 0-255 scale.

    The noise is drawn independently per pixel and channel from ``rng`` (a ``numpy.random.Generator``).
    ``sigma_255 == 0`` returns a copy and draws nothing. The result is clipped to [0, 1] by default.
    """
    img = _check_image(img, 'add_gaussian_noise')
    if not isinstance(rng, np.random.Generator):
        raise TypeError('add_gaussian_noise: rng must be a numpy.random.Generator '
                        '(e.g. numpy.random.default_rng(seed))')
    if sigma_255 < 0:
        raise ValueError(f'add_gaussian_noise: sigma_255 must be >= 0, got {sigma_255}')
    if sigma_255 == 0:
        return img.copy()
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma_255 / 255.0)
    out = img + noise
    return np.clip(out, 0.0, 1.0) if clip else out


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip with OpenCV at ``quality`` (0-100; integer, rounded if not)."""
    img = _check_image(img, 'jpeg_compress')
    quality = int(round(quality))
    if not 0 <= quality <= 100:
        raise ValueError(f'jpeg_compress: quality must be in [0, 100], got {quality}')
    bgr = cv2.cvtColor(to_uint8(img), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode('.jpg', bgr, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise RuntimeError('jpeg_compress: OpenCV failed to encode the image')
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    return to_float01(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))


def load_kernel(path) -> np.ndarray:
    """Read one blur kernel (.mat variable ``kernel``, .npy 2-D array, or grey .png) normalised to sum 1.

    Returns float64 (k_h, k_w). Raises ``ValueError`` naming the file when it is unreadable, not 2-D,
    negative or sums to zero.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == '.mat':
            from scipy.io import loadmat

            content = loadmat(str(path))
            if 'kernel' not in content:
                names = sorted(k for k in content if not k.startswith('__'))
                raise ValueError(f'{path}: no variable "kernel" in the .mat file (found {names})')
            kernel = np.asarray(content['kernel'], dtype=np.float64)
        elif suffix == '.npy':
            kernel = np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
        elif suffix == '.png':
            raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
            if raw is None:
                raise ValueError(f'{path}: OpenCV could not read the image')
            kernel = raw.astype(np.float64)
        else:
            raise ValueError(f'{path}: unsupported kernel file type {suffix!r} (expected {KERNEL_SUFFIXES})')
    except ValueError:
        raise
    except Exception as exc:  # corrupt file: scipy/numpy raise many different types
        raise ValueError(f'{path}: could not read the kernel ({type(exc).__name__}: {exc})') from exc
    kernel = np.squeeze(kernel)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f'{path}: a kernel must be a 2-D array, got shape {kernel.shape}')
    if not np.all(np.isfinite(kernel)) or np.any(kernel < 0):
        raise ValueError(f'{path}: the kernel has negative or non-finite values')
    total = kernel.sum()
    if total <= 0:
        raise ValueError(f'{path}: the kernel sums to {total}, cannot normalise')
    return kernel / total


def load_motion_kernels(folder) -> dict[str, np.ndarray]:
    """All kernels in ``folder`` (.mat / .npy / .png), name (file stem) -> float64 kernel with sum 1.

    Sorted by file name so that ``list(result.values())[i]`` is reproducible for seeded selection.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'motion-kernel folder not found: {folder}')
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in KERNEL_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f'no kernel files ({", ".join(KERNEL_SUFFIXES)}) in {folder}')
    kernels = {}
    for path in files:
        if path.stem in kernels:
            raise ValueError(f'{path}: duplicate kernel name {path.stem!r} in {folder}')
        kernels[path.stem] = load_kernel(path)
    logger.debug('loaded %d motion kernels from %s', len(kernels), folder)
    return kernels
