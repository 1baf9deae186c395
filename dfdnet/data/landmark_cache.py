"""A single-file cache of 68-point landmarks for a folder of faces, and the released ``.txt`` format.

File format (``landmarks.npz``, written with ``numpy.savez``, no pickles; read with
``np.load(path, allow_pickle=False)``):

===============  ===================  ==========================================================
key              dtype / shape        meaning
===============  ===================  ==========================================================
``version``      int64 ()             format version (1)
``root``         str ()               folder the image paths are relative to (absolute, POSIX)
``face_size``    int64 ()             side of the aligned face the landmarks are in (512)
``model``        str ()               what made the landmarks (``dlib68-aligned-box``, ``txt``); a cache
                                      made another way is not resumed
``paths``        str (N,)             image path relative to ``root`` (POSIX separators)
``face_index``   int32 (N,)           face number within the image (0 for an aligned face;
                                      0, 1, ... for the faces of a photo aligned with ``--align``)
``landmarks``    float32 (N, 68, 2)   (x, y) in pixels of the aligned ``face_size`` face, 0-based;
                                      NaN where ``flags`` is not ``ok``
``affine``       float32 (N, 2, 3)    source-image pixels -> aligned-face pixels (the warp or the
                                      resize that made the aligned face); NaN if unknown
``flags``        str (N,)             ``ok``, ``no_face``, ``landmark_failed`` or ``unreadable``
===============  ===================  ==========================================================

Flipped (augmented) faces are not stored: use ``dfdnet.face.components.flip_landmarks``.
An image whose photo held no face has one entry with ``face_index`` 0 and flag ``no_face``, so
that a resumed run knows it was already looked at.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfdnet.face.landmarks import ALIGNED_LANDMARK_PROCEDURE, landmark_file_for, read_landmarks, write_landmarks
from dfdnet.utils.files import atomic_path, read_npz

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
FLAGS = ('ok', 'no_face', 'landmark_failed', 'unreadable')
NUM_LANDMARKS = 68


@dataclass
class LandmarkEntry:
    """One face: ``path`` relative to the cache root, landmarks (68, 2) float32 or None."""
    path: str
    face_index: int
    flag: str
    landmarks: np.ndarray | None = None
    affine: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.flag == 'ok'


def _check_landmarks(landmarks, where: str) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f'{where}: expected ({NUM_LANDMARKS}, 2) landmarks, got shape {points.shape}')
    if not np.all(np.isfinite(points)):
        raise ValueError(f'{where}: landmarks contain NaN or infinite values')
    return points


class LandmarkCache:
    """Landmarks of the faces under ``root``, keyed by (relative path, face index).

    Paths given to the methods may be absolute (they are made relative to ``root``) or already
    relative to ``root``.
    """

    def __init__(self, root, face_size: int = 512, model: str = ALIGNED_LANDMARK_PROCEDURE):
        self.root = Path(os.path.abspath(root))  # symlinks inside the root are kept as they are
        self.face_size = int(face_size)
        self.model = str(model)
        self._entries: dict[tuple[str, int], LandmarkEntry] = {}

    # ------------------------------------------------------------------ keys and lookup
    def relative(self, path) -> str:
        """POSIX path of ``path`` relative to the root."""
        path = Path(path)
        if path.is_absolute():
            try:
                path = Path(os.path.abspath(path)).relative_to(self.root)
            except ValueError:
                try:
                    path = path.resolve().relative_to(self.root.resolve())
                except ValueError:
                    raise ValueError(f'{path} is not under the landmark cache root {self.root}') from None
        return path.as_posix()

    def add(self, path, landmarks=None, flag: str = 'ok', face_index: int = 0, affine=None) -> LandmarkEntry:
        """Add or replace one face. ``landmarks`` (68, 2) are required iff ``flag == 'ok'``."""
        if flag not in FLAGS:
            raise ValueError(f'unknown landmark flag {flag!r}; expected one of {FLAGS}')
        rel = self.relative(path)
        if flag == 'ok':
            if landmarks is None:
                raise ValueError(f'{rel}: flag "ok" needs landmarks')
            landmarks = _check_landmarks(landmarks, rel)
        else:
            landmarks = None
        if affine is not None:
            affine = np.asarray(affine, dtype=np.float32).reshape(2, 3)
        entry = LandmarkEntry(rel, int(face_index), flag, landmarks, affine)
        self._entries[(rel, int(face_index))] = entry
        return entry

    def get(self, path, face_index: int = 0) -> LandmarkEntry | None:
        return self._entries.get((self.relative(path), int(face_index)))

    def landmarks(self, path, face_index: int = 0) -> np.ndarray | None:
        """(68, 2) float32 landmarks of a face, or None when unknown or flagged as failed."""
        entry = self.get(path, face_index)
        return entry.landmarks if entry is not None and entry.ok else None

    def faces_of(self, path) -> list[LandmarkEntry]:
        """All entries of one image, by face index."""
        rel = self.relative(path)
        return sorted((e for (p, _), e in self._entries.items() if p == rel), key=lambda e: e.face_index)

    def has_image(self, path) -> bool:
        """True when the image was already processed (whatever the outcome)."""
        rel = self.relative(path)
        return any(p == rel for p, _ in self._entries)

    def entries(self, flag: str | None = None) -> list[LandmarkEntry]:
        """Entries in insertion order, optionally only those with ``flag``."""
        return [e for e in self._entries.values() if flag is None or e.flag == flag]

    def counts(self) -> dict:
        """Number of entries per flag."""
        return {f: sum(e.flag == f for e in self._entries.values()) for f in FLAGS}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path) -> bool:
        return self.has_image(path)

    def __iter__(self):
        return iter(self._entries.values())

    def merge(self, other: 'LandmarkCache', overwrite: bool = False) -> int:
        """Add the entries of ``other`` (paths re-based onto this root); returns how many were added.

        Existing entries are kept unless ``overwrite``. The face sizes must agree.
        """
        if other.face_size != self.face_size:
            raise ValueError(f'cannot merge landmark caches of face size {other.face_size} and {self.face_size}')
        added = 0
        for entry in other:
            key_path = other.root / entry.path
            key = (self.relative(key_path), entry.face_index)
            if key in self._entries and not overwrite:
                continue
            self.add(key_path, entry.landmarks, entry.flag, entry.face_index, entry.affine)
            added += 1
        return added

    # ------------------------------------------------------------------ file I/O
    def save(self, path) -> None:
        """Write the cache atomically to ``path`` (an ``.npz`` file)."""
        entries = list(self._entries.values())
        n = len(entries)
        landmarks = np.full((n, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
        affine = np.full((n, 2, 3), np.nan, dtype=np.float32)
        for i, e in enumerate(entries):
            if e.landmarks is not None:
                landmarks[i] = e.landmarks
            if e.affine is not None:
                affine[i] = e.affine
        arrays = dict(
            version=np.int64(FORMAT_VERSION), root=np.str_(self.root.as_posix()),
            face_size=np.int64(self.face_size), model=np.str_(self.model),
            paths=np.array([e.path for e in entries], dtype=str).reshape(n),
            face_index=np.array([e.face_index for e in entries], dtype=np.int32).reshape(n),
            landmarks=landmarks, affine=affine,
            flags=np.array([e.flag for e in entries], dtype=str).reshape(n))
        with atomic_path(path) as tmp:
            with open(tmp, 'wb') as fh:  # a file object: savez would otherwise append '.npz'
                np.savez(fh, **arrays)
        logger.debug('saved %d landmark entries to %s', n, path)

    @classmethod
    def load(cls, path, root=None) -> 'LandmarkCache':
        """Read a cache written by ``save``. ``root`` overrides the stored root (moved data).
        A truncated or corrupt file raises ``UnreadableFileError`` (a ``ValueError``) naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'landmark cache not found: {path}')
        arrays = read_npz(path, 'landmark cache', hint='delete it to detect the landmarks again')
        required = ('version', 'root', 'face_size', 'paths', 'face_index', 'landmarks', 'flags')
        missing = [k for k in required if k not in arrays]
        if missing:
            raise ValueError(f'{path} is not a landmark cache (missing {missing})')
        if int(arrays['version']) > FORMAT_VERSION:
            raise ValueError(f'{path}: landmark cache version {int(arrays["version"])} is newer than this code '
                             f'({FORMAT_VERSION})')
        n = len(arrays['paths'])
        if arrays['landmarks'].shape != (n, NUM_LANDMARKS, 2) or arrays['flags'].shape != (n,):
            raise ValueError(f'{path}: inconsistent shapes: {n} paths, landmarks {arrays["landmarks"].shape}, '
                             f'flags {arrays["flags"].shape}')
        cache = cls(root if root is not None else str(arrays['root']), int(arrays['face_size']),
                    str(arrays.get('model', 'unknown')))
        affine = arrays.get('affine', np.full((n, 2, 3), np.nan, dtype=np.float32))
        for i in range(n):
            flag = str(arrays['flags'][i])
            points = arrays['landmarks'][i] if flag == 'ok' else None
            aff = affine[i] if np.all(np.isfinite(affine[i])) else None
            cache.add(str(arrays['paths'][i]), points, flag, int(arrays['face_index'][i]), aff)
        return cache

    @classmethod
    def load_or_new(cls, path, root, face_size: int, model: str) -> 'LandmarkCache':
        """Resume from ``path`` when it exists (checking root, face size and the procedure ``model``
        that made it), else an empty cache."""
        path = Path(path)
        if not path.is_file():
            return cls(root, face_size, model)
        cache = cls.load(path)
        if cache.root != Path(os.path.abspath(root)):
            logger.warning('landmark cache %s was made for %s, not %s: starting a new one', path, cache.root, root)
            return cls(root, face_size, model)
        if cache.model != model:
            logger.warning('landmark cache %s was made by %r, not %r: finding the landmarks again', path,
                           cache.model, model)
            return cls(root, face_size, model)
        if cache.face_size != face_size:
            raise ValueError(f'{path}: landmarks are for {cache.face_size}-px faces, this run uses {face_size}')
        logger.info('resuming from landmark cache %s (%d entries: %s)', path, len(cache), cache.counts())
        return cache


