"""dlib face models for the face metrics: HOG detector, 5/68-point landmarks, face-recognition net.

The model files come from the ``face_recognition_models`` package (no downloads). Images are
(H, W, 3) uint8 RGB. Boxes are ``(left, top, right, bottom)`` ints in pixels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# The box dlib's HOG detector most often returns on an FFHQ-aligned 512 face; used (scaled to the
# image size) when no face is detected on an aligned face, so that every pair still gets a value.
ALIGNED_FACE_BOX_512 = (95, 164, 405, 474)


@dataclass(frozen=True)
class FaceBox:
    """A face box in pixels and whether it was detected (False: the aligned-face fallback)."""
    left: int
    top: int
    right: int
    bottom: int
    detected: bool

    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)


def aligned_face_box(height: int, width: int) -> FaceBox:
    """The fallback box of an aligned face of the given size (ALIGNED_FACE_BOX_512 scaled)."""
    sx, sy = width / 512.0, height / 512.0
    left, top, right, bottom = ALIGNED_FACE_BOX_512
    return FaceBox(int(round(left * sx)), int(round(top * sy)), int(round(right * sx)),
                   int(round(bottom * sy)), detected=False)


def check_rgb_uint8(img, name: str = 'image') -> np.ndarray:
    """Return a C-contiguous (H, W, 3) uint8 array; float images in [0, 1] are converted."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'{name}: expected an (H, W, 3) RGB image, got shape {img.shape}')
    if img.dtype != np.uint8:
        if not np.issubdtype(img.dtype, np.floating):
            raise TypeError(f'{name}: expected uint8 or float image, got {img.dtype}')
        img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


class DlibFaceModels:
    """Lazily loaded dlib models; one instance per process is enough (they are read-only).

    Args:
        upsample: HOG detector upsampling steps (0 suits 512 aligned faces; 1 finds faces >= ~40 px).
    """

    def __init__(self, upsample: int = 0):
        self.upsample = int(upsample)
        self._detector = None
        self._shape5 = None
        self._shape68 = None
        self._recognizer = None

    @staticmethod
    def _model_path(getter_name: str) -> str:
        try:
            import face_recognition_models
        except ImportError as exc:
            raise ImportError('the face metrics need the face_recognition_models package '
                              '(pip install face-recognition-models)') from exc
        return getattr(face_recognition_models, getter_name)()

    @property
    def detector(self):
        if self._detector is None:
            import dlib
            self._detector = dlib.get_frontal_face_detector()
        return self._detector

    @property
    def shape68(self):
        if self._shape68 is None:
            import dlib
            self._shape68 = dlib.shape_predictor(self._model_path('pose_predictor_model_location'))
        return self._shape68

    @property
    def shape5(self):
        if self._shape5 is None:
            import dlib
            self._shape5 = dlib.shape_predictor(self._model_path('pose_predictor_five_point_model_location'))
        return self._shape5

    @property
    def recognizer(self):
        if self._recognizer is None:
            import dlib
            self._recognizer = dlib.face_recognition_model_v1(self._model_path('face_recognition_model_location'))
        return self._recognizer

    def detect(self, img, upsample: int | None = None) -> list[FaceBox]:
        """All HOG detections, largest first (``upsample`` defaults to the instance's)."""
        img = check_rgb_uint8(img)
        rects = self.detector(img, self.upsample if upsample is None else int(upsample))
        boxes = [FaceBox(r.left(), r.top(), r.right(), r.bottom(), detected=True) for r in rects]
        return sorted(boxes, key=lambda b: -b.area())

    def face_box(self, img) -> FaceBox:
        """The largest detected face, or the aligned-face fallback box when none is found."""
        boxes = self.detect(img)
        if boxes:
            return boxes[0]
        img = np.asarray(img)
        logger.debug('no face detected in a %dx%d image; using the aligned-face box', img.shape[1], img.shape[0])
        return aligned_face_box(img.shape[0], img.shape[1])

    @staticmethod
    def _rect(box: FaceBox):
        import dlib
        return dlib.rectangle(int(box.left), int(box.top), int(box.right), int(box.bottom))

    def landmarks68(self, img, box: FaceBox) -> np.ndarray:
        """dlib's 68 iBUG landmarks inside ``box``: float64 (68, 2) of (x, y) pixels, 0-based."""
        shape = self.shape68(check_rgb_uint8(img), self._rect(box))
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)

    def descriptor(self, img, box: FaceBox) -> np.ndarray:
        """128-D dlib face-recognition descriptor (ResNet, aligned with the 5-point model), float64."""
        img = check_rgb_uint8(img)
        shape = self.shape5(img, self._rect(box))
        return np.asarray(self.recognizer.compute_face_descriptor(img, shape), dtype=np.float64)
