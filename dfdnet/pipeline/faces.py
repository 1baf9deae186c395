"""From a photo to aligned faces ready for the generator: detect, align, 68 landmarks, boxes."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dfdnet.face.alignment import (PASTE_TRANSFORMS, alignment_transforms, face_template, resampling_flag,
                                   resize_aligned_face, warp_face)
from dfdnet.face.components import component_boxes
from dfdnet.face.landmarks import LandmarkError, aligned_face_landmarks
from dfdnet.pipeline.summary import StageTimer

logger = logging.getLogger(__name__)


@dataclass
class PreparedFace:
    """One face ready for restoration.

    crop: (S, S, 3) uint8 RGB aligned face; landmarks68: (68, 2) in crop pixels;
    boxes: (4, 4) int component boxes. Whole-image mode also sets box / score (detection, image
    pixels), landmarks5 (image pixels), affine (image -> crop) and paste_affine (crop -> image
    resized by the upscale factor).
    """
    index: int
    crop: np.ndarray
    landmarks68: np.ndarray
    boxes: np.ndarray
    box: np.ndarray | None = None
    score: float | None = None
    landmarks5: np.ndarray | None = None
    affine: np.ndarray | None = None
    paste_affine: np.ndarray | None = None


@dataclass
class SkippedFace:
    index: int
    reason: str


def check_component_boxes(boxes: np.ndarray, size: int) -> None:
    """Raise ``LandmarkError`` unless every component box is non-empty inside the ``size`` crop."""
    for box in np.asarray(boxes):
        x1, y1, x2, y2 = (int(v) for v in box)
        if min(x2, size) - max(x1, 0) < 2 or min(y2, size) - max(y1, 0) < 2:
            raise LandmarkError(f'component box {[x1, y1, x2, y2]} lies outside the {size}-px face')


class FacePreparer:
    """Face tools built once and used for every image.

    face_size: side of the aligned crop (the generator's image size).
    detector: a ``FaceDetector`` (None in aligned mode); landmarks5: a 5-point ``DlibLandmarker``
    (None in aligned mode); landmarks68: a 68-point landmarker on aligned crops.
    template: (5, 2) five-point template for ``face_size``; only_largest: keep one face per image.
    resampling: kernel of the alignment warp and of enlarging aligned inputs ('bilinear' as released,
    or 'bicubic', as this project's training brings faces back to full size; larger aligned inputs
    are shrunk with area averaging).
    paste_transform: 'inverse' (exact inverse of the alignment warp) or 'released' (``alignment_transforms``).
    """

    def __init__(self, face_size, landmarks68, detector=None, landmarks5=None, template=None,
                 only_largest=False, resampling: str = 'bilinear', paste_transform: str = 'inverse'):
        resampling_flag(resampling)  # fail at construction, not at the first face
        if paste_transform not in PASTE_TRANSFORMS:
            raise ValueError(f'paste_transform must be one of {PASTE_TRANSFORMS}, got {paste_transform!r}')
        self.resampling = resampling
        self.paste_transform = paste_transform
        self.face_size = int(face_size)
        self.detector = detector
        self.landmarks5 = landmarks5
        self.landmarks68 = landmarks68
        self.template = face_template(self.face_size) if template is None else np.asarray(template, np.float64)
        self.only_largest = only_largest

    def crop_landmarks(self, crop: np.ndarray, check_template: bool = True) -> np.ndarray:
        """68 landmarks on an aligned crop (``aligned_face_landmarks``; the eye check against the
        template only for crops this preparer aligned)."""
        return aligned_face_landmarks(crop, self.landmarks68, self.template if check_template else None)

    def _finish(self, index, crop, landmarks68, **extra) -> PreparedFace:
        boxes = component_boxes(landmarks68, self.face_size)
        check_component_boxes(boxes, self.face_size)
        return PreparedFace(index=index, crop=crop, landmarks68=landmarks68, boxes=boxes, **extra)

    def faces_in_image(self, rgb: np.ndarray, upscale: float, timer: StageTimer | None = None,
                       tracker=None, seconds: float = 0.0):
        """Detect and align every face of an (H, W, 3) uint8 RGB photo.

        Returns (faces, skipped, number detected); a face whose landmarks fail is skipped with
        its reason and the others go on. ``timer`` collects 'detect', 'align' and 'landmarks'.
        ``tracker``: a ``dfdnet.face.tracking.FaceTracker`` for video frames (``seconds``: the
        frame's time): the faces' 5 points and 68 landmarks are smoothed along their tracks, and a
        face whose track is not yet confirmed is left out (neither restored nor skipped).
        """
        timer = timer or StageTimer()
        detected, skipped = self.detect(rgb, timer)
        count, faces = len(detected) + len(skipped), []
        if tracker is not None:
            tracked = tracker.update([f[1] for f in detected], np.array([f[3] for f in detected]).reshape(-1, 5, 2),
                                     seconds, scores=[f[2] for f in detected])
        else:
            tracked = [(None, f[3]) for f in detected]
        for (index, box, score, _), (track, points5) in zip(detected, tracked):
            if track is not None and not track.confirmed:
                logger.debug('face %d (score %.2f) not restored until its track is confirmed', index, score)
                continue
            smooth68 = (lambda lm, t=track: t.smooth_landmarks68(lm, self.face_size)) if track else None
            try:
                faces.append(self.prepare(rgb, index, box, score, points5, upscale, timer, smooth68))
            except (LandmarkError, ValueError) as exc:
                skipped.append(SkippedFace(index, str(exc)))
        return faces, skipped, count

    def detect(self, rgb: np.ndarray, timer: StageTimer | None = None):
        """The faces of an (H, W, 3) uint8 RGB photo and their 5 alignment points.

        Returns ([(index, box, score, points5)], skipped): box (4,) and points5 (5, 2) in image
        pixels; a face whose points fail is skipped with its reason.
        """
        if self.detector is None or self.landmarks5 is None:
            raise RuntimeError('FacePreparer was built without a detector (aligned mode)')
        timer = timer or StageTimer()
        with timer('detect'):
            detections = self.detector(rgb)
        if self.only_largest:
            detections = detections.largest()
        found, skipped = [], []
        for index, (box, score) in enumerate(zip(detections.boxes, detections.scores)):
            try:
                with timer('align'):
                    found.append((index, box, float(score), self.landmarks5(rgb, box)))
            except (LandmarkError, ValueError) as exc:
                skipped.append(SkippedFace(index, str(exc)))
        return found, skipped

    def prepare(self, rgb, index, box, score, points5, upscale: float, timer: StageTimer | None = None,
                smooth68=None) -> PreparedFace:
        """Align one detected face by its 5 points and find its 68 landmarks on the crop;
        ``smooth68`` (optional) maps them before the component boxes are made (video smoothing).
        Raises ``LandmarkError`` / ``ValueError`` for an unusable face."""
        timer = timer or StageTimer()
        with timer('align'):
            affine, paste_affine = alignment_transforms(points5, upscale, self.face_size, self.template,
                                                        self.paste_transform)
            crop = warp_face(rgb, affine, self.face_size, self.resampling)
        with timer('landmarks'):
            landmarks68 = self.crop_landmarks(crop)
        if smooth68 is not None:
            landmarks68 = smooth68(landmarks68)
        return self._finish(index, crop, landmarks68, box=box, score=score, landmarks5=np.asarray(points5),
                            affine=affine, paste_affine=paste_affine)

    def aligned_face(self, rgb: np.ndarray, landmarks68=None) -> PreparedFace:
        """An already aligned face: resized to the face size if needed; landmarks given (in
        pixels of ``rgb``, scaled with it) or found by the 68-point model on the resized face."""
        if rgb.shape[0] != rgb.shape[1]:
            logger.warning('aligned input of %dx%d px is not square: stretching it to %d px', rgb.shape[1],
                           rgb.shape[0], self.face_size)
        if rgb.shape[:2] != (self.face_size, self.face_size):
            if landmarks68 is not None:
                scale = np.array([self.face_size / rgb.shape[1], self.face_size / rgb.shape[0]])
                landmarks68 = np.asarray(landmarks68, dtype=np.float64) * scale
            rgb = resize_aligned_face(rgb, self.face_size, enlarge=self.resampling)
        if landmarks68 is None:
            landmarks68 = self.crop_landmarks(rgb, check_template=False)
        return self._finish(0, rgb, np.asarray(landmarks68, dtype=np.float64))
