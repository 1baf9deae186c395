"""Atomic file writing: a reader never sees a half-written checkpoint or image."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp' + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, 'rb+') as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
