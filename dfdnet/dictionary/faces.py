"""Faces for dictionary building: the images of a folder (held-out faces left out) and the aligned
512 face of each landmark cache entry. The landmarks themselves are found by
``dfdnet.data.folder_landmarks.compute_landmarks``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from dfdnet.face.alignment import resize_aligned_face, warp_face
from dfdnet.utils.image_io import list_images, read_image, to_rgb8

logger = logging.getLogger(__name__)

# FFHQ faces kept out of every dictionary and training set (the project's evaluation set).
HELD_OUT_FOLDERS = ('ffhq_gpen', 'ffhq512_redegnet')


def list_dictionary_images(root) -> list[Path]:
    """Images under ``root`` (recursive, sorted), without the held-out FFHQ folders (warned about)."""
    root = Path(os.path.abspath(root))
    images = list_images(root)
    kept = []
    skipped = 0
    for path in images:
        folders = Path(os.path.abspath(path)).parts[:-1]
        if any(part in HELD_OUT_FOLDERS for part in folders):
            skipped += 1
            continue
        kept.append(path)
    if skipped:
        logger.warning('skipped %d images in the held-out evaluation folders %s: they must never be used '
                       'for dictionaries', skipped, ', '.join(HELD_OUT_FOLDERS))
    return kept


def load_aligned_face(root: Path, entry, face_size: int, align: bool) -> np.ndarray:
    """The (face_size, face_size, 3) uint8 RGB face of a cache entry: the photo warped with the
    entry's affine when ``align``, else the aligned face resized. Raises ``ImageReadError``."""
    image = to_rgb8(read_image(Path(root) / entry.path))
    if align:
        if entry.affine is None:
            raise ValueError(f'{entry.path}: the landmark cache has no alignment for face {entry.face_index}')
        return warp_face(image, entry.affine.astype(np.float64), face_size)
    return resize_aligned_face(image, face_size)
