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

from dfdnet.archs import atom_cache
from dfdnet.errors import DictionaryError
from dfdnet.face.components import PART_NAMES
from dfdnet.utils.cache import CACHE_ENV, cache_folder
from dfdnet.utils.files import load_torch_file
from dfdnet.utils.tensors import all_finite

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
    ``prepared=True``: the atoms are already in their final form (standardised when
    ``standardized``, in the dtype to keep: float32, or bfloat16 / float16 for reduced-precision
    runs) and are kept as they are, without a copy (e.g. memory-mapped from the atom cache).
    ``page_release``: key -> function that drops the resident pages of that memory-mapped
    dictionary (``release_pages``).
    """

    def __init__(self, atoms: dict, standardized: bool = True, prepared: bool = False, page_release=None):
        super().__init__()
        self._page_release = dict(page_release or {})
        if not atoms:
            raise DictionaryError('DictionaryBank needs at least one dictionary')
        self.standardized = standardized
        self.keys_ = sorted(atoms, key=lambda k: (-k[1], PART_NAMES.index(k[0])))
        sizes = {int(a.shape[0]) for a in atoms.values()}
        self.num_atoms = sizes.pop() if len(sizes) == 1 else None
        self._shapes = {}
        for (part, fsize), tensor in atoms.items():
            if not prepared:
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

    def release_pages(self, part: str, feature_size: int) -> None:
        """Drop the resident pages of a memory-mapped dictionary after its use: they stay in the page
        cache and are mapped again at the next use, so a forward holds one level's dictionaries at a
        time in its resident memory, not all of them (an in-place change to mapped atoms would be lost: none is
        made). A no-op for atoms in memory (or moved to a GPU)."""
        release = self._page_release.get((part, feature_size))
        if release is not None and getattr(self, f'{part}_{feature_size}').device.type == 'cpu':
            release()

    @property
    def dtype(self) -> torch.dtype:
        return getattr(self, f'{self.keys_[0][0]}_{self.keys_[0][1]}').dtype

    def layout(self) -> dict:
        return {k: (int(self.atoms(*k).shape[1]), int(self.atoms(*k).shape[2])) for k in self.keys_}

    def extra_repr(self) -> str:
        return f'K={self.num_atoms}, dictionaries={len(self.keys_)}, standardized={self.standardized}, dtype={self.dtype}'


def _coerce(array, path: str, key, channels: int, size: int) -> torch.Tensor:
    """A (K, C, s, s) view of one dictionary (4-D or flat in the file); no copy, values unchecked."""
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
    return tensor.reshape(-1, channels, size, size)


def _source_files(path: Path, layout: dict) -> list:
    """The files a dictionary path consists of: 16 ``.npy`` in a folder, or one BasicSR ``.pth``."""
    if path.is_dir():
        files = [path / dictionary_file_name(part, fsize) for part, fsize in layout]
        for file in files:
            if not file.is_file():
                raise DictionaryError(f'dictionary file missing: {file}')
        return files
    if path.is_file():
        return [path]
    raise DictionaryError(f'dictionary path does not exist: {path} (expected a folder of 16 '
                          f'{{part}}_{{size}}_center.npy files or a BasicSR DFDNet_dict_*.pth)')


def _load_npy_folder(folder: Path, layout: dict) -> dict:
    """(part, size) -> ((K, C, s, s) tensor memory-mapped from its file, the file's path)."""
    atoms = {}
    for (part, fsize), (channels, size) in layout.items():
        path = folder / dictionary_file_name(part, fsize)
        try:
            array = np.load(path, mmap_mode='c', allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DictionaryError(f'cannot read dictionary file {path}: {exc}') from exc
        atoms[(part, fsize)] = _coerce(array, str(path), f'{part}_{fsize}', channels, size), str(path)
    return atoms


def _load_basicsr_pth(path: Path, layout: dict) -> dict:
    data = load_torch_file(path, 'dictionary file', DictionaryError, mmap=True)
    if not isinstance(data, dict):
        raise DictionaryError(f'{path}: expected a dict {{feature size: {{part: tensor}}}}, got {type(data).__name__}')
    atoms = {}
    for (part, fsize), (channels, size) in layout.items():
        level = data.get(str(fsize), data.get(fsize))
        if not isinstance(level, dict) or part not in level:
            raise DictionaryError(f'{path}: no dictionary for {part} at feature size {fsize}')
        atoms[(part, fsize)] = _coerce(level[part], str(path), f'{part}_{fsize}', channels, size), str(path)
    return atoms


def _read_sources(path: Path, layout: dict) -> dict:
    atoms = _load_npy_folder(path, layout) if path.is_dir() else _load_basicsr_pth(path, layout)
    counts = {k: int(v.shape[0]) for k, (v, _) in atoms.items()}
    if len(set(counts.values())) != 1:
        raise DictionaryError(f'{path}: dictionaries have different numbers of atoms: {counts}')
    return atoms


def prepared_chunks(atoms: torch.Tensor, source: str, key, standardized: bool, dtype: torch.dtype, chunk: int = 32):
    """Yield the prepared atoms (k, C*s*s), ``chunk`` at a time: standardised as ``standardize_atoms_``
    does (float64, rounded to float32) when ``standardized``, checked finite, then cast to ``dtype``.
    A NaN or Inf (which standardising spreads over its atom) raises ``DictionaryError`` naming ``source``."""
    for start in range(0, atoms.shape[0], chunk):
        block = atoms[start:start + chunk].to(torch.float32, copy=True)
        if standardized:
            standardize_atoms_(block, chunk=chunk)
        if not all_finite(block):
            raise DictionaryError(f'{source}: {key} contains NaN or infinite values')
        yield block.flatten(1).to(dtype)


def _entry_name(key) -> str:
    return f'{key[0]}_{key[1]}'


def _file_chunks(folder: Path, layout: dict, key, standardized: bool, dtype: torch.dtype):
    """``prepared_chunks`` of one dictionary of a ``.npy`` folder, its file mapped only while they are
    read (so that preparing all 16 never holds more than one file's pages)."""
    tensor, source = _load_npy_folder(folder, {key: layout[key]})[key]
    yield from prepared_chunks(tensor, source, key, standardized, dtype)


def _prepared_sources(path: Path, layout: dict, standardized: bool, dtype: torch.dtype) -> dict:
    """key -> ((K, C*s*s), chunk iterator) of every dictionary, after checking all their shapes. The
    16 files of a folder are mapped again one at a time as they are read; a BasicSR ``.pth`` (one
    file) is read once."""
    sources = _read_sources(path, layout)
    shapes = {key: (int(sources[key][0].shape[0]), channels * size * size) for key, (channels, size) in layout.items()}
    if path.is_dir():
        del sources
        return {key: (shapes[key], _file_chunks(path, layout, key, standardized, dtype)) for key in layout}
    return {key: (shapes[key], prepared_chunks(tensor, source, key, standardized, dtype))
            for key, (tensor, source) in sources.items()}


def _prepare_in_memory(path: Path, layout: dict, standardized: bool, dtype: torch.dtype) -> dict:
    atoms = {}
    for key, (shape, chunks) in _prepared_sources(path, layout, standardized, dtype).items():
        atoms[key] = torch.empty(shape, dtype=dtype)
        row = 0
        for block in chunks:
            atoms[key][row:row + block.shape[0]] = block
            row += block.shape[0]
    return atoms


def _cached_atoms(path: Path, files: list, layout: dict, standardized: bool, dtype: torch.dtype, cache_dir):
    """The prepared atoms from the cache, built there first when missing, stale or damaged, as key ->
    ((K, C*s*s) memory-mapped tensor, page-release function); None when the cache folder cannot be
    written (the caller prepares them in memory)."""
    settings = atom_cache.entry_settings(path, dtype, standardized, CADAIN_EPS)
    fingerprints = atom_cache.source_fingerprints(files)
    folder = atom_cache.entry_folder(cache_folder('atoms', cache_dir), settings)
    expected = {_entry_name(key): channels * size * size for key, (channels, size) in layout.items()}
    tensors, reason = atom_cache.read_entry(folder, settings, fingerprints, expected)
    if tensors is None:
        log = logger.warning if reason.startswith('damaged') else logger.info
        log('dictionary cache %s for %s: %s; preparing the atoms (once)', folder, path, reason)
        arrays = {_entry_name(key): (shape, dtype, chunks)
                  for key, (shape, chunks) in _prepared_sources(path, layout, standardized, dtype).items()}
        try:
            atom_cache.write_entry(folder, settings, fingerprints, arrays)
        except OSError as exc:
            logger.warning('cannot write the dictionary cache %s (%s); preparing the atoms in memory '
                           '(set $%s to a writable folder to cache them)', folder, exc, CACHE_ENV)
            return None
        del arrays
        tensors, reason = atom_cache.read_entry(folder, settings, fingerprints, expected)
        if tensors is None:
            logger.warning('dictionary cache %s unusable after writing it (%s); preparing the atoms in memory',
                           folder, reason)
            return None
    return {key: tensors[_entry_name(key)] for key in layout}


def load_dictionaries(path, layout: dict, standardized: bool = True, dtype: torch.dtype = torch.float32,
                      cache_dir=None, use_cache: bool = True) -> DictionaryBank:
    """Load and check a dictionary folder (released ``.npy`` layout) or a BasicSR ``.pth`` file.

    The atoms are kept in ``dtype`` (float32; bfloat16 or float16 halve the memory of a
    reduced-precision run). With ``use_cache`` they are prepared (checked, standardised) once and
    memory-mapped from the atom cache (``dfdnet.archs.atom_cache``; folder ``cache_dir``, else
    ``atoms/`` in the project's cache folder, ``dfdnet.utils.cache``); the float32 atoms are
    bit-identical either way. Raises ``DictionaryError`` naming the file for a missing,
    unreadable or mis-shaped entry, NaN or Inf values, or when the parts do not all have the same
    number of atoms.
    """
    path = Path(path)
    files = _source_files(path, layout)
    if dtype not in atom_cache.STORAGE:
        raise ValueError(f'dictionary dtype must be one of {sorted(map(str, atom_cache.STORAGE))}, got {dtype}')
    cached = _cached_atoms(path, files, layout, standardized, dtype, cache_dir) if use_cache else None
    atoms = {key: atom for key, (atom, _) in cached.items()} if cached else _prepare_in_memory(path, layout,
                                                                                           standardized, dtype)
    bank = DictionaryBank({key: atoms[key].view(-1, channels, size, size) for key, (channels, size) in layout.items()},
                          standardized=standardized, prepared=True,
                          page_release={key: release for key, (_, release) in cached.items()} if cached else None)
    logger.info('loaded dictionaries from %s (K=%d, %s, %.1f MB)', os.fspath(path), bank.num_atoms, dtype,
                sum(a.numel() * a.element_size() for a in atoms.values()) / 2**20)
    return bank
