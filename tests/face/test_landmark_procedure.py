"""One landmark procedure: restoration, dictionary building, training data and evaluation give the
same 68 landmarks (and so the same component boxes) for the same aligned face."""
from __future__ import annotations

import numpy as np
import pytest

from dfdnet.face.components import component_boxes
from dfdnet.face.landmarks import LandmarkError, aligned_face_box, aligned_face_landmarks
from dfdnet.utils.image_io import read_rgb, write_image


def test_every_consumer_gets_the_same_landmarks(shared_data, tmp_path):
    from dfdnet.data.face_dataset import load_landmarks
    from dfdnet.data.folder_landmarks import FaceLandmarker, FaceOptions
    from dfdnet.metrics.face_dlib import DlibFaceModels
    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.pipeline.photo import build_preparer

    face = read_rgb(sorted((shared_data / 'faces_hq' / 'celebahq_512').iterdir())[0])
    assert face.shape == (512, 512, 3)
    restore = build_preparer(RestoreOptions(aligned=True), 512).aligned_face(face).landmarks68
    dictionary, flag = FaceLandmarker(FaceOptions()).aligned_landmarks(face)
    path = write_image(tmp_path / 'face.png', face)
    training = load_landmarks([path], tmp_path / 'landmarks.npz')[path]  # made there: the file is new
    evaluation = DlibFaceModels().landmarks68(face)
    assert flag == 'ok'
    for points in (dictionary, training, evaluation):
        assert np.allclose(points, restore, atol=1e-3)  # the training cache stores float32
    assert np.array_equal(component_boxes(training, 512), component_boxes(restore, 512))


def test_aligned_face_landmarks_checks_what_it_returns():
    face = np.zeros((256, 256, 3), np.uint8)
    box_seen = []

    def centred(image, box):
        box_seen.append(np.asarray(box))
        return np.random.default_rng(0).uniform(60, 200, (68, 2))

    points = aligned_face_landmarks(face, centred)
    assert points.shape == (68, 2) and np.allclose(box_seen[0], aligned_face_box(256))
    with pytest.raises(LandmarkError, match='outside'):
        aligned_face_landmarks(face, lambda image, box: np.full((68, 2), 400.0))
    with pytest.raises(LandmarkError, match='68, 2|NaN'):
        aligned_face_landmarks(face, lambda image, box: np.full((5, 2), 100.0))
    with pytest.raises(LandmarkError, match='NaN'):
        aligned_face_landmarks(face, lambda image, box: np.full((68, 2), np.nan))
    template = np.array([[200, 100], [180, 100], [60, 100], [80, 100], [128, 160]], dtype=np.float64)
    with pytest.raises(LandmarkError, match='from the template'):
        aligned_face_landmarks(face, centred, template=template + np.array([0, 90]))
