"""The dictionary build over torchrun ranks: the bounded, seeded sample of faces, each rank's
contiguous share of it (its own feature store), the features of one dictionary read across the
shares, and failing together.

The sample depends only on the usable faces, K, ``max_rows_per_atom`` and the seed, never on the
number of ranks; the shares are contiguous, so the rows of every dictionary come in the same order
whatever the number of ranks, and the seeded k-means gives the same atoms.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dfdnet.dictionary.feature_store import StackedRows, committed_rows
from dfdnet.utils.distributed import DistInfo, contiguous_block


class DictionaryBuildError(RuntimeError):
    """The dictionary cannot be built from these inputs (the message says why)."""


def sample_size(faces: int, views: int, k: int, max_rows_per_atom: int) -> int:
    """Faces kept: all of them, or as many as give at most ``max_rows_per_atom`` x K rows (0: no bound)."""
    if max_rows_per_atom <= 0:
        return faces
    return min(faces, max(math.ceil(k / views), math.floor(max_rows_per_atom * k / views)))


def sample_entries(entries: list, views: int, k: int, max_rows_per_atom: int, seed: int) -> list:
    """A seeded sample of ``entries`` (their order kept) of at most ``max_rows_per_atom`` x K rows per
    dictionary (each face gives ``views`` rows), as faiss itself trains on at most 256 x K points."""
    keep = sample_size(len(entries), views, k, max_rows_per_atom)
    if keep == len(entries):
        return list(entries)
    chosen = np.sort(np.random.default_rng(seed).choice(len(entries), size=keep, replace=False))
    return [entries[i] for i in chosen]


def shard_folder(cache_dir: Path, info: DistInfo, rank: int | None = None) -> Path:
    """The feature store of ``rank`` (default: this one): ``features`` alone, else ``features_<r>of<W>``."""
    rank = info.rank if rank is None else rank
    return cache_dir / ('features' if not info.enabled else f'features_{rank}of{info.world_size}')


def my_share(entries: list, info: DistInfo) -> list:
    return [entries[i] for i in contiguous_block(len(entries), info)]


def features_across_shards(cache_dir: Path, info: DistInfo, key, keys: list, views: int):
    """(N, D) float16 rows of ``key`` from every rank's store, in rank order (a single store with every
    row usable: its memmap itself)."""
    parts = [committed_rows(shard_folder(cache_dir, info, r), key, keys, views) for r in range(info.world_size)]
    if len(parts) == 1 and len(parts[0][1]) == parts[0][0].shape[0]:
        return parts[0][0]
    return StackedRows(parts)


def my_keys(keys: list, info: DistInfo) -> list:
    """The dictionaries this rank clusters: every ``world_size``-th, from its rank on."""
    return keys[info.rank::info.world_size]


def together(info: DistInfo, step, errors=(DictionaryBuildError, ValueError, OSError)):
    """``step()`` on every rank; when it fails on any, ``DictionaryBuildError`` naming the rank(s) on
    all of them (so that no rank waits at a later barrier). A single process re-raises as it is."""
    if not info.enabled:
        return step()
    problem, result = None, None
    try:
        result = step()
    except errors as exc:
        problem = f'rank {info.rank}: {exc}'
    found = [p for p in info.all_gather(problem) if p]
    if found:
        raise DictionaryBuildError('; '.join(found))
    return result
