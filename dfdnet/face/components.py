"""Facial component boxes from 68 iBUG landmarks (reference §2).

Coordinates are in pixels of the aligned face (512 px for the released model).
"""
from __future__ import annotations

import numpy as np

PART_NAMES = ('left_eye', 'right_eye', 'nose', 'mouth')

# 0-based iBUG-68 indices of each component; "left" is the eye on the image's left.
LANDMARK_GROUPS = {
    'left_eye': list(range(17, 22)) + list(range(36, 42)),
    'right_eye': list(range(22, 27)) + list(range(42, 48)),
    'nose': list(range(29, 36)),
    'mouth': list(range(48, 68)),
}

# Index permutation that maps the 68 landmarks of a face to those of its mirror image.
FLIP_PERMUTATION_68 = np.array(
    list(range(16, -1, -1))                      # jaw
    + list(range(26, 16, -1))                    # brows
    + list(range(27, 31))                        # nose bridge
    + [35, 34, 33, 32, 31]                       # nostrils
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65])          # inner lips


def component_boxes(landmarks, image_size: int = 512) -> np.ndarray:
    """Boxes of the four components by the released rule.

    Args:
        landmarks: (68, 2) array of (x, y) in pixels of an ``image_size`` face.
        image_size: side of the aligned face; the minimum half-size (16 at 512) scales with it.
    Returns:
        int array (4, 4), rows ``[x1, y1, x2, y2]`` for left eye, right eye, nose, mouth.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f'component_boxes expects (68, 2) landmarks, got shape {points.shape}')
    if not np.all(np.isfinite(points)):
        raise ValueError('component_boxes got non-finite landmarks')
    min_half = 16.0 * image_size / 512.0
    boxes = np.empty((4, 4), dtype=np.int64)
    for row, part in enumerate(PART_NAMES):
        group = points[LANDMARK_GROUPS[part]]
        centre = group.mean(axis=0)
        half = max(float(np.max(group.max(axis=0) - group.min(axis=0))) / 2.0, min_half)
        # astype(int) truncates towards zero, exactly as the released code does.
        boxes[row] = np.hstack((centre - half + 1, centre + half)).astype(np.int64)
    return boxes


def flip_landmarks(landmarks, width: int) -> np.ndarray:
    """Landmarks of the horizontally mirrored face (x -> width - 1 - x, left/right relabelled)."""
    points = np.asarray(landmarks, dtype=np.float64).copy()
    points[:, 0] = (width - 1) - points[:, 0]
    return points[FLIP_PERMUTATION_68]
