"""On-disk store of component features, one float16 memmap per (part, feature size), resumable.

Folder layout (``<cache>/features/``):

* ``{part}_{fsize}.npy``: float16 ``(num_samples * views, C * s * s)``, row ``i * views + v``
  is sample ``i`` (v = 1: its mirror image); written in place as the work goes on;
* ``state.npz``: ``done`` (num_samples,) bool and ``valid`` (rows, 16) bool (the crop of that
  part and level was non-empty), written atomically after the memmaps are flushed, so a row
  counts only once it is safely on disk;
* ``manifest.json``: what the features depend on (encoder weights hash, face size, part
  sizes, flip, sample list hash). A different manifest starts the store afresh.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from dfdnet.utils.files import atomic_path

logger = logging.getLogger(__name__)

FLOAT16_MAX = float(np.finfo(np.float16).max)


def samples_hash(keys: list) -> str:
    return hashlib.sha256('\n'.join(keys).encode()).hexdigest()


class FeatureStore:
    """Features of ``num_samples`` samples x ``views`` for every key of ``layout``.

    layout: {(part, feature size): (level, channels, side)}; manifest: JSON-able dict that
    identifies the content (a stored store with another manifest is discarded).
    """

    def __init__(self, folder, num_samples: int, views: int, layout: dict, manifest: dict):
        self.folder = Path(folder)
        self.num_samples, self.views = int(num_samples), int(views)
        self.keys = list(layout)
        self.layout = layout
        self.manifest = dict(manifest, num_samples=self.num_samples, views=self.views, format=1)
        self.rows = self.num_samples * self.views
        self.overflowed = 0
        self._open()

    def _path(self, part, fsize) -> Path:
        return self.folder / f'{part}_{fsize}.npy'

    def _open(self) -> None:
        manifest_path = self.folder / 'manifest.json'
        reuse = False
        if manifest_path.is_file():
            try:
                stored = json.loads(manifest_path.read_text())
            except (OSError, ValueError):
                stored = None
            reuse = stored == self.manifest and (self.folder / 'state.npz').is_file() and \
                all(self._path(*k).is_file() for k in self.keys)
            if not reuse:
                logger.warning('feature cache %s was made with other settings or faces: recomputing it', self.folder)
        if reuse:
            with np.load(self.folder / 'state.npz', allow_pickle=False) as state:
                self.done, self.valid = state['done'].copy(), state['valid'].copy()
            self.arrays = {k: np.load(self._path(*k), mmap_mode='r+') for k in self.keys}
            for k, arr in self.arrays.items():
                if arr.shape != (self.rows, self._dim(k)) or arr.dtype != np.float16:
                    raise ValueError(f'{self._path(*k)}: shape {arr.shape} {arr.dtype} does not match its manifest')
            logger.info('feature cache %s: reusing %d of %d samples', self.folder, int(self.done.sum()),
                        self.num_samples)
            return
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        self.done = np.zeros(self.num_samples, dtype=bool)
        self.valid = np.zeros((self.rows, len(self.keys)), dtype=bool)
        self.arrays = {k: np.lib.format.open_memmap(self._path(*k), mode='w+', dtype=np.float16,
                                                    shape=(self.rows, self._dim(k))) for k in self.keys}
        self.commit()
        with atomic_path(manifest_path) as tmp:
            tmp.write_text(json.dumps(self.manifest, indent=1))

    def _dim(self, key) -> int:
        _, channels, side = self.layout[key]
        return channels * side * side

    def nbytes(self) -> int:
        return sum(self.rows * self._dim(k) * 2 for k in self.keys)

    def write(self, sample_index: int, view: int, crops: dict) -> None:
        """Store one view of one sample: crops {key: ((C, s, s) float32 tensor/array, valid bool)}."""
        row = sample_index * self.views + view
        for j, key in enumerate(self.keys):
            values, ok = crops[key]
            values = np.asarray(values, dtype=np.float32).reshape(-1)
            if np.abs(values).max(initial=0) > FLOAT16_MAX:
                self.overflowed += 1
                values = np.clip(values, -FLOAT16_MAX, FLOAT16_MAX)
            self.arrays[key][row] = values.astype(np.float16)
            self.valid[row, j] = bool(ok)

    def mark_done(self, sample_index: int) -> None:
        self.done[sample_index] = True

    def commit(self) -> None:
        """Flush the memmaps, then record which samples are complete (atomically)."""
        for arr in self.arrays.values():
            arr.flush()
        with atomic_path(self.folder / 'state.npz') as tmp:
            with open(tmp, 'wb') as fh:
                np.savez(fh, done=self.done, valid=self.valid)

    def usable_rows(self, key) -> np.ndarray:
        """Row indices of complete samples whose crop for ``key`` is valid."""
        j = self.keys.index(key)
        rows_done = np.repeat(self.done, self.views)
        return np.flatnonzero(rows_done & self.valid[:, j])

    def features(self, key):
        """(n, D) float16 array of the usable rows: the memmap itself when every row is usable,
        else a compacted memmap written next to it."""
        rows = self.usable_rows(key)
        array = np.load(self._path(*key), mmap_mode='r')
        if len(rows) == self.rows:
            return array
        compact_path = self.folder / f'{key[0]}_{key[1]}.usable.npy'
        compact = np.lib.format.open_memmap(compact_path, mode='w+', dtype=np.float16,
                                            shape=(len(rows), array.shape[1]))
        for start in range(0, len(rows), 256):
            compact[start:start + 256] = array[rows[start:start + 256]]
        compact.flush()
        return np.load(compact_path, mmap_mode='r')
