"""Face detection with dlib: the HOG frontal detector (fast, CPU) or the CNN (MMOD) detector.

The released code used the CNN detector with one upsampling step; ``hog`` is the CPU default
here. dlib is imported when a detector is built, and each detector is built once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

DETECTORS = ('hog', 'cnn')


@dataclass
class Detections:
    """Faces found in one image, largest first.

    boxes: (N, 4) float64 ``[left, top, right, bottom]`` in pixels (dlib's inclusive corners;
        they may reach outside the image). scores: (N,) detector confidence (HOG: SVM score,
        CNN: MMOD confidence).
    """
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def largest(self) -> 'Detections':
        return Detections(self.boxes[:1], self.scores[:1])


def rect_to_box(rect) -> np.ndarray:
    """dlib rectangle -> [left, top, right, bottom] floats."""
    return np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64)


def box_to_rect(box):
    """[left, top, right, bottom] -> dlib.rectangle (rounded to integer pixels)."""
    import dlib

    l, t, r, b = (int(round(float(v))) for v in box)
    return dlib.rectangle(l, t, r, b)


def cnn_model_path(path=None) -> Path:
    if path is not None:
        return Path(path)
    import face_recognition_models

    return Path(face_recognition_models.cnn_face_detector_model_location())


def face_present(image: np.ndarray, detectors) -> bool:
    """True when any of ``detectors`` (tried in order) finds a face in ``image``: the presence check
    of an aligned face, whose landmarks come from ``aligned_face_landmarks``, not from this box."""
    return any(len(detector(image)) for detector in detectors)


def aligned_presence_detectors() -> tuple:
    """HOG without, then with, one upsampling step: finds the face of nearly every aligned crop."""
    return FaceDetector('hog', upsample=0), FaceDetector('hog', upsample=1)


class FaceDetector:
    """dlib face detector.

    method: 'hog' (``get_frontal_face_detector``) or 'cnn' (MMOD, ``mmod_human_face_detector.dat``
        from face_recognition_models unless ``model_path`` is given; slow on CPU).
    upsample: times the image is doubled before detection (finds faces down to ~40 px at 1).
    min_score: HOG: minimum SVM score (0 is dlib's default); CNN: minimum confidence.
    max_pixels: the largest image the detector works on, upsampling included (each step
        quadruples it); larger ones raise ``ImageSizeError`` before any work. 0 = no limit.
    """

    def __init__(self, method: str = 'hog', upsample: int = 1, model_path=None, min_score: float = 0.0,
                 max_pixels: float = 0.0):
        import dlib

        if method not in DETECTORS:
            raise ValueError(f'unknown detector {method!r}; choose one of {DETECTORS}')
        if upsample < 0:
            raise ValueError(f'upsample must be >= 0, got {upsample}')
        self.method = method
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        self.max_pixels = float(max_pixels)
        if method == 'hog':
            self._detector = dlib.get_frontal_face_detector()
        else:
            path = cnn_model_path(model_path)
            if not path.is_file():
                raise FileNotFoundError(f'CNN face detector model not found: {path}')
            self._detector = dlib.cnn_face_detection_model_v1(str(path))

    def check_size(self, image_shape) -> None:
        """``ImageSizeError`` when an (H, W[, C]) image, upsampled, exceeds ``max_pixels``."""
        from dfdnet.utils.image_io import ImageSizeError

        scale = 2 ** self.upsample
        height, width = (int(v) * scale for v in image_shape[:2])
        if self.max_pixels and height * width > self.max_pixels:
            raise ImageSizeError(f'the face detector would work on {width}x{height} px ({height * width / 1e6:.0f} MP: '
                                 f'--detector_upsample {self.upsample} doubles the image {self.upsample} time(s)), '
                                 f'more than the limit of {self.max_pixels / 1e6:g} MP (4 x --max_input_megapixels); '
                                 'lower --detector_upsample or raise the limit')

    def __call__(self, image: np.ndarray) -> Detections:
        """Detect faces in ``image``: (H, W, 3) RGB or (H, W) grey, uint8."""
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f'detector expects uint8 grey or RGB pixels, got {image.dtype} {image.shape}')
        self.check_size(image.shape)
        image = np.ascontiguousarray(image)
        if self.method == 'hog':
            rects, scores, _ = self._detector.run(image, self.upsample, self.min_score)
            boxes = [rect_to_box(r) for r in rects]
            scores = list(scores)
        else:
            found = [d for d in self._detector(image, self.upsample) if d.confidence >= self.min_score]
            boxes = [rect_to_box(d.rect) for d in found]
            scores = [d.confidence for d in found]
        boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.array(scores, dtype=np.float64)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.lexsort((-scores, -areas))  # largest first, then higher score
        return Detections(boxes[order], scores[order])
