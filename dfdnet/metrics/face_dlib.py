"""The face models of the face metrics: HOG detector, 5/68-point landmarks, face-recognition net.

The model files come from the ``face_recognition_models`` package (no downloads). Images are
(H, W, 3) uint8 RGB. Boxes are ``(left, top, right, bottom)`` ints in pixels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dfdnet.face.alignment import ALIGNED_FACE_BOX_512
from dfdnet.face.detection import box_to_rect
from dfdnet.face.landmarks import aligned_face_landmarks, dlib_model_path
from dfdnet.utils.pixels import to_uint8

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class FaceBox:
    """A face box in pixels and whether it was detected (False: the aligned-face box)."""
    left: int
    top: int
    right: int
    bottom: int
    detected: bool

    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def as_array(self) -> np.ndarray:
        return np.array([self.left, self.top, self.right, self.bottom], dtype=np.float64)


def aligned_face_box_of(height: int, width: int) -> FaceBox:
    """``dfdnet.face.landmarks.aligned_face_box`` of an aligned face of the given size, as a FaceBox."""
    left, top, right, bottom = ALIGNED_FACE_BOX_512 * np.array([width, height, width, height]) / 512.0
    return FaceBox(int(round(left)), int(round(top)), int(round(right)), int(round(bottom)), detected=False)


def check_rgb_uint8(img, name: str = 'image') -> np.ndarray:
    """Return a C-contiguous (H, W, 3) uint8 array; float images in [0, 1] are converted."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'{name}: expected an (H, W, 3) RGB image, got shape {img.shape}')
    if img.dtype != np.uint8:
        if not np.issubdtype(img.dtype, np.floating):
            raise TypeError(f'{name}: expected uint8 or float image, got {img.dtype}')
        img = to_uint8(img)
    return np.ascontiguousarray(img)


class DlibFaceModels:
    """The face tools of ``dfdnet.face`` the metrics need, loaded lazily (read-only: one per process).

    Landmarks come from ``aligned_face_landmarks``, the procedure restoration, dictionary building
    and training use; the HOG detector (``upsample`` steps; 0 suits 512 aligned faces) only places
    the identity descriptor and counts faces.
    """

    def __init__(self, upsample: int = 0):
        self.upsample = int(upsample)
        self._detectors = {}
        self._shape5 = None
        self._landmarker68 = None
        self._recognizer = None

    def _detector(self, upsample: int):
        if upsample not in self._detectors:
            from dfdnet.face.detection import FaceDetector
            self._detectors[upsample] = FaceDetector('hog', upsample=upsample)
        return self._detectors[upsample]

    @property
    def shape5(self):
        """dlib's 5-point predictor itself: the descriptor needs its full_object_detection."""
        if self._shape5 is None:
            import dlib
            self._shape5 = dlib.shape_predictor(str(dlib_model_path(5)))
        return self._shape5

    @property
    def landmarker68(self):
        if self._landmarker68 is None:
            from dfdnet.face.landmarks import DlibLandmarker
            self._landmarker68 = DlibLandmarker(68)
        return self._landmarker68

    @property
    def recognizer(self):
        if self._recognizer is None:
            import dlib
            try:
                import face_recognition_models
            except ImportError as exc:
                raise ImportError('the face metrics need the face_recognition_models package '
                                  '(pip install face-recognition-models)') from exc
            self._recognizer = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        return self._recognizer

    def detect(self, img, upsample: int | None = None) -> list[FaceBox]:
        """All HOG detections, largest first (``upsample`` defaults to the instance's)."""
        found = self._detector(self.upsample if upsample is None else int(upsample))(check_rgb_uint8(img))
        boxes = [FaceBox(*(int(round(v)) for v in box), detected=True) for box in found.boxes]
        return sorted(boxes, key=lambda b: -b.area())

    def face_box(self, img) -> FaceBox:
        """The largest detected face, or the aligned-face box when none is found."""
        boxes = self.detect(img)
        if boxes:
            return boxes[0]
        img = np.asarray(img)
        logger.debug('no face detected in a %dx%d image; using the aligned-face box', img.shape[1], img.shape[0])
        return aligned_face_box_of(img.shape[0], img.shape[1])

    def landmarks68(self, img) -> np.ndarray:
        """68 landmarks of an aligned face (``aligned_face_landmarks``): float64 (68, 2) (x, y) pixels;
        ``LandmarkError`` when they fail its checks."""
        return aligned_face_landmarks(check_rgb_uint8(img), self.landmarker68)

    def descriptor(self, img, box: FaceBox) -> np.ndarray:
        """128-D dlib face-recognition descriptor (ResNet, aligned with the 5-point model), float64."""
        img = check_rgb_uint8(img)
        shape = self.shape5(img, box_to_rect(box.as_array()))
        return np.asarray(self.recognizer.compute_face_descriptor(img, shape), dtype=np.float64)
