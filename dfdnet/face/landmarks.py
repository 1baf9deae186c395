"""Facial landmarks: dlib's 5- and 68-point shape predictors, an optional local FAN model,
and the released ``<image name>.txt`` landmark files (68 rows "x y").

The released code ran face-alignment's FAN on the aligned crop; its weights download at run
time, so here dlib's 68-point model is the offline default and FAN is used only from a
TorchScript file the user already has (face-alignment's ``2DFAN4`` .zip). Nothing downloads.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dfdnet.face.alignment import ALIGNED_FACE_BOX_512
from dfdnet.face.components import LANDMARK_GROUPS, component_boxes
from dfdnet.face.detection import box_to_rect

logger = logging.getLogger(__name__)

LANDMARK_MODELS = ('dlib', 'fan')
# Names the procedure of ``aligned_face_landmarks`` in landmark caches, so that landmarks made
# another way (e.g. on a detector's box, as before this procedure) are not reused as its output.
ALIGNED_LANDMARK_PROCEDURE = 'dlib68-aligned-box'
MAX_EYE_OFFSET = 1.0 / 6.0  # of the face size: the eye centres' distance from the template's


class LandmarkError(ValueError):
    """Landmarks could not be found or read (the message says which face or file)."""


def dlib_model_path(num_points: int, path=None) -> Path:
    """Path of dlib's ``num_points`` (5 or 68) shape predictor: ``path`` or face_recognition_models'."""
    if path is not None:
        return Path(path)
    import face_recognition_models

    if num_points == 5:
        return Path(face_recognition_models.pose_predictor_five_point_model_location())
    if num_points == 68:
        return Path(face_recognition_models.pose_predictor_model_location())
    raise ValueError(f'dlib shape predictors have 5 or 68 points, not {num_points}')


class DlibLandmarker:
    """dlib shape predictor: ``landmarker(image, box)`` -> (N, 2) float64 (x, y) pixels.

    image: (H, W, 3) RGB or (H, W) grey, uint8; box: [left, top, right, bottom] of the face.
    """

    def __init__(self, num_points: int = 68, model_path=None):
        import dlib

        path = dlib_model_path(num_points, model_path)
        if not path.is_file():
            raise FileNotFoundError(f'dlib shape predictor not found: {path}')
        self._predictor = dlib.shape_predictor(str(path))
        probe = self._predictor(np.zeros((32, 32), np.uint8), dlib.rectangle(4, 4, 27, 27))
        self.num_points = probe.num_parts  # the predictor object does not expose its point count
        if self.num_points != num_points:
            raise ValueError(f'{path} predicts {self.num_points} points, expected {num_points}')

    def __call__(self, image: np.ndarray, box) -> np.ndarray:
        shape = self._predictor(np.ascontiguousarray(image), box_to_rect(box))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


class FANLandmarker:
    """face-alignment's 2D-FAN (68 points) from a local TorchScript file.

    The face is cropped as face-alignment does (centre moved up by 12% of the box height,
    side 200 * scale with scale = (width + height) / 195, resized to 256) and the 64 x 64
    heatmaps are decoded with its quarter-pixel refinement.
    """

    INPUT_SIZE = 256
    HEATMAP_SIZE = 64

    def __init__(self, weights_path, device='cpu'):
        import torch

        if weights_path is None:
            raise LandmarkError('the FAN landmark model needs a local weights file (--fan_weights); '
                                'this project never downloads it. Use the dlib 68-point model instead.')
        path = Path(weights_path)
        if not path.is_file():
            raise LandmarkError(f'FAN weights file not found: {path}')
        try:
            self._net = torch.jit.load(str(path), map_location=device).eval()
        except Exception as exc:
            raise LandmarkError(f'cannot load FAN weights {path} (expected face-alignment\'s TorchScript '
                                f'2DFAN4 file): {exc}') from exc
        self.device = device
        self.num_points = 68

    @staticmethod
    def crop_affine(box) -> np.ndarray:
        """(2, 3) affine from the image to the 256 FAN input for a box [l, t, r, b]."""
        l, t, r, b = np.asarray(box, dtype=np.float64)
        centre = np.array([(l + r) / 2.0, (t + b) / 2.0 - (b - t) * 0.12])
        side = 200.0 * ((r - l) + (b - t)) / 195.0
        scale = FANLandmarker.INPUT_SIZE / side
        return np.array([[scale, 0.0, FANLandmarker.INPUT_SIZE / 2.0 - scale * centre[0]],
                         [0.0, scale, FANLandmarker.INPUT_SIZE / 2.0 - scale * centre[1]]])

    @staticmethod
    def decode_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
        """(68, 64, 64) heatmaps -> (68, 2) (x, y) in 256-px crop coordinates (pixel centres)."""
        num, height, width = heatmaps.shape
        flat = heatmaps.reshape(num, -1).argmax(axis=1)
        ys, xs = np.divmod(flat, width)
        points = np.stack([xs, ys], axis=1).astype(np.float64)
        for i, (x, y) in enumerate(zip(xs, ys)):
            if 0 < x < width - 1:
                points[i, 0] += 0.25 * np.sign(heatmaps[i, y, x + 1] - heatmaps[i, y, x - 1])
            if 0 < y < height - 1:
                points[i, 1] += 0.25 * np.sign(heatmaps[i, y + 1, x] - heatmaps[i, y - 1, x])
        stride = FANLandmarker.INPUT_SIZE / width
        return (points + 0.5) * stride - 0.5

    def __call__(self, image: np.ndarray, box) -> np.ndarray:
        import cv2
        import torch

        from dfdnet.face.alignment import invert_affine, transform_points

        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        affine = self.crop_affine(box)
        crop = cv2.warpAffine(image, affine, (self.INPUT_SIZE, self.INPUT_SIZE), flags=cv2.INTER_LINEAR)
        tensor = torch.from_numpy(crop).permute(2, 0, 1)[None].float().div(255.0).to(self.device)
        with torch.inference_mode():
            out = self._net(tensor)
        if isinstance(out, (list, tuple)):
            out = out[-1]
        heatmaps = out[0].float().cpu().numpy()
        if heatmaps.shape[0] != 68:
            raise LandmarkError(f'FAN model returned {heatmaps.shape[0]} heatmaps, expected 68')
        return transform_points(self.decode_heatmaps(heatmaps), invert_affine(affine))


def build_landmarker(kind: str = 'dlib', model_path=None, device='cpu'):
    """68-point landmarker on aligned crops: 'dlib' (``model_path`` overrides the .dat) or 'fan'
    (``model_path`` = local TorchScript weights, required)."""
    if kind == 'dlib':
        return DlibLandmarker(68, model_path)
    if kind == 'fan':
        return FANLandmarker(model_path, device=device)
    raise ValueError(f'unknown landmark model {kind!r}; choose one of {LANDMARK_MODELS}')


MAX_LANDMARK_FILE_BYTES = 64 * 1024  # 68 rows "x y" take about 1 KB


def read_landmarks(path, num_points: int = 68) -> np.ndarray:
    """Read a released landmark file (``num_points`` rows "x y") -> (num_points, 2) float64.

    ``LandmarkError`` says what is wrong and where (line and column), never what the file holds:
    the file may be a link to another file, whose content must not reach the console or the results.
    """
    path = Path(path)
    expected = f'expected {num_points} rows "x y" of finite numbers'
    if not path.is_file():
        raise LandmarkError(f'landmark file {path}: not found or not a regular file ({expected})')
    try:
        with open(path, 'rb') as fh:
            data = fh.read(MAX_LANDMARK_FILE_BYTES + 1)
    except OSError as exc:
        raise LandmarkError(f'cannot read landmark file {path}: {exc.strerror or type(exc).__name__}') from exc
    if len(data) > MAX_LANDMARK_FILE_BYTES:
        raise LandmarkError(f'landmark file {path}: larger than {MAX_LANDMARK_FILE_BYTES // 1024} KB ({expected})')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise LandmarkError(f'landmark file {path}: not a text file (byte {exc.start}; {expected})') from None
    rows = []
    for line_number, line in enumerate(text.splitlines(), 1):
        fields = line.split('#', 1)[0].split()
        if not fields:
            continue
        row = []
        for column, field in enumerate(fields, 1):
            try:
                row.append(float(field))
            except ValueError:
                raise LandmarkError(f'landmark file {path}: line {line_number}, column {column} is not a number '
                                    f'({expected})') from None
        rows.append(row)
    if len(rows) != num_points or any(len(row) != 2 for row in rows):
        counts = sorted({len(row) for row in rows})
        raise LandmarkError(f'landmark file {path}: {len(rows)} rows of {counts} value(s), {expected}')
    points = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(points)):
        raise LandmarkError(f'landmark file {path}: NaN or infinite values ({expected})')
    return points


def write_landmarks(path, points) -> Path:
    """Write landmarks (N, 2) as N rows "x y" (3 decimals, as released), atomically."""
    from dfdnet.utils.files import atomic_path

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f'landmarks must be (N, 2), got {points.shape}')
    path = Path(path)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, points, fmt='%.3f')
    return path


def landmark_file_for(image_path, landmarks_dir) -> Path | None:
    """``landmarks_dir/<image file name>.txt`` (released naming), else ``<stem>.txt``; None if neither exists."""
    image_path = Path(image_path)
    for name in (image_path.name + '.txt', image_path.stem + '.txt'):
        candidate = Path(landmarks_dir) / name
        if candidate.is_file():
            return candidate
    return None


def aligned_face_box(size: int) -> np.ndarray:
    """[left, top, right, bottom] of the face in an aligned ``size``-px crop (ALIGNED_FACE_BOX_512 scaled)."""
    return ALIGNED_FACE_BOX_512 * (size / 512.0)


def aligned_face_landmarks(face: np.ndarray, landmarker, template=None) -> np.ndarray:
    """68 landmarks of an aligned (S, S) face: the one procedure of restoration, dictionary
    building, training data and evaluation, so that each sees the same points for the same face.

    The landmark model runs on ``aligned_face_box(S)`` (no detector: its box varies with the
    degradation and between detectors, and moved the points by up to 8 px). Checked: finite, inside
    the face (10 % margin) with non-empty component boxes and, with a (5, 2) five-point
    ``template``, both eye centres within ``MAX_EYE_OFFSET`` x S of the template's. Returns (68, 2)
    float64 (x, y) pixels; ``LandmarkError`` saying what failed.
    """
    size = face.shape[1]
    points = np.asarray(landmarker(face, aligned_face_box(size)), dtype=np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise LandmarkError(f'the landmark model returned {points.shape} points (or NaN)')
    margin = 0.1 * size
    if points.min() < -margin or points.max() > size + margin:
        raise LandmarkError('68-point landmarks fall outside the face')
    boxes = component_boxes(points, size)
    if not (np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])):
        raise LandmarkError('68-point landmarks give an empty component box')
    if template is not None:
        template = np.asarray(template, dtype=np.float64)
        eyes = np.stack([points[LANDMARK_GROUPS['left_eye'][5:]].mean(0),
                         points[LANDMARK_GROUPS['right_eye'][5:]].mean(0)])
        expected = np.stack([template[2:4].mean(0), template[0:2].mean(0)])
        offset = float(np.linalg.norm(eyes - expected, axis=1).max())
        if offset > MAX_EYE_OFFSET * size:
            raise LandmarkError(f'68-point landmarks put the eyes {offset:.0f} px from the template')
    return points
