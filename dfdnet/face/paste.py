"""Paste restored faces back into the upscaled whole image (reference §3, step 5).

The released blend: warp the face and an all-ones mask with the template-to-image similarity;
erode the mask with a (2·up)² kernel (removes the black border); w_edge = int(sqrt(mask area))
// 20; erode again with a (2·w_edge)² kernel and Gaussian-blur with kernel 2·w_edge + 1 (OpenCV's
automatic sigma); out = soft · face + (1 - soft) · background.

Differences from the released code (same result up to rounding): the face is warped in float
rather than as uint8, the blend is rounded rather than truncated, and every face is blended only
inside the bounding box of its footprint, so a large photo never holds full-size float copies.
Grey, RGB, RGBA (alpha resized with the image, faces leave it unchanged) and 16-bit backgrounds
are supported; the 8-bit face is scaled by 257 onto a 16-bit background.

``face_mask`` is this project's default blend: the face's own outline from its 68 landmarks (jaw,
brows raised to the forehead), feathered in proportion to the face, so that the restored crop's
corners (hair, background, a neighbour's face) never replace the photo's and no square seam shows.
"""
from __future__ import annotations

import cv2
import numpy as np

from dfdnet.face.alignment import resampling_flag, transform_points

_ROI_MARGIN = 2  # pixels around the warped footprint


def upscale_image(image: np.ndarray, factor: float, resampling: str = 'bilinear') -> np.ndarray:
    """Resize (H, W[, C]) uint8/uint16 pixels by ``factor`` (bilinear as released, or bicubic); dtype kept."""
    if factor == 1:
        return image.copy()
    height, width = image.shape[:2]
    size = (int(round(width * factor)), int(round(height * factor)))
    resized = cv2.resize(image, size, interpolation=resampling_flag(resampling))
    return resized if resized.ndim == image.ndim else resized[:, :, None]


def footprint_box(paste_affine, face_size: int, height: int, width: int):
    """Integer [x0, y0, x1, y1) of the canvas region a warped ``face_size`` crop can touch (clipped)."""
    s = face_size - 1
    corners = transform_points([[0, 0], [s, 0], [s, s], [0, s]], paste_affine)
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - _ROI_MARGIN
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + _ROI_MARGIN + 1
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def soft_mask(paste_affine, face_size: int, out_size, upscale: int, offset=(0, 0)) -> np.ndarray:
    """The released feathered mask, float32 (h, w) in [0, 1], for a canvas region.

    paste_affine: (2, 3) crop -> upscaled image; out_size: (h, w) of the region; offset: (x0, y0)
    of the region in the upscaled image.
    """
    affine = np.asarray(paste_affine, dtype=np.float64).copy()
    affine[:, 2] -= offset
    height, width = out_size
    ones = np.ones((face_size, face_size), np.float32)
    mask = cv2.warpAffine(ones, affine, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    border = max(1, int(round(2 * upscale)))
    mask = cv2.erode(mask, np.ones((border, border), np.uint8))
    w_edge = int(float(mask.sum()) ** 0.5) // 20
    if w_edge > 0:
        mask = cv2.erode(mask, np.ones((2 * w_edge, 2 * w_edge), np.uint8))
        mask = cv2.GaussianBlur(mask, (2 * w_edge + 1, 2 * w_edge + 1), 0)
    return mask


FOREHEAD_RAISE = 0.45  # brows moved up by this fraction of the brow-to-chin height
FEATHER = 0.08         # feather width as a fraction of the face outline's size (sqrt of its area)


def face_mask(landmarks68, face_size: int) -> np.ndarray:
    """Face-shaped soft mask of an aligned crop: float32 (S, S) in [0, 1].

    The convex hull of the jaw (points 0-16) and of the brows (17-26) raised by ``FOREHEAD_RAISE``
    of the brow-to-chin height, eroded and Gaussian-feathered over ``FEATHER`` x its size, so the
    soft edge lies inside the outline and never reaches the crop's border.
    """
    points = np.asarray(landmarks68, dtype=np.float64)
    brows = points[17:27].copy()
    height = points[8, 1] - brows[:, 1].mean()
    brows[:, 1] -= FOREHEAD_RAISE * max(height, 1.0)
    hull = cv2.convexHull(np.round(np.concatenate([points[:17], brows])).astype(np.int32))
    mask = np.zeros((face_size, face_size), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    feather = max(1, int(round(FEATHER * float(mask.sum()) ** 0.5)))
    mask[:1], mask[-1:], mask[:, :1], mask[:, -1:] = 0, 0, 0, 0  # the erosion then clears a feather's width
    # Eroded by the feather width and blurred with sigma = width / 3: the outline lies 3 sigma out,
    # so the blend fades to ~0 exactly at the face's edge.
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * feather + 1, 2 * feather + 1)))
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=feather / 3.0)


