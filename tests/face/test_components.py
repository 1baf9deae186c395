"""component_boxes: the released landmark-to-box rule (reference §2)."""
import numpy as np
import pytest

from dfdnet import component_boxes
from dfdnet.face.components import FLIP_PERMUTATION_68, flip_landmarks


def _released_rule(landmarks):
    """The rule as the reference states it, written out once more, independently."""
    groups = [list(range(17, 22)) + list(range(36, 42)), list(range(22, 27)) + list(range(42, 48)),
              list(range(29, 36)), list(range(48, 68))]
    rows = []
    for idx in groups:
        pts = landmarks[idx]
        cx, cy = pts[:, 0].mean(), pts[:, 1].mean()
        half = max(max(pts[:, 0].max() - pts[:, 0].min(), pts[:, 1].max() - pts[:, 1].min()) / 2, 16)
        rows.append([int(cx - half + 1), int(cy - half + 1), int(cx + half), int(cy + half)])
    return np.array(rows)


def test_hand_computed_box():
    lm = np.zeros((68, 2))
    lm[:] = (256.0, 256.0)
    lm[list(range(17, 22)) + list(range(36, 42))] = (100.5, 200.25)  # a collapsed left eye: half = 16
    lm[48:68, 0] = np.linspace(200, 300, 20)  # mouth 100 px wide: half = 50
    lm[48:68, 1] = 400.0
    boxes = component_boxes(lm)
    assert boxes.dtype.kind == 'i' and boxes.shape == (4, 4)
    assert boxes[0].tolist() == [85, 185, 116, 216]      # int(84.5+1), int(184.25+1), int(116.5), int(216.25)
    assert boxes[3].tolist() == [201, 351, 300, 450]


def test_truncation_towards_zero_like_numpy_astype():
    lm = np.full((68, 2), 256.0)
    lm[29:36] = (14.7, 14.7)  # nose near the corner: x1 = 14.7 - 16 + 1 = -0.3 -> 0 (not -1)
    assert component_boxes(lm)[2].tolist() == [0, 0, 30, 30]


def test_released_landmark_files(shared_data):
    folder = shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks'
    files = sorted(folder.glob('*.txt'))
    assert len(files) >= 10
    for path in files:
        lm = np.loadtxt(path)
        boxes = component_boxes(lm)
        np.testing.assert_array_equal(boxes, _released_rule(lm), err_msg=str(path))
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert np.all(boxes >= 0) and np.all(boxes <= 512)
        assert np.all(boxes[:, 2] - boxes[:, 0] >= 31)  # minimum half-size 16
        assert boxes[0, 0] < boxes[1, 0]  # "left eye" is the one on the image's left


def test_image_size_scales_minimum():
    lm = np.full((68, 2), 128.0)
    widths = component_boxes(lm, image_size=256)[:, 2] - component_boxes(lm, image_size=256)[:, 0]
    assert widths.tolist() == [15, 15, 15, 15]  # half = 8: int(136) - int(121)


def test_bad_landmarks():
    with pytest.raises(ValueError, match=r'\(68, 2\)'):
        component_boxes(np.zeros((5, 2)))
    lm = np.zeros((68, 2))
    lm[3, 0] = np.nan
    with pytest.raises(ValueError, match='non-finite'):
        component_boxes(lm)


def test_flip_swaps_eyes():
    rng = np.random.default_rng(0)
    lm = rng.uniform(100, 400, (68, 2))
    flipped = flip_landmarks(lm, 512)
    np.testing.assert_allclose(flip_landmarks(flipped, 512), lm)
    assert sorted(FLIP_PERMUTATION_68.tolist()) == list(range(68))
    b, fb = component_boxes(lm), component_boxes(flipped)
    # the mirrored left eye is the right eye: same width, mirrored position
    assert fb[1, 2] - fb[1, 0] == b[0, 2] - b[0, 0]
    assert abs((511 - (b[0, 0] + b[0, 2]) / 2) - (fb[1, 0] + fb[1, 2]) / 2) <= 1.5
