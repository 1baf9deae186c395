"""Training data: aligned HQ faces + 68 landmarks, flipped and degraded on the fly.

A sample is ``dict(lq, gt, boxes, path, index)``: ``lq``/``gt`` (3, S, S) float32 RGB in
[-1, 1], ``boxes`` (4, 4) int64 component boxes ``[x1, y1, x2, y2]`` (left eye, right eye,
nose, mouth) in S-pixel coordinates. The randomness of a sample (flip and degradation) comes
from ``numpy.random.default_rng((seed, epoch, index))``: the sampler passes ``epoch * N + index``
so that epochs differ while every sample stays reproducible, with any number of workers.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dfdnet.data.degradation_pipeline import DegradationPipeline
from dfdnet.face.components import component_boxes, flip_landmarks
from dfdnet.face.alignment import resize_aligned_face
from dfdnet.face.landmarks import ALIGNED_LANDMARK_PROCEDURE
from dfdnet.utils.image_io import read_rgb
from dfdnet.utils.pixels import to_float01, to_network

logger = logging.getLogger(__name__)

def split_train_val(files: list, val_count: int, max_images: int | None = None) -> tuple[list, list]:
    """The last ``val_count`` files are held out for validation; training uses up to ``max_images`` of the rest."""
    if val_count < 0 or val_count >= len(files):
        raise ValueError(f'val_count must be in [0, {len(files) - 1}] for {len(files)} images, got {val_count}')
    train, val = files[:len(files) - val_count], files[len(files) - val_count:]
    if max_images is not None:
        train = train[:max_images]
    return train, val


def read_face(path) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] of an image file; ImageReadError naming the file if unreadable."""
    return to_float01(read_rgb(path))


def load_landmarks(files: list, source, landmark_size: int = 512, cache_out=None) -> dict:
    """Landmarks (68, 2) in ``landmark_size`` pixels for ``files``: {path: array}.

    ``source``: a landmark cache ``.npz`` (``LandmarkCache``; detected and saved there if the file
    does not exist yet), a folder of released ``<name>.txt`` files, or None to find them
    (``dfdnet.data.folder_landmarks.compute_landmarks``, as dictionary building does) and save the
    cache to ``cache_out`` (reused on the next run). Faces without landmarks are left out and logged.
    """
    from dfdnet.data.folder_landmarks import FaceOptions, compute_landmarks
    from dfdnet.data.landmark_cache import LandmarkCache, load_landmark_folder

    files = [Path(f) for f in files]
    root = Path(os.path.commonpath([str(f.resolve().parent) for f in files])) if files else Path('.')
    if source is not None and str(source).endswith('.npz') and not Path(source).exists():
        source, cache_out = None, source  # a cache file to make: detect once, save it there
    if source is not None and Path(source).is_dir():
        by_name = load_landmark_folder(source, [f.name for f in files])
        found = {f: by_name[f.name] for f in files if f.name in by_name}
    elif source is not None:
        cache = LandmarkCache.load(source)
        if cache.model not in ('txt', ALIGNED_LANDMARK_PROCEDURE):
            raise ValueError(f'{source}: its landmarks were made by {cache.model!r}, not by {ALIGNED_LANDMARK_PROCEDURE!r} '
                             '(the procedure restoration uses); delete the file to find them again')
        if not all(_under(f, cache.root) for f in files):
            cache = LandmarkCache.load(source, root=root)
        found = _from_cache(cache, files, landmark_size, source)
    else:
        if cache_out is None:
            raise ValueError('no landmark source and nowhere to cache detected landmarks')
        cache = LandmarkCache.load_or_new(cache_out, root, face_size=landmark_size, model=ALIGNED_LANDMARK_PROCEDURE)
        compute_landmarks([f.resolve() for f in files], root, cache, cache_out, FaceOptions(face_size=landmark_size))
        found = _from_cache(cache, files, landmark_size, cache_out)
    missing = len(files) - len(found)
    if missing:
        logger.warning('%d of %d faces have no landmarks in %s and are skipped', missing, len(files),
                       source or cache_out)
    return found


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _from_cache(cache, files, landmark_size, where) -> dict:
    if cache.face_size != landmark_size:
        raise ValueError(f'{where}: landmarks are for {cache.face_size}-px faces, train_data.landmark_size is '
                         f'{landmark_size}')
    found = {}
    for f in files:
        points = cache.landmarks(f.resolve())
        if points is not None:
            found[f] = points
    return found


