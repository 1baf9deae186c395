"""Component dictionaries: loading, validation and the per-atom statistics used by CAdaIN.

A dictionary holds, for each part and feature level, K atoms of shape (C, s, s). Two file
layouts are read: the released ``DictionaryCenter512`` folder (16 ``.npy`` files named
``{part}_{feature size}_center.npy``) and the BasicSR port's single ``.pth``
(``{'256': {'left_eye': tensor, ...}, ...}``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfdnet.errors import DictionaryError
from dfdnet.face.components import PART_NAMES
from dfdnet.utils.files import load_torch_file

logger = logging.getLogger(__name__)

CADAIN_EPS = 1e-5


def dictionary_file_name(part: str, feature_size: int) -> str:
    return f'{part}_{feature_size}_center.npy'


def channel_stats(x: torch.Tensor, eps: float = CADAIN_EPS):
    """Per-channel mean and std over spatial positions, std = sqrt(unbiased var + eps).

    x: (N, C, H, W) -> mean, std of shape (N, C, 1, 1).
    """
    flat = x.flatten(2)
    var = flat.var(dim=2) + eps
    return flat.mean(dim=2)[..., None, None], var.sqrt()[..., None, None]


def standardize_atoms_(atoms: torch.Tensor, eps: float = CADAIN_EPS, chunk: int = 32) -> torch.Tensor:
    """In place: atoms (K, C, s, s) -> (atoms - mean) / std per atom and channel.

    Computed in float64, ``chunk`` atoms at a time so that the extra memory stays small.
    """
    for start in range(0, atoms.shape[0], chunk):
        block = atoms[start:start + chunk].double()
        mean, std = channel_stats(block, eps)
        atoms[start:start + chunk] = (block - mean) / std
    return atoms


class DictionaryBank(nn.Module):
    """The 16 (part, level) dictionaries, as non-persistent buffers on the model's device.

    ``layout`` maps ``(part, feature_size)`` to ``(channels, atom_size)``. With
    ``standardized=True`` each stored atom is already ``(D - mu(D)) / sigma(D)`` (computed once,
    in float64, at construction), which is all CAdaIN needs from it; the raw atoms are not kept.
    """

    def __init__(self, atoms: dict, standardized: bool = True):
        super().__init__()
        if not atoms:
            raise DictionaryError('DictionaryBank needs at least one dictionary')
        self.standardized = standardized
        self.keys_ = sorted(atoms, key=lambda k: (-k[1], PART_NAMES.index(k[0])))
        sizes = {int(a.shape[0]) for a in atoms.values()}
        self.num_atoms = sizes.pop() if len(sizes) == 1 else None
        self._shapes = {}
        for (part, fsize), tensor in atoms.items():
            tensor = tensor.float().contiguous()
            if standardized:
                standardize_atoms_(tensor)
            self._shapes[(part, fsize)] = tuple(tensor.shape)
            # Stored flat (K, C*s*s): contiguous rows for the matching GEMM, untouched by
            # ``model.to(memory_format=...)``, which only converts 4-D tensors.
            self.register_buffer(f'{part}_{fsize}', tensor.flatten(1), persistent=False)

    def atoms(self, part: str, feature_size: int) -> torch.Tensor:
        """(K, C, s, s) atoms of one part and level (standardised if ``self.standardized``); a view."""
        return getattr(self, f'{part}_{feature_size}').view(self._shapes[(part, feature_size)])

    def layout(self) -> dict:
        return {k: (int(self.atoms(*k).shape[1]), int(self.atoms(*k).shape[2])) for k in self.keys_}

    def extra_repr(self) -> str:
        return f'K={self.num_atoms}, dictionaries={len(self.keys_)}, standardized={self.standardized}'


def _coerce(array, path: str, key, channels: int, size: int) -> torch.Tensor:
    tensor = torch.as_tensor(array)
    if not tensor.is_floating_point():
        raise DictionaryError(f'{path}: {key} has dtype {tensor.dtype}, expected floating point')
    per_atom = channels * size * size
    if tensor.ndim == 4 and tuple(tensor.shape[1:]) != (channels, size, size):
        raise DictionaryError(f'{path}: {key} has shape {tuple(tensor.shape)}, expected (K, {channels}, {size}, {size})')
    if tensor.ndim in (1, 2) and (tensor.numel() == 0 or tensor.numel() % per_atom
                                   or (tensor.ndim == 2 and tensor.shape[1] != per_atom)):
        raise DictionaryError(f'{path}: {key} has shape {tuple(tensor.shape)}, which is not K atoms of '
                              f'({channels}, {size}, {size}) = {per_atom} values each')
    if tensor.ndim not in (1, 2, 4):
        raise DictionaryError(f'{path}: {key} has {tensor.ndim} dimensions, expected (K, C, s, s) or flat')
    tensor = tensor.reshape(-1, channels, size, size)
    if not torch.isfinite(tensor).all():
        raise DictionaryError(f'{path}: {key} contains NaN or infinite values')
    return tensor


def _load_npy_folder(folder: Path, layout: dict) -> dict:
    atoms = {}
    for (part, fsize), (channels, size) in layout.items():
        path = folder / dictionary_file_name(part, fsize)
        if not path.is_file():
            raise DictionaryError(f'dictionary file missing: {path}')
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DictionaryError(f'cannot read dictionary file {path}: {exc}') from exc
        atoms[(part, fsize)] = _coerce(array, str(path), f'{part}_{fsize}', channels, size)
    return atoms


def _load_basicsr_pth(path: Path, layout: dict) -> dict:
    data = load_torch_file(path, 'dictionary file', DictionaryError)
    if not isinstance(data, dict):
        raise DictionaryError(f'{path}: expected a dict {{feature size: {{part: tensor}}}}, got {type(data).__name__}')
    atoms = {}
    for (part, fsize), (channels, size) in layout.items():
        level = data.get(str(fsize), data.get(fsize))
        if not isinstance(level, dict) or part not in level:
            raise DictionaryError(f'{path}: no dictionary for {part} at feature size {fsize}')
        atoms[(part, fsize)] = _coerce(level[part], str(path), f'{part}_{fsize}', channels, size)
    return atoms


def load_dictionaries(path, layout: dict, standardized: bool = True) -> DictionaryBank:
    """Load and check a dictionary folder (released ``.npy`` layout) or a BasicSR ``.pth`` file.

    Raises ``DictionaryError`` naming the file for a missing, unreadable or mis-shaped entry, or
    when the parts do not all have the same number of atoms.
    """
    path = Path(path)
    if path.is_dir():
        atoms = _load_npy_folder(path, layout)
    elif path.is_file():
        atoms = _load_basicsr_pth(path, layout)
    else:
        raise DictionaryError(f'dictionary path does not exist: {path} (expected a folder of 16 '
                              f'{{part}}_{{size}}_center.npy files or a BasicSR DFDNet_dict_*.pth)')
    counts = {k: int(v.shape[0]) for k, v in atoms.items()}
    if len(set(counts.values())) != 1:
        raise DictionaryError(f'{path}: dictionaries have different numbers of atoms: {counts}')
    bank = DictionaryBank(atoms, standardized=standardized)
    logger.info('loaded dictionaries from %s (K=%d, %.1f MB)', os.fspath(path), bank.num_atoms,
                sum(a.numel() * 4 for a in atoms.values()) / 2**20)
    return bank
