"""The 68 landmarks of a folder of faces, found into a ``LandmarkCache``: the one loop that fills
a folder's landmark cache, for dictionary building and for training data alike.

Two kinds of input:

* aligned faces (FFHQ / CelebA-HQ style, any square size): resized to ``face_size``
  (``dfdnet.face.alignment.resize_aligned_face``);
* with ``align=True``, photos: every face is detected, aligned onto the five-point template
  (``dfdnet.face.alignment``) and counted as its own sample (``face_index`` 0, 1, ...).

The cache is saved as the work goes on, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from dfdnet.data.face_options import FaceOptions  # noqa: F401 (callers import it from here too)
from dfdnet.data.landmark_cache import LandmarkCache, load_landmark_folder
from dfdnet.face.alignment import alignment_transforms, face_template, resize_aligned_face, warp_face
from dfdnet.face.detection import FaceDetector, aligned_presence_detectors, face_present
from dfdnet.face.landmarks import LandmarkError, aligned_face_landmarks
from dfdnet.utils.image_io import ImageReadError, read_image, to_rgb8

logger = logging.getLogger(__name__)


def resize_affine(width: int, height: int, size: int) -> np.ndarray:
    """(2, 3) affine of ``cv2.resize`` from (width, height) to (size, size) (pixel-centre convention)."""
    sx, sy = size / width, size / height
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]], dtype=np.float64)


class FaceLandmarker:
    """68 landmarks on aligned faces and (with ``align``) detection + alignment of photos."""

    def __init__(self, options: FaceOptions):
        from dfdnet.face.landmarks import DlibLandmarker

        self.options = options
        self.landmarker68 = DlibLandmarker(68)
        self.presence = aligned_presence_detectors()
        self.template = face_template(options.face_size)
        if options.align:
            self.photo_detector = FaceDetector(options.detector, upsample=options.upsample)
            self.landmarker5 = DlibLandmarker(5)

    def aligned_landmarks(self, face: np.ndarray, check_template: bool = False):
        """(68, 2) landmarks of an aligned face and 'ok', or (None, 'no_face' / 'landmark_failed').
        ``check_template``: the face was aligned here (found by the detector): its eyes are checked
        against the template; otherwise a given aligned face must hold a face the detector finds."""
        if not check_template and not face_present(face, self.presence):
            return None, 'no_face'
        try:
            points = aligned_face_landmarks(face, self.landmarker68, self.template if check_template else None)
        except LandmarkError as exc:
            logger.debug('landmarks failed: %s', exc)
            return None, 'landmark_failed'
        return points, 'ok'

    def photo_faces(self, photo: np.ndarray) -> list:
        """Every usable face of a photo: list of (aligned face, affine photo -> face)."""
        opts = self.options
        height, width = photo.shape[:2]
        scale = min(1.0, opts.detect_max_side / max(height, width))
        small = photo if scale == 1.0 else cv2.resize(photo, (round(width * scale), round(height * scale)),
                                                      interpolation=cv2.INTER_AREA)
        faces = []
        for box in self.photo_detector(small).boxes / scale:
            if min(box[2] - box[0], box[3] - box[1]) < opts.min_face_size:
                logger.info('skipping a %.0f-px face (min_face_size %d)', box[2] - box[0], opts.min_face_size)
                continue
            points5 = self.landmarker5(photo, box)
            try:
                affine, _ = alignment_transforms(points5, size=opts.face_size)
            except ValueError as exc:
                logger.warning('cannot align a face: %s', exc)
                continue
            faces.append((warp_face(photo, affine, opts.face_size), affine))
        return faces


def compute_landmarks(images: list, root: Path, cache: LandmarkCache, cache_path: Path, options: FaceOptions,
                      max_faces: int | None = None, landmarks_dir=None) -> LandmarkCache:
    """Fill ``cache`` with the faces of ``images`` until ``max_faces`` usable faces are known.

    Images already in the cache are not looked at again. With ``landmarks_dir`` the released
    ``<name>.txt`` files are read instead of running dlib. The cache is saved to ``cache_path``
    every ``options.save_every`` images and at the end (a complete cache already there is left
    as it is).
    """
    root = Path(root)
    from_files = {}
    if landmarks_dir is not None:
        names = [cache.relative(p) for p in images]
        from_files = load_landmark_folder(landmarks_dir, names)
    landmarker = None
    usable = cache.counts()['ok']
    todo = [p for p in images if not cache.has_image(p)]
    if max_faces is not None and usable >= max_faces:
        todo = []
    bar = tqdm(todo, desc='landmarks', unit='img')
    since_save, started = 0, time.time()
    try:
        for path in bar:
            rel = cache.relative(path)
            try:
                image = to_rgb8(read_image(path))
            except ImageReadError as exc:
                logger.warning('skipping %s', exc)
                cache.add(rel, flag='unreadable')
                continue
            height, width = image.shape[:2]
            if landmarks_dir is not None:
                points = from_files.get(rel)
                affine = resize_affine(width, height, options.face_size)
                if points is None:
                    cache.add(rel, flag='landmark_failed', affine=affine)
                else:
                    points = points * np.array([options.face_size / width, options.face_size / height])
                    cache.add(rel, points, 'ok', affine=affine)
                    usable += 1
            else:
                landmarker = landmarker or FaceLandmarker(options)
                usable += _landmarks_of_image(landmarker, image, rel, cache, options)
            since_save += 1
            bar.set_postfix(usable=usable)
            if since_save >= options.save_every:
                cache.save(cache_path)
                since_save = 0
            if max_faces is not None and usable >= max_faces:
                break
    finally:  # also on Ctrl-C: what was found is kept
        if todo or not Path(cache_path).is_file():
            cache.save(cache_path)
    if todo:
        logger.info('landmarks: %d images in %.1f s; cache %s: %s', bar.n, time.time() - started, cache_path,
                    cache.counts())
    return cache


def _landmarks_of_image(landmarker: FaceLandmarker, image, rel: str, cache: LandmarkCache,
                        options: FaceOptions) -> int:
    """Add the entries of one image to the cache; returns the number of usable faces."""
    size = options.face_size
    if not options.align:
        height, width = image.shape[:2]
        if abs(height - width) > 0.02 * max(height, width):
            logger.warning('%s is %dx%d, not square: is it an aligned face? (use --align for photos)',
                           rel, width, height)
        points, flag = landmarker.aligned_landmarks(resize_aligned_face(image, size))
        cache.add(rel, points, flag, affine=resize_affine(width, height, size))
        if flag != 'ok':
            logger.warning('skipping %s: %s', rel, flag.replace('_', ' '))
        return int(flag == 'ok')
    faces = landmarker.photo_faces(image)
    if not faces:
        logger.warning('skipping %s: no face found', rel)
        cache.add(rel, flag='no_face')
        return 0
    usable = 0
    for index, (face, affine) in enumerate(faces):
        points, flag = landmarker.aligned_landmarks(face, check_template=True)
        cache.add(rel, points, flag, face_index=index, affine=affine)
        usable += flag == 'ok'
        if flag != 'ok':
            logger.warning('skipping face %d of %s: %s', index, rel, flag.replace('_', ' '))
    return usable
