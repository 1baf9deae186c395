"""Face alignment onto the FFHQ five-point template (reference §3, step 2).

The released code fits a least-squares similarity (rotation, uniform scale, translation;
Umeyama's method, ``skimage.transform.SimilarityTransform``) from the five dlib landmarks to
the template, warps bilinearly with a black border, and for the paste-back fits a second
similarity from the template to the landmarks times the upscale factor (``paste='released'``;
the default pastes back with the exact inverse, see ``alignment_transforms``). Affine matrices here
are (2, 3) float64 arrays mapping (x, y, 1) column vectors, as OpenCV's ``warpAffine`` takes.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from dfdnet.utils.image_io import INTERPOLATIONS

# (x, y) in a 512-px crop, in dlib's 5-point order: outer and inner corner of the eye on the
# image's right, outer and inner corner of the eye on the image's left, base of the nose.
FFHQ_TEMPLATE_512 = np.array([
    [343.386, 244.312],
    [293.386, 246.797],
    [168.955, 244.193],
    [218.975, 246.757],
    [256.792, 339.252],
], dtype=np.float64)
TEMPLATE_FILE_SIZE = 1024  # FFHQ_template.npy of the released code holds 1024-px positions

# Typical dlib HOG box [left, top, right, bottom] of a face aligned to the template in a 512 crop
# (median over CelebA-HQ faces); used for 68-point landmarks when no detection box is known.
ALIGNED_FACE_BOX_512 = np.array([100.0, 158.0, 405.0, 463.0])

# Kernels of the photo pipeline's resamples (face warp, aligned-face resize, background upscale,
# paste-back). Bilinear is the released code's; bicubic is what this project's training uses to bring
# degraded faces back to full size (dfdnet.data.degradation_pipeline), so its models see the same.
RESAMPLING = {name: INTERPOLATIONS[name] for name in ('bilinear', 'bicubic')}


def resampling_flag(name: str) -> int:
    """OpenCV flag of a ``RESAMPLING`` kernel name; ``ValueError`` for any other name."""
    if name not in RESAMPLING:
        raise ValueError(f'unknown resampling {name!r}; choose one of {sorted(RESAMPLING)}')
    return RESAMPLING[name]


def resize_aligned_face(face: np.ndarray, size: int, enlarge: str = 'bicubic') -> np.ndarray:
    """An aligned face, (H, W, C) uint8 or float in [0, 1], resized to (size, size, C): the one
    rule of every aligned-face resize. It is returned as it is when already that size; it is
    averaged down ('area') when it shrinks (both sides larger than ``size``), else resampled with
    ``enlarge`` ('bilinear', 'bicubic' or 'area'); a float result is clipped to [0, 1] (bicubic
    overshoots).

    ``enlarge`` differs by use: 'bicubic' (default) for training faces, dictionary faces and their
    landmarks, as this project's training brings degraded faces back with bicubic; the restore
    pipeline passes its resampling kernel (bilinear for the released model); the test and
    validation sets, written once and reused by their manifests (which do not record this rule),
    pass 'area' as they always have, so that a set made now equals one made before.
    """
    if enlarge not in RESAMPLING and enlarge != 'area':
        raise ValueError(f"unknown enlarge kernel {enlarge!r}; choose one of {sorted(RESAMPLING) + ['area']}")
    height, width = face.shape[:2]
    if (height, width) == (size, size):
        return face
    kernel = 'area' if min(height, width) > size else enlarge
    resized = cv2.resize(face, (size, size), interpolation=INTERPOLATIONS[kernel])
    return resized if face.dtype == np.uint8 else np.clip(resized, 0, 1)


def face_template(size: int = 512, path=None) -> np.ndarray:
    """The five-point template (5, 2) for a ``size``-px aligned face.

    path: optional ``FFHQ_template.npy`` (5 x 2, in 1024-px coordinates, as released).
    """
    if path is None:
        return FFHQ_TEMPLATE_512 * (size / 512.0)
    path = Path(path)
    try:
        points = np.load(path).astype(np.float64)
    except Exception as exc:
        raise ValueError(f'cannot read face template {path}: {exc}') from exc
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f'face template {path} must hold 5 x 2 finite values, got shape {points.shape}')
    return points * (size / TEMPLATE_FILE_SIZE)


def estimate_similarity(src_points, dst_points) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping ``src_points`` (N, 2) onto ``dst_points`` (N, 2).

    Returns the (2, 3) affine matrix. Raises ``ValueError`` for degenerate point sets.
    """
    src = np.asarray(src_points, dtype=np.float64)
    dst = np.asarray(dst_points, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f'need two matching (N, 2) point sets, got {src.shape} and {dst.shape}')
    tform = SimilarityTransform.from_estimate(src, dst) if hasattr(SimilarityTransform, 'from_estimate') \
        else _estimate_legacy(src, dst)
    if not tform or not np.all(np.isfinite(tform.params)):
        raise ValueError('cannot fit a similarity transform to degenerate landmarks')
    return np.array(tform.params[:2, :], dtype=np.float64)


def _estimate_legacy(src, dst):
    tform = SimilarityTransform()
    return tform if tform.estimate(src, dst) else None


def invert_affine(affine) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix."""
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def transform_points(points, affine) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points (N, 2) -> (N, 2)."""
    points = np.asarray(points, dtype=np.float64)
    affine = np.asarray(affine, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


PASTE_TRANSFORMS = ('inverse', 'released')


def alignment_transforms(landmarks5, upscale: float = 1.0, size: int = 512, template=None, paste: str = 'inverse'):
    """The alignment warp of one face and its paste-back warp.

    Returns (affine, paste_affine): ``affine`` maps the input image onto the ``size`` crop (the
    least-squares similarity of the five points onto the template); ``paste_affine`` maps the crop
    onto the input resized by ``upscale``:

    * 'inverse': the exact inverse of ``affine`` followed by the resize's own pixel mapping
      (x_up = upscale * x + (upscale - 1) / 2, pixel centres, as ``cv2.resize``), so a crop pasted
      back unchanged lands on the pixels it came from;
    * 'released': a second least-squares fit from the template to ``landmarks5 * upscale``, as the
      released code does. It is not the inverse of ``affine`` (five points never fit a similarity
      exactly) and ignores pixel centres, so faces come back misplaced (measured in docs/restore.md,
      "Paste-back geometry").
    """
    template = face_template(size) if template is None else np.asarray(template, dtype=np.float64)
    points = np.asarray(landmarks5, dtype=np.float64)
    affine = estimate_similarity(points, template)
    if paste == 'released':
        return affine, estimate_similarity(template, points * upscale)
    if paste != 'inverse':
        raise ValueError(f'unknown paste transform {paste!r}; choose one of {PASTE_TRANSFORMS}')
    paste_affine = invert_affine(affine) * upscale
    paste_affine[:, 2] += (upscale - 1) / 2
    return affine, paste_affine


def warp_face(image: np.ndarray, affine, size: int = 512, resampling: str = 'bilinear') -> np.ndarray:
    """Warp ``image`` (H, W[, C]) with ``affine`` into a ``size`` x ``size`` crop (black border;
    ``resampling`` 'bilinear' as released, or 'bicubic')."""
    return cv2.warpAffine(image, np.asarray(affine, dtype=np.float64), (size, size), flags=resampling_flag(resampling),
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def aligned_box(box, affine) -> np.ndarray:
    """Bounding box [l, t, r, b] in the crop of an image-space box [l, t, r, b] mapped by ``affine``."""
    l, t, r, b = np.asarray(box, dtype=np.float64)
    corners = transform_points([[l, t], [r, t], [r, b], [l, b]], affine)
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])
