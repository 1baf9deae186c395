"""Atomic file writing (a reader never sees a half-written checkpoint or image) and checked
reading of ``.npz`` / ``.json`` / ``.npy`` files (errors name the file and the problem)."""
from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dfdnet.errors import UnreadableFileError

logger = logging.getLogger(__name__)

# What atomic_path's mkstemp names look like: .<name>.<8 random chars>.tmp<suffix>
_TEMPORARY = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]+)?$')
# What reading a truncated or corrupt npz / npy / json file raises (zipfile checks member CRCs)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp' + path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a normal file follows the umask (0644 under 022)
    try:
        yield Path(tmp)
        with open(tmp, 'rb+') as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_directory(path, stale_after_s: float = 600.0):
    """Yield an empty temporary folder beside ``path``; on success it takes the place of ``path``
    (an existing folder there is moved aside and removed), so a reader sees the old folder or the
    new one, never a half-written one. On failure the temporary folder is removed; the ones that a
    killed writer of ``path`` left (older than ``stale_after_s``) are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for left in path.parent.glob(f'.{glob.escape(path.name)}.*.*'):
        try:
            if left.suffix in ('.tmp', '.old') and left.is_dir() and now - left.stat().st_mtime >= stale_after_s:
                shutil.rmtree(left)
        except OSError as exc:
            logger.warning('cannot remove the folder %s left by an interrupted writer: %s', left, exc)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a normal folder follows the umask
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(tmp, path)
        except OSError:  # the target exists: move it aside first (its open or mapped files stay valid)
            old = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', suffix='.old', dir=path.parent))
            os.rename(path, old / 'previous')
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(folder, min_age_s: float = 600.0) -> int:
    """Delete the temporary files that a killed ``atomic_path`` writer left under ``folder``
    (recursively), if at least ``min_age_s`` old (a live writer's file is younger; 0 = all of them,
    for a caller that holds the folder's lock); returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in folder.rglob('.*.tmp*'):
        try:
            if _TEMPORARY.match(path.name) and path.is_file() and now - path.stat().st_mtime >= min_age_s:
                path.unlink()
                removed += 1
        except OSError as exc:
            logger.warning('cannot remove the stale temporary file %s: %s', path, exc)
    if removed:
        logger.info('removed %d temporary file(s) left by an interrupted run under %s', removed, folder)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` through ``atomic_path``. Saved through a file object, the archive's inner
    folder is torch's fixed 'archive' rather than the random temporary name, so the same object
    gives the same bytes (and git can store a fine-tuned model as a delta of its parent)."""
    import torch

    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as fh:
            torch.save(obj, fh)


def load_torch_file(path, what: str, error=RuntimeError, map_location='cpu', mmap: bool = False):
    """``torch.load(weights_only=True)`` of ``path``; a missing or unreadable file raises ``error``
    with a message naming ``what`` and the path (torch.load raises many types for bad files).

    ``mmap``: map the file instead of reading it (only the tensors used are ever read from disk;
    the tensors are file-backed until copied). Files in torch's legacy (pre-1.6, non-zip) format
    cannot be mapped and are read in full.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise error(f'{what} not found: {path}')
    mmap = mmap and zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:
        raise error(f'cannot read {what} {path} (truncated or not a PyTorch file?): '
                    f'{type(exc).__name__}: {exc}') from exc


def _unreadable(path, what: str, problem, hint: str = '') -> UnreadableFileError:
    """The error for ``path``: ``problem`` is a message or the exception that reading raised."""
    if isinstance(problem, FileNotFoundError):
        problem = f'{what} not found'
    elif isinstance(problem, BaseException):
        problem = f'truncated or corrupt {what} ({type(problem).__name__}: {problem})'
    return UnreadableFileError(f'{path}: {problem}' + (f'; {hint}' if hint else ''))


def read_npz(path, what: str = 'npz file', hint: str = '') -> dict:
    """All arrays of an ``.npz`` file (no pickles), read in full so that the zip CRCs are checked.
    A missing, truncated or corrupt file raises ``UnreadableFileError`` naming it; ``hint`` (what
    to do about it) is appended to the message."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError('a single .npy array, not an npz archive')
        with data:
            return {key: data[key] for key in data.files}
    except _READ_ERRORS as exc:
        raise _unreadable(path, what, exc, hint) from exc


def read_json(path, what: str = 'JSON file', hint: str = ''):
    """The parsed content of a JSON file; ``UnreadableFileError`` naming it when missing or corrupt."""
    try:
        return json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise _unreadable(path, what, exc, hint) from exc


def check_npy(path, shape, dtype, what: str = 'npy file', hint: str = '') -> None:
    """Check that an ``.npy`` file holds a C-order ``shape`` ``dtype`` array and is exactly as long
    as its header says: numpy would silently zero-extend a truncated file it memory-maps.
    Raises ``UnreadableFileError`` naming the file and the problem."""
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    try:
        with open(path, 'rb') as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            stored_shape, fortran, stored_dtype = read_header(fh)
            needed = fh.tell() + dtype.itemsize * math.prod(shape)
        size = os.path.getsize(path)
    except _READ_ERRORS as exc:
        raise _unreadable(path, what, exc, hint) from exc
    if (stored_shape, stored_dtype, fortran) != (shape, dtype, False):
        order = ' (Fortran order)' if fortran else ''
        raise _unreadable(path, what, f'{what} holds {stored_shape} {stored_dtype}{order}, expected {shape} '
                                      f'{dtype}', hint)
    if size != needed:
        state = 'truncated' if size < needed else 'too long'
        raise _unreadable(path, what, f'{state} {what}: {size} bytes where its header ({shape} {dtype}) '
                                      f'needs {needed}', hint)
