"""On-disk store of component features, one float16 memmap per (part, feature size), resumable.

Folder layout (``<cache>/features/``):

* ``{part}_{fsize}.npy``: float16 ``(num_samples * views, C * s * s)``, row ``i * views + v``
  is sample ``i`` (v = 1: its mirror image); written in place as the work goes on;
* ``state.npz``: ``done`` (num_samples,) bool, ``valid`` (rows, 16) bool (the crop of that
  part and level was non-empty) and ``crc`` (rows, 16) uint32 (CRC-32 of each stored row),
  written atomically after the memmaps are flushed, so a row counts only once it is safely on disk;
* ``manifest.json``: what the features depend on (encoder weights hash, face size, part
  sizes, flip, sample list hash). A different manifest starts the store afresh.

Before reuse every file is checked: the state and manifest must parse, each memmap's header
and size must match the manifest (numpy would zero-extend a truncated file) and every done row
its CRC. A bad file starts the store afresh, a bad row recomputes its sample; both are logged.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zlib
from pathlib import Path

import numpy as np

from dfdnet.errors import UnreadableFileError
from dfdnet.utils.files import atomic_path, check_npy, read_json, read_npz

logger = logging.getLogger(__name__)

FLOAT16_MAX = float(np.finfo(np.float16).max)
FORMAT = 2  # 2: state.npz has per-row CRCs
VERIFY_ROWS = 64  # rows read at once when checking the CRCs


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
        self.manifest = dict(manifest, num_samples=self.num_samples, views=self.views, format=FORMAT)
        self.rows = self.num_samples * self.views
        self.overflowed = 0
        self._open()

    def _path(self, part, fsize) -> Path:
        return self.folder / f'{part}_{fsize}.npy'

    def _open(self) -> None:
        try:
            if self._reuse():
                return
        except UnreadableFileError as exc:
            logger.warning('feature cache %s cannot be reused, recomputing it: %s', self.folder, exc)
        self._create()

    def _reuse(self) -> bool:
        """Open the stored features when they match the manifest (False: nothing to reuse).
        Raises ``UnreadableFileError`` naming a file that is missing, truncated or corrupt."""
        manifest_path = self.folder / 'manifest.json'
        if not manifest_path.is_file():
            return False
        if read_json(manifest_path, 'feature cache manifest') != self.manifest:
            logger.warning('feature cache %s was made with other settings or faces: recomputing it', self.folder)
            return False
        state_path = self.folder / 'state.npz'
        state = read_npz(state_path, 'feature cache state')
        table = (self.rows, len(self.keys))
        for name, shape, dtype in (('done', (self.num_samples,), bool), ('valid', table, bool),
                                   ('crc', table, np.uint32)):
            found = state.get(name)
            if found is None or found.shape != shape or found.dtype != dtype:
                stored = 'missing' if found is None else f'{found.shape} {found.dtype}'
                raise UnreadableFileError(f'{state_path}: {name} is {stored}, expected {shape} {np.dtype(dtype)}')
        for key in self.keys:
            check_npy(self._path(*key), (self.rows, self._dim(key)), np.float16, 'feature cache file')
        self.done, self.valid, self.crc = state['done'], state['valid'], state['crc']
        self.arrays = {k: np.load(self._path(*k), mmap_mode='r+') for k in self.keys}
        self._verify_rows()
        logger.info('feature cache %s: reusing %d of %d samples', self.folder, int(self.done.sum()),
                    self.num_samples)
        return True

    def _verify_rows(self) -> None:
        """Mark as not done (to be recomputed) the samples with a row that fails its CRC."""
        rows = np.flatnonzero(np.repeat(self.done, self.views))
        for j, key in enumerate(self.keys):
            bad = []
            for start in range(0, len(rows), VERIFY_ROWS):
                chunk = rows[start:start + VERIFY_ROWS]
                bad += [r for r, values in zip(chunk, self.arrays[key][chunk]) if zlib.crc32(values) != self.crc[r, j]]
            if bad:
                logger.warning('%s: %d row(s) do not match their CRC (corrupt file): recomputing %d sample(s)',
                               self._path(*key), len(bad), len({r // self.views for r in bad}))
                self.done[np.asarray(bad) // self.views] = False

    def _create(self) -> None:
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        self.done = np.zeros(self.num_samples, dtype=bool)
        self.valid = np.zeros((self.rows, len(self.keys)), dtype=bool)
        self.crc = np.zeros((self.rows, len(self.keys)), dtype=np.uint32)
        self.arrays = {k: np.lib.format.open_memmap(self._path(*k), mode='w+', dtype=np.float16,
                                                    shape=(self.rows, self._dim(k))) for k in self.keys}
        self.commit()
        with atomic_path(self.folder / 'manifest.json') as tmp:
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
            values = values.astype(np.float16)
            self.arrays[key][row] = values
            self.valid[row, j] = bool(ok)
            self.crc[row, j] = zlib.crc32(values)

    def mark_done(self, sample_index: int) -> None:
        self.done[sample_index] = True

    def commit(self) -> None:
        """Flush the memmaps, then record which samples are complete (atomically)."""
        for arr in self.arrays.values():
            arr.flush()
        with atomic_path(self.folder / 'state.npz') as tmp:
            with open(tmp, 'wb') as fh:
                np.savez(fh, done=self.done, valid=self.valid, crc=self.crc)

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
        with atomic_path(compact_path) as tmp:
            compact = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.float16, shape=(len(rows), array.shape[1]))
            for start in range(0, len(rows), 256):
                compact[start:start + 256] = array[rows[start:start + 256]]
            compact.flush()
            del compact
        return np.load(compact_path, mmap_mode='r')


def committed_rows(folder, key, keys: list, views: int):
    """(float16 memmap, usable row indices) of ``key``, one of the (part, feature size) ``keys`` of
    a committed store in ``folder``, read-only and without the CRC pass (its owner checked the store
    when it opened it)."""
    folder = Path(folder)
    state = read_npz(folder / 'state.npz', 'feature cache state')
    column = list(keys).index(key)
    rows = np.flatnonzero(np.repeat(state['done'], views) & state['valid'][:, column])
    return np.load(folder / f'{key[0]}_{key[1]}.npy', mmap_mode='r'), rows


class StackedRows:
    """The chosen rows of several (N_i, D) arrays as one read-only (N, D) array, without a copy:
    what k-means reads (``shape``, ``dtype``, row slices, row index arrays, ``np.asarray``)."""

    def __init__(self, parts: list):
        self.parts = [(array, np.asarray(rows, dtype=np.int64)) for array, rows in parts]
        self.rows = np.concatenate([np.stack([np.full(len(rows), i), rows], 1) for i, (_, rows) in
                                    enumerate(self.parts)]) if self.parts else np.zeros((0, 2), np.int64)
        self.dtype = self.parts[0][0].dtype
        self.shape = (len(self.rows), int(self.parts[0][0].shape[1]))
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        wanted = self.rows[index] if isinstance(index, slice) else self.rows[np.asarray(index, dtype=np.int64)]
        out = np.empty((len(wanted), self.shape[1]), dtype=self.dtype)
        for part, (array, _) in enumerate(self.parts):
            here = np.flatnonzero(wanted[:, 0] == part)
            if len(here):
                out[here] = array[wanted[here, 1]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)
