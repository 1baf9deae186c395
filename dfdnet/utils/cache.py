"""The project's cache folder and the fingerprint that keys its entries.

One root for every cache: ``$DFDNET_CACHE``, else ``$XDG_CACHE_HOME/dfdnet``, else
``~/.cache/dfdnet``; each kind of entry lives in its own sub-folder (``runtime/``: converted
models, ``dfdnet.archs.runtime``; ``atoms/``: prepared dictionaries, ``dfdnet.archs.atom_cache``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = 'DFDNET_CACHE'
_FINGERPRINT_BYTES = 1 << 20


def cache_root() -> Path:
    """``$DFDNET_CACHE``, else ``$XDG_CACHE_HOME/dfdnet``, else ``~/.cache/dfdnet``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache').expanduser() / 'dfdnet'


def cache_folder(kind: str, override=None) -> Path:
    """The folder of one kind of cache entry: ``override`` when given, else ``cache_root() / kind``."""
    return Path(override).expanduser() if override is not None else cache_root() / kind


def file_fingerprint(path) -> str:
    """sha256 of a file's size, mtime (ns) and its first and last MiB: a changed file changes it,
    without reading gigabytes of weights at every start."""
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256(f'{stat.st_size}:{stat.st_mtime_ns}'.encode())
    with open(path, 'rb') as fh:
        digest.update(fh.read(_FINGERPRINT_BYTES))
        if stat.st_size > _FINGERPRINT_BYTES:
            fh.seek(max(stat.st_size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
            digest.update(fh.read())
    return digest.hexdigest()
