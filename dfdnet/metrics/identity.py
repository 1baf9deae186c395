"""Identity preservation: cosine similarity of dlib face-recognition descriptors.

Restored and ground-truth faces of a pair are aligned identically, so both descriptors are taken
inside the same box: the face detected on the ground truth (or the aligned-face fallback box).
1 means identical descriptors. For reference, dlib's own same-person rule is a Euclidean
descriptor distance below 0.6 (also returned).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfdnet.metrics.face_dlib import DlibFaceModels, FaceBox


@dataclass(frozen=True)
class IdentityResult:
    """cosine: cosine similarity in [-1, 1]; distance: Euclidean descriptor distance (dlib: < 0.6 same person)."""
    cosine: float
    distance: float


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two vectors (nan if one is zero)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else float('nan')


def identity_similarity(restored, gt, models: DlibFaceModels, box: FaceBox | None = None) -> IdentityResult:
    """Identity of ``restored`` vs ``gt`` ((H, W, 3) RGB, uint8 or float in [0, 1], same size).

    ``box`` defaults to the face found on ``gt`` (:meth:`DlibFaceModels.face_box`).
    """
    if np.shape(restored) != np.shape(gt):
        raise ValueError(f'identity: images differ in shape {np.shape(restored)} vs {np.shape(gt)}')
    box = box or models.face_box(gt)
    desc_gt = models.descriptor(gt, box)
    desc_restored = models.descriptor(restored, box)
    return IdentityResult(cosine=cosine_similarity(desc_restored, desc_gt),
                          distance=float(np.linalg.norm(desc_restored - desc_gt)))
