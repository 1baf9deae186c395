"""How the faces of a folder are found (light: no OpenCV or torch, so that ``--help`` stays fast)."""
from __future__ import annotations

from dataclasses import dataclass

from dfdnet.utils.options import option


@dataclass
class FaceOptions:
    """How faces are found. ``detector``/``upsample`` are for photos (``align``); every aligned
    face gets its 68 landmarks from ``dfdnet.face.landmarks.aligned_face_landmarks``, as at
    restoration."""
    face_size: int = 512
    align: bool = option(False, 'the input holds photos: detect and align every face first')
    detector: str = 'hog'
    upsample: int = 1
    detect_max_side: int = 1600
    min_face_size: int = 64
    save_every: int = 50
