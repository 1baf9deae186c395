"""On-disk cache of prepared dictionary atoms (standardised for CAdaIN, checked, in the run's dtype).

Preparing the released dictionaries (3 GB of float32) means reading the 16 ``.npy`` files,
checking every value and standardising every atom in float64 (figures: docs/benchmarks.md). The
result depends only on the files, the storage dtype and this code, so it is computed once and
kept here:

* folder: ``cache_folder('atoms')`` (``dfdnet.utils.cache``: ``$DFDNET_CACHE/atoms``, default
  ``~/.cache/dfdnet/atoms``) or the caller's override; one entry per (dictionary path, dtype,
  standardised), a folder holding one ``.npy`` per dictionary (flat, (K, C*s*s)) and
  ``manifest.json``;
* key: the manifest records each source file's ``file_fingerprint`` (size, mtime, first and last
  MiB), the storage dtype, the CAdaIN epsilon, the torch version and ``FORMAT_VERSION``; any
  difference rebuilds the entry;
* writes are atomic (a temporary folder renamed into place), so a reader never sees half an entry;
* before use, every file's header, length and CRC-32 (over all of its data) are checked against
  the manifest; a damaged entry is rebuilt with a warning, never used;
* the entry's files are memory-mapped copy-on-write: loading copies nothing, and the pages are
  the page cache's (shared between processes, reclaimable). The generator drops a dictionary's
  pages from its resident memory after each use (``DictionaryBank.release_pages``), so that only
  the dictionary being matched counts in its RSS.

bfloat16 has no numpy dtype: it is stored as ``uint16`` and viewed back.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import mmap
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from dfdnet.errors import UnreadableFileError
from dfdnet.utils.cache import file_fingerprint
from dfdnet.utils.files import atomic_directory, check_npy

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
STORAGE = {torch.float32: np.float32, torch.float16: np.float16, torch.bfloat16: np.uint16}
_MANIFEST = 'manifest.json'


def source_fingerprints(files: list) -> list:
    """What the manifest records of the source files: their names and ``file_fingerprint``."""
    return [{'name': Path(file).name, 'fingerprint': file_fingerprint(file)} for file in files]


def entry_settings(source: Path, dtype: torch.dtype, standardized: bool, eps: float) -> dict:
    """What an entry's content depends on besides the source files."""
    return {'format_version': FORMAT_VERSION, 'source': os.fspath(source.resolve()), 'dtype': str(dtype),
            'standardized': bool(standardized), 'eps': eps, 'torch': torch.__version__}


def entry_folder(atoms_folder: Path, settings: dict) -> Path:
    """One entry per source path, dtype and standardisation (a changed file replaces its entry)."""
    key = json.dumps({k: settings[k] for k in ('source', 'dtype', 'standardized')}, sort_keys=True)
    name = re.sub(r'[^A-Za-z0-9_.-]', '_', Path(settings['source']).name)[:40]
    dtype = settings['dtype'].replace('torch.', '')
    return atoms_folder / f'{name}-{dtype}-{hashlib.sha256(key.encode()).hexdigest()[:16]}'


def _storage_path(folder: Path, name: str) -> Path:
    return folder / f'{name}.npy'


def _as_tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if dtype == torch.bfloat16 else tensor


def _crc32(array: np.ndarray) -> int:
    return zlib.crc32(memoryview(array).cast('B'))


def write_entry(folder: Path, settings: dict, fingerprints: list, arrays: dict) -> None:
    """Write an entry atomically. ``arrays``: name -> (shape (K, D), dtype, iterable of (k, D) tensor chunks).
    The files are not synced to disk: a crash that loses their data fails the CRC check at the next
    load, which rebuilds the entry."""
    entries = {}
    with atomic_directory(folder) as tmp:
        for name, (shape, dtype, chunks) in arrays.items():
            storage = np.dtype(STORAGE[dtype])
            crc, count = 0, 0
            with open(_storage_path(tmp, name), 'wb') as fh:
                header = {'descr': np.lib.format.dtype_to_descr(storage), 'fortran_order': False, 'shape': tuple(shape)}
                np.lib.format.write_array_header_1_0(fh, header)
                for chunk in chunks:
                    data = chunk.contiguous().view(torch.uint16) if dtype == torch.bfloat16 else chunk.contiguous()
                    data = data.numpy()
                    crc = zlib.crc32(memoryview(data).cast('B'), crc)
                    fh.write(memoryview(data).cast('B'))
                    count += data.shape[0]
            if count != shape[0]:
                raise ValueError(f'{name}: {count} rows written, {shape[0]} expected')
            entries[name] = {'shape': list(shape), 'storage': storage.name, 'crc32': crc}
        manifest = {**settings, 'sources': fingerprints, 'entries': entries}
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1), encoding='utf-8')
    logger.info('wrote the prepared dictionaries to %s', folder)


