"""A fixed, seeded degraded validation set: made once from held-out faces, written to disk, reused.

Folder layout: ``gt/<stem>.png``, ``lq/<stem>.png`` (S x S RGB) and ``manifest.json`` with the
seed, image size, degradation settings, source files, component boxes and drawn parameters.
An existing folder is reused only if its manifest matches the request; it is never overwritten.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dfdnet.data.degradation_pipeline import DegradationConfig, DegradationPipeline
from dfdnet.data.face_dataset import read_face
from dfdnet.face.alignment import resize_aligned_face
from dfdnet.face.components import component_boxes
from dfdnet.utils.files import atomic_path
from dfdnet.utils.image_io import write_image
from dfdnet.utils.pixels import to_network, to_uint8

logger = logging.getLogger(__name__)

MANIFEST = 'manifest.json'


def make_validation_set(folder, files, landmarks: dict, image_size: int, degradation: DegradationConfig,
                        seed: int, landmark_size: int = 512) -> Path:
    """Write (or reuse) the validation set of ``files`` in ``folder``; returns the folder.

    Face i is degraded with ``numpy.random.default_rng((seed, i))`` (no flip); faces without
    landmarks are skipped with a warning.
    """
    folder = Path(folder)
    faces = [(Path(f), landmarks[Path(f)]) for f in files if Path(f) in landmarks]
    if len(faces) < len(files):
        logger.warning('%d held-out faces have no landmarks and are left out of the validation set',
                       len(files) - len(faces))
    request = {'seed': int(seed), 'image_size': int(image_size), 'degradation': dataclasses.asdict(degradation),
               'sources': [str(path.resolve()) for path, _ in faces]}
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in request} != json.loads(json.dumps(request)):
            raise ValueError(f'validation set {folder} was made with other settings (seed, size, degradation or '
                             'faces); delete it or set val.folder to a new folder')
        logger.info('reusing the validation set in %s (%d faces)', folder, len(manifest['items']))
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f'{folder} exists, is not empty and has no {MANIFEST}: refusing to write into it')
    pipeline = DegradationPipeline(degradation)
    items = []
    for i, (path, points) in enumerate(faces):
        img = resize_aligned_face(read_face(path), image_size, enlarge='area')
        points = np.asarray(points, np.float64) * (image_size / landmark_size)
        sample = pipeline(img, np.random.default_rng((int(seed), i)))
        stem = f'{i:04d}_{path.stem}'
        write_image(folder / 'gt' / f'{stem}.png', to_uint8(sample.gt))
        write_image(folder / 'lq' / f'{stem}.png', to_uint8(sample.lq))
        items.append({'name': stem, 'source': str(path.resolve()),
                      'boxes': component_boxes(points, image_size).tolist(),
                      'params': sample.params})
    if not items:
        raise ValueError('the validation set would be empty (no held-out face with landmarks)')
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps({**request, 'items': items}, indent=1))
    logger.info('wrote a validation set of %d faces to %s', len(items), folder)
    return folder


class ValidationDataset(Dataset):
    """Reads a folder made by ``make_validation_set``: dict(lq, gt, boxes, path) like ``FaceDataset``, with
    ``group``: 'clean' for the clean/mild faces (degradation ``clean_prob``), 'degraded' otherwise."""

    def __init__(self, folder):
        self.folder = Path(folder)
        manifest_path = self.folder / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f'no {MANIFEST} in validation folder {self.folder}')
        self.manifest = json.loads(manifest_path.read_text())
        self.items = self.manifest['items']

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        return {'lq': to_network(read_face(self.folder / 'lq' / f'{item["name"]}.png')),
                'gt': to_network(read_face(self.folder / 'gt' / f'{item["name"]}.png')),
                'boxes': torch.tensor(item['boxes'], dtype=torch.int64), 'path': item['name'], 'index': index,
                'group': 'clean' if 'clean_scale' in item.get('params', {}) else 'degraded'}