# ---------------------------------------------------------------------- released .txt format
def read_landmark_txt(path) -> np.ndarray:
    """Read a released ``<image name>.txt``: 68 rows ``x y`` -> (68, 2) float32."""
    return _check_landmarks(read_landmarks(path, NUM_LANDMARKS), str(path))


def write_landmark_txt(path, landmarks) -> None:
    """Write 68 rows ``x y`` (3 decimals, as the released files) atomically."""
    write_landmarks(path, _check_landmarks(landmarks, str(path)))


def landmark_txt_path(folder, image_name: str) -> Path | None:
    """The landmark file of ``image_name`` in ``folder``: ``<name>.txt`` (released) or ``<stem>.txt``."""
    return landmark_file_for(image_name, folder)


def load_landmark_folder(folder, image_names, strict: bool = False) -> dict:
    """Landmarks of ``image_names`` (names relative to the image root) from a released-format folder.

    Returns ``{name: (68, 2) float32}``; a name whose file is missing or unreadable is logged and
    left out (``strict=True`` raises instead).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'landmark folder not found: {folder}')
    found = {}
    for name in image_names:
        name = Path(name).as_posix()
        path = landmark_txt_path(folder / os.path.dirname(name), os.path.basename(name))
        try:
            if path is None:
                raise FileNotFoundError(f'no landmark file for {name} in {folder} '
                                        f'(looked for {os.path.basename(name)}.txt and its stem + .txt)')
            found[name] = read_landmark_txt(path)
        except (FileNotFoundError, ValueError) as exc:
            if strict:
                raise
            logger.warning('%s', exc)
    return found