def _map_npy(path: Path, shape: tuple, storage) -> tuple:
    """(the array of a checked ``.npy`` file, mapped copy-on-write; a function that drops the
    mapping's resident pages: they stay in the page cache, and the next read maps them again)."""
    with open(path, 'rb') as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    count, itemsize = math.prod(shape), np.dtype(storage).itemsize
    array = np.frombuffer(mapped, dtype=storage, count=count, offset=len(mapped) - count * itemsize)
    release = functools.partial(mapped.madvise, mmap.MADV_DONTNEED) if hasattr(mmap, 'MADV_DONTNEED') else None
    return array.reshape(shape), release or (lambda: None)


def read_entry(folder: Path, settings: dict, fingerprints: list, expected: dict, workers: int = 2):
    """A valid entry as ``(entry, None)``, else ``(None, reason)``; ``entry``: name -> (memory-mapped
    (K, D) tensor, function that drops its resident pages).

    ``expected``: name -> atom length D (C*s*s). ``reason`` starts with 'damaged' when the entry
    exists but fails a check (structure, sizes, CRC), 'stale' when its key differs, 'missing' when
    there is none. The CRC pass reads every page; they are dropped from this process's resident
    memory after it (they stay in the page cache).
    """
    manifest_path = folder / _MANIFEST
    if not manifest_path.is_file():
        return None, 'missing'
    try:
        manifest = json.loads(manifest_path.read_text(encoding='utf-8'))
        if not isinstance(manifest, dict):
            raise ValueError('not a JSON object')
        entries = manifest['entries']
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f'damaged: unreadable manifest ({exc})'
    changed = [k for k in settings if manifest.get(k) != settings[k]]
    if changed or manifest.get('sources') != fingerprints:
        return None, f'stale: {", ".join(changed) or "the dictionary files"} changed'
    if not isinstance(entries, dict) or set(entries) != set(expected):
        return None, f'damaged: the manifest lists {sorted(entries) if isinstance(entries, dict) else entries}'
    dtype = getattr(torch, settings['dtype'].replace('torch.', ''))
    arrays, releases = {}, {}
    try:
        for name, info in entries.items():
            shape = tuple(int(s) for s in info['shape'])
            if len(shape) != 2 or shape[1] != expected[name] or info['storage'] != np.dtype(STORAGE[dtype]).name:
                return None, f'damaged: {name} is listed as {shape} {info["storage"]}, expected (K, {expected[name]})'
            path = _storage_path(folder, name)
            check_npy(path, shape, STORAGE[dtype], what='cached dictionary')
            arrays[name], releases[name] = _map_npy(path, shape, STORAGE[dtype])
    except (UnreadableFileError, OSError, ValueError, KeyError, TypeError) as exc:
        return None, f'damaged: {exc}'
    if len({a.shape[0] for a in arrays.values()}) != 1:
        return None, 'damaged: the dictionaries have different numbers of atoms'
    def checked_crc(name):
        crc = _crc32(arrays[name])
        releases[name]()
        return crc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # zlib releases the GIL
        crcs = dict(zip(arrays, pool.map(checked_crc, arrays)))
    bad = [name for name in arrays if crcs[name] != entries[name]['crc32']]
    if bad:
        return None, f'damaged: CRC-32 mismatch in {", ".join(bad)}'
    return {name: (_as_tensor(array, dtype), releases[name]) for name, array in arrays.items()}, None
