"""Atomic file writing: a reader never sees a half-written checkpoint or image."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# What atomic_path's mkstemp names look like: .<name>.<8 random chars>.tmp<suffix>
_TEMPORARY = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]+)?$')


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


def remove_stale_temporaries(folder, min_age_s: float = 600.0) -> int:
    """Delete the temporary files that a killed ``atomic_path`` writer left under ``folder``
    (recursively), if older than ``min_age_s`` (a live writer's file is younger); returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in folder.rglob('.*.tmp*'):
        try:
            if _TEMPORARY.match(path.name) and path.is_file() and now - path.stat().st_mtime > min_age_s:
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
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch_file(path, what: str, error=RuntimeError, map_location='cpu'):
    """``torch.load(weights_only=True)`` of ``path``; a missing or unreadable file raises ``error``
    with a message naming ``what`` and the path (torch.load raises many types for bad files)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise error(f'{what} not found: {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise error(f'cannot read {what} {path} (truncated or not a PyTorch file?): '
                    f'{type(exc).__name__}: {exc}') from exc