def canvas_masks(faces, shape, face_size: int, upscale: int, kind: str = 'face') -> np.ndarray:
    """The union (max) of the paste masks of ``faces`` (each with ``landmarks68`` and
    ``paste_affine``, e.g. ``PreparedFace``) on an (H, W[, C]) canvas: float32 (H, W) in [0, 1],
    ``face_mask`` ('face') or the released feathered square ('released')."""
    height, width = shape[:2]
    total = np.zeros((height, width), np.float32)
    for face in faces:
        if kind == 'released':
            warped = soft_mask(face.paste_affine, face_size, (height, width), upscale)
        else:
            warped = cv2.warpAffine(face_mask(face.landmarks68, face_size), np.asarray(face.paste_affine, np.float64),
                                    (width, height), flags=cv2.INTER_LINEAR)
        total = np.maximum(total, warped)
    return total


def _face_for_canvas(face: np.ndarray, channels: int, value_scale: float) -> np.ndarray:
    face = face.astype(np.float32)
    if face.ndim == 2:
        face = face[:, :, None]
    if channels == 1 and face.shape[2] == 3:
        face = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)[:, :, None]
    elif channels == 3 and face.shape[2] == 1:
        face = np.repeat(face, 3, axis=2)
    return face * value_scale


def blend_face(canvas: np.ndarray, face: np.ndarray, paste_affine, upscale: int, mask=None,
               resampling: str = 'bilinear') -> None:
    """Blend one face into ``canvas`` in place.

    canvas: (H, W, C) uint8/uint16 colour pixels (C = 1 grey or 3 RGB) of the upscaled image.
    face: (S, S, 3) RGB uint8 restored face (or (S, S) grey); paste_affine: (2, 3) crop -> canvas;
    mask: (S, S) float32 in [0, 1] in crop pixels (e.g. ``face_mask``), or None: the released mask.
    resampling: kernel of the face's warp ('bilinear' as released, or 'bicubic'); masks stay bilinear.
    """
    face_size = face.shape[0]
    height, width, channels = canvas.shape
    x0, y0, x1, y1 = footprint_box(paste_affine, face_size, height, width)
    if x1 <= x0 or y1 <= y0:
        return
    value_scale = 257.0 if canvas.dtype == np.uint16 else 1.0
    affine = np.asarray(paste_affine, dtype=np.float64).copy()
    affine[:, 2] -= (x0, y0)
    face_f = _face_for_canvas(face, channels, value_scale)
    warped = cv2.warpAffine(face_f, affine, (x1 - x0, y1 - y0), flags=resampling_flag(resampling),
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    warped = warped.reshape(y1 - y0, x1 - x0, channels)
    if mask is None:
        mask = soft_mask(paste_affine, face_size, (y1 - y0, x1 - x0), upscale, offset=(x0, y0))
    else:
        mask = cv2.warpAffine(np.asarray(mask, np.float32), affine, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = mask[:, :, None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    blended = mask * warped + (1.0 - mask) * region
    info = np.iinfo(canvas.dtype)
    canvas[y0:y1, x0:x1] = np.clip(np.rint(blended), info.min, info.max).astype(canvas.dtype)


def paste_faces(background: np.ndarray, faces, paste_affines, upscale: int, masks=None,
                resampling: str = 'bilinear') -> np.ndarray:
    """Upscale ``background`` and blend every face into it.

    background: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or uint16.
    faces: restored (S, S, 3) RGB uint8 faces; paste_affines: their (2, 3) crop -> upscaled-image
    similarities; masks: their (S, S) crop-space masks (``face_mask``), or None for the released one;
    resampling: kernel of the background's upscale and of the faces' warps ('bilinear' as released,
    or 'bicubic'). Returns an image of shape (H·up, W·up[, C]) with the background's dtype and
    channels (RGBA: alpha resized with the image, not changed by the faces).
    """
    if background.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'background must be uint8 or uint16, got {background.dtype}')
    upscaled = upscale_image(background, upscale, resampling)
    grey = upscaled.ndim == 2
    canvas = upscaled[:, :, None] if grey else upscaled
    colour = canvas[:, :, :3] if canvas.shape[2] == 4 else canvas
    colour_view = np.ascontiguousarray(colour)
    masks = [None] * len(faces) if masks is None else list(masks)
    for face, affine, mask in zip(faces, paste_affines, masks):
        blend_face(colour_view, face, affine, upscale, mask, resampling)
    if canvas.shape[2] == 4:
        canvas[:, :, :3] = colour_view
        return canvas
    return colour_view[:, :, 0] if grey else colour_view