class FaceDataset(Dataset):
    """Aligned HQ faces with landmarks, degraded on the fly (see the module docstring).

    Args:
        files: image paths (square aligned faces of any size; resized to ``image_size``).
        landmarks: {path: (68, 2)} in ``landmark_size`` pixels, one per file.
        image_size: output side S (512 or 256). flip_prob: chance of a horizontal flip
            (landmarks mirrored with the left/right relabelling, so the boxes swap too).
        degradation: the random pipeline; seed: base of the per-sample random generator.
    ``dataset[i]`` accepts any non-negative int: ``i = epoch * len(dataset) + index``.
    """

    def __init__(self, files, landmarks: dict, image_size: int, degradation: DegradationPipeline,
                 flip_prob: float = 0.5, seed: int = 0, landmark_size: int = 512):
        self.files = [Path(f) for f in files]
        missing = [str(f) for f in self.files if f not in landmarks]
        if missing:
            raise ValueError(f'no landmarks for {len(missing)} faces, e.g. {missing[:3]}')
        if not self.files:
            raise ValueError('FaceDataset needs at least one face')
        self.landmarks = np.stack([np.asarray(landmarks[f], np.float64) for f in self.files]) * (
            image_size / landmark_size)
        self.image_size = int(image_size)
        self.degradation = degradation
        self.flip_prob = float(flip_prob)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.files)

    def load_hq(self, index: int) -> np.ndarray:
        """The HQ face ``index`` as float32 (S, S, 3) RGB in [0, 1]."""
        path = self.files[index]
        img = read_face(path)
        if img.shape[0] != img.shape[1]:
            raise ValueError(f'{path}: aligned faces must be square, got {img.shape[1]}x{img.shape[0]}')
        return resize_aligned_face(img, self.image_size)

    def __getitem__(self, item: int) -> dict:
        epoch, index = divmod(int(item), len(self.files))
        for attempt in range(len(self.files)):
            current = (index + attempt) % len(self.files)
            try:
                hq = self.load_hq(current)
                break
            except ValueError as exc:  # a bad file must not stop a long run: use the next face
                logger.error('%s; using the next face instead', exc)
        else:
            raise RuntimeError('no readable face in the training set')
        rng = np.random.default_rng((self.seed, epoch, current))
        points = self.landmarks[current]
        if rng.random() < self.flip_prob:
            hq = np.ascontiguousarray(hq[:, ::-1])
            points = flip_landmarks(points, self.image_size)
        sample = self.degradation(hq, rng)
        return {'lq': to_network(sample.lq), 'gt': to_network(sample.gt),
                'boxes': torch.from_numpy(component_boxes(points, self.image_size)),
                'path': str(self.files[current]), 'index': item}


class EpochSampler(DistributedSampler):
    """``DistributedSampler`` that yields ``epoch * N + index`` and can skip the first samples.

    Works for one process too (``num_replicas=1, rank=0``). ``set_start(k)`` skips the first
    ``k`` samples of this rank in the next pass only (used to resume mid-epoch).
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self):
        indices = list(super().__iter__())[self.start:]
        self.start = 0
        offset = self.epoch * len(self.dataset)
        return iter([offset + i for i in indices])


def _worker_init(_worker_id: int) -> None:
    # One torch thread per worker. (Do not call cv2.setNumThreads here: in a forked child whose
    # parent already ran OpenCV's thread pool it deadlocks.)
    torch.set_num_threads(1)


def build_train_loader(dataset: Dataset, sampler, batch_size: int, num_workers: int = 4, pin_memory: bool = True,
                       persistent_workers: bool = True, prefetch_factor: int = 2) -> DataLoader:
    """DataLoader with full batches only; workers, pinned memory and persistent workers as asked."""
    extra = {}
    if num_workers > 0:
        extra = {'persistent_workers': persistent_workers, 'prefetch_factor': prefetch_factor,
                 'worker_init_fn': _worker_init}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, drop_last=True, **extra)
