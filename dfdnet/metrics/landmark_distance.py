"""Landmark distance: mean error of dlib's 68 landmarks, normalised by the inter-ocular distance.

NME = mean_i ||p_i - g_i|| / ||g_36 - g_45||, with g the ground-truth landmarks and 36 / 45 the
outer eye corners (0-based iBUG indices; the 300-W "inter-ocular" normalisation). 0 is perfect;
0.05 is about a twentieth of the eye-to-eye distance per point.
"""
from __future__ import annotations

import numpy as np

from dfdnet.metrics.face_dlib import DlibFaceModels

OUTER_EYE_CORNERS = (36, 45)


def normalised_landmark_distance(predicted, ground_truth) -> float:
    """Mean point distance of two (68, 2) landmark arrays divided by the GT inter-ocular distance."""
    pred = np.asarray(predicted, dtype=np.float64)
    gt = np.asarray(ground_truth, dtype=np.float64)
    if pred.shape != (68, 2) or gt.shape != (68, 2):
        raise ValueError(f'landmark distance expects two (68, 2) arrays, got {pred.shape} and {gt.shape}')
    inter_ocular = float(np.linalg.norm(gt[OUTER_EYE_CORNERS[0]] - gt[OUTER_EYE_CORNERS[1]]))
    if inter_ocular <= 0:
        raise ValueError('landmark distance: the ground-truth eye corners coincide')
    return float(np.linalg.norm(pred - gt, axis=1).mean() / inter_ocular)


def landmark_distance(restored, gt, models: DlibFaceModels, gt_landmarks=None) -> float:
    """NME of the 68 landmarks of aligned face ``restored`` against those of ``gt`` (or the given
    ``gt_landmarks``), both by ``aligned_face_landmarks`` (the same box: only the content differs)."""
    if gt_landmarks is None:
        gt_landmarks = models.landmarks68(gt)
    return normalised_landmark_distance(models.landmarks68(restored), gt_landmarks)
