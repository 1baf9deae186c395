"""K-means in PyTorch for features that do not fit in memory at once.

* k-means++ initialisation, greedy as in scikit-learn (``2 + int(log K)`` candidates per step,
  the one that lowers the potential most is kept), driven by a seeded ``torch.Generator``;
* Lloyd iterations; squared distances ``||x||^2 - 2 x.c + ||c||^2`` are computed ``chunk_size``
  rows at a time, so no (N, K, D) tensor and no full (N, K) matrix is ever built;
* features may be a float16/float32 numpy array, a ``numpy.memmap`` on disk or a tensor: each
  chunk is converted to float32 on the compute device. When the data fit in
  ``max_resident_bytes`` they are copied to the device once (as float32 if that fits, else in
  their own dtype), otherwise they are streamed from the array at every pass;
* distances are taken relative to the data mean (scikit-learn centres the data for the same
  reason: VGG features have large means that would cost float32 precision);
* an empty cluster is re-seeded with the point farthest from its centre (as scikit-learn does);
* stopping as in scikit-learn: labels unchanged, or total squared centre shift <= ``tol`` times
  the mean per-dimension variance of the data.

On CPU the result depends only on the data, K and the seed (``chunk_size`` only changes the last
bits of the float32 block sums). On CUDA the block sums use atomic adds, so results can differ in
the last bits between runs.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

logger = logging.getLogger(__name__)


@dataclass
class KMeansResult:
    """centers (K, D) float32 (CPU), labels (N,) int64 (CPU), inertia = sum of squared distances."""
    centers: torch.Tensor
    labels: torch.Tensor
    inertia: float
    n_iter: int
    converged: bool


def default_device() -> torch.device:
    return torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')


class _Rows:
    """Chunked float32 access to an (N, D) array-like on ``device``."""

    def __init__(self, features, device: torch.device, chunk_size: int, max_resident_bytes: int):
        if features.ndim != 2:
            raise ValueError(f'k-means expects (N, D) features, got shape {tuple(features.shape)}')
        self.n, self.dim = int(features.shape[0]), int(features.shape[1])
        self.device = device
        self.chunk_size = max(1, int(chunk_size))
        itemsize = np.dtype(str(features.dtype).replace('torch.', '')).itemsize
        as_float32 = self.n * self.dim * 4 <= max_resident_bytes
        if self.n * self.dim * min(itemsize, 4) > max_resident_bytes:
            self.data = features  # streamed: (memmap) rows are read and converted block by block
        elif isinstance(features, torch.Tensor):
            self.data = features.to(device, torch.float32) if as_float32 else features.to(device)
        else:
            if isinstance(features, np.memmap) or not features.flags.writeable:
                features = np.array(features)  # into memory (torch wants a writable array)
            tensor = torch.from_numpy(np.ascontiguousarray(features))  # no copy yet
            # float32 once when it fits (converting float16 at every pass is slow on a CPU)
            self.data = tensor.to(device, torch.float32) if as_float32 else tensor.to(device)
        self.resident = isinstance(self.data, torch.Tensor) and self.data.device == device
        self.mean, self.sq_norms, self.mean_variance = self._statistics()

    def _statistics(self):
        """Two passes: the mean row (D,) float32, squared norms of the *centred* rows (N,)
        float32 and the mean per-dimension variance (scikit-learn's tolerance scale)."""
        total = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for _, chunk in self.chunks():
            total += chunk.sum(0).double()
        mean = (total / self.n).float()
        norms = torch.empty(self.n, dtype=torch.float32, device=self.device)
        total_sq = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for start, chunk in self.chunks():
            squared = (chunk - mean) ** 2
            norms[start:start + chunk.shape[0]] = squared.sum(1)
            total_sq += squared.sum(0).double()
        return mean, norms, float((total_sq / self.n).mean())

    def rows(self, index) -> torch.Tensor:
        """float32 rows (by integer index array/tensor) on the device."""
        if isinstance(self.data, torch.Tensor):
            index = torch.as_tensor(index, dtype=torch.long, device=self.data.device)
            return self.data[index].to(self.device, torch.float32)
        index = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64)
        order = np.argsort(index)  # sorted reads are kinder to a memmap
        rows = np.empty((len(index), self.dim), dtype=np.float32)
        rows[order] = self.data[index[order]]
        return torch.from_numpy(rows).to(self.device)

    def chunks(self):
        """Yield (start, float32 chunk (m, D) on the device)."""
        for start in range(0, self.n, self.chunk_size):
            stop = min(start + self.chunk_size, self.n)
            block = self.data[start:stop]
            if not isinstance(block, torch.Tensor):  # read the rows as stored; torch converts faster
                block = torch.from_numpy(np.array(block, order='C'))
            yield start, block.to(self.device, torch.float32)


class _Centres:
    """Centres kept relative to the data mean (as scikit-learn centres the data), so that
    ``||x - c||^2 = ||x - m||^2 - 2 (x . c' - m . c') + ||c'||^2`` with ``c' = c - m`` does not
    lose float32 precision to large feature means; the data themselves are not copied."""

    def __init__(self, centred: torch.Tensor, mean: torch.Tensor):
        self.centred = centred
        self.sq = (centred * centred).sum(1)
        self.mean_dot = centred @ mean

    def sq_dist(self, chunk: torch.Tensor, chunk_sq: torch.Tensor) -> torch.Tensor:
        """(m, k) squared distances of uncentred rows ``chunk`` (centred squared norms ``chunk_sq``)."""
        cross = chunk @ self.centred.T - self.mean_dot[None, :]
        return (chunk_sq[:, None] - 2.0 * cross + self.sq[None, :]).clamp_min_(0)


def _kmeans_plusplus(data: _Rows, k: int, generator: torch.Generator, progress: bool) -> torch.Tensor:
    """Greedy k-means++ (scikit-learn's variant) -> centred centres (k, D) float32 on the device."""
    n_trials = 2 + int(math.log(k))
    first = int(torch.randint(data.n, (1,), generator=generator))
    centers = torch.empty(k, data.dim, dtype=torch.float32, device=data.device)  # centred
    centers[0] = data.rows([first])[0] - data.mean
    closest = torch.empty(data.n, dtype=torch.float64)  # squared distance to the nearest centre so far
    first_centre = _Centres(centers[:1], data.mean)
    for start, chunk in data.chunks():
        d = first_centre.sq_dist(chunk, data.sq_norms[start:start + chunk.shape[0]])
        closest[start:start + chunk.shape[0]] = d[:, 0].double().cpu()
    potential = float(closest.sum())
    for c in tqdm(range(1, k), desc='k-means++', disable=not progress, leave=False):
        if potential <= 0:  # fewer distinct points than k: any point will do
            candidates = torch.randint(data.n, (n_trials,), generator=generator)
        else:
            draws = torch.rand(n_trials, generator=generator, dtype=torch.float64) * potential
            candidates = torch.searchsorted(torch.cumsum(closest, 0), draws).clamp_(max=data.n - 1)
        cand = _Centres(data.rows(candidates) - data.mean, data.mean)
        trial_dist = torch.empty(n_trials, data.n, dtype=torch.float64)
        for start, chunk in data.chunks():
            d = cand.sq_dist(chunk, data.sq_norms[start:start + chunk.shape[0]]).double().cpu().T
            trial_dist[:, start:start + chunk.shape[0]] = torch.minimum(d, closest[start:start + chunk.shape[0]])
        pots = trial_dist.sum(1)
        best = int(torch.argmin(pots))
        closest, potential = trial_dist[best].clone(), float(pots[best])
        centers[c] = cand.centred[best]
    return centers


def _assign(data: _Rows, centers: torch.Tensor, need_sums: bool):
    """One pass for centred ``centers``: labels (N,), squared distances (N,) and optionally the
    float64 sums of the (uncentred) rows per cluster and the counts.

    Each block is summed per cluster in float32 and added to float64 totals.
    """
    k = centers.shape[0]
    prepared = _Centres(centers, data.mean)
    labels = torch.empty(data.n, dtype=torch.long)
    dist = torch.empty(data.n, dtype=torch.float64)
    sums = torch.zeros(k, data.dim, dtype=torch.float64, device=data.device) if need_sums else None
    counts = torch.zeros(k, dtype=torch.float64, device=data.device) if need_sums else None
    block_sums = torch.empty(k, data.dim, dtype=torch.float32, device=data.device) if need_sums else None
    for start, chunk in data.chunks():
        stop = start + chunk.shape[0]
        d = prepared.sq_dist(chunk, data.sq_norms[start:stop])
        best_d, best = d.min(dim=1)
        labels[start:stop] = best.cpu()
        dist[start:stop] = best_d.double().cpu()
        if need_sums:
            block_sums.zero_().index_add_(0, best, chunk)
            sums += block_sums
            counts += torch.bincount(best, minlength=k).double()
    return labels, dist, sums, counts


def _relocate_empty(data: _Rows, sums, counts, labels, dist) -> int:
    """Give every empty cluster the point farthest from its centre; returns how many were empty."""
    empty = torch.nonzero(counts == 0).flatten().cpu()
    if len(empty) == 0:
        return 0
    far = torch.argsort(dist, descending=True, stable=True)[:len(empty)]
    points = data.rows(far).double()
    old = labels[far].to(sums.device)
    sums.index_add_(0, old, -points)
    counts.index_add_(0, old, -torch.ones(len(far), dtype=torch.float64, device=sums.device))
    sums[empty.to(sums.device)] = points
    counts[empty.to(sums.device)] = 1
    labels[far] = empty
    return len(empty)


def auto_chunk_rows(dim: int, device: torch.device) -> int:
    """Rows per block: ~32 MiB of float32 on a CPU (the block stays in cache between the distance
    product and the cluster sums: 3-5x faster than big blocks), ~1 GiB on a GPU."""
    budget = (1 << 30) if device.type == 'cuda' else (32 << 20)
    return max(1, budget // (4 * dim))


def kmeans(features, k: int, seed: int = 0, max_iter: int = 300, tol: float = 1e-4, chunk_size: int | None = None,
           device=None, max_resident_bytes: int = 2 * 2**30, progress: bool = False, desc: str = 'k-means',
           init=None) -> KMeansResult:
    """Cluster the rows of ``features`` (N, D) into ``k`` groups.

    Args:
        features: numpy array / memmap (float16 or float32) or tensor, shape (N, D).
        k: number of clusters; must not exceed N.
        seed: seeds the k-means++ draws (a ``torch.Generator`` on the CPU).
        max_iter, tol: Lloyd stopping rules (scikit-learn's meaning).
        chunk_size: rows per distance block (default ``auto_chunk_rows``); extra memory about
            chunk_size * (D + k) * 4 bytes.
        device: compute device (default: CUDA when available, else CPU).
        max_resident_bytes: copy the data to the device once when they take at most this much.
        init: optional (K, D) starting centres instead of k-means++.
    Returns:
        ``KMeansResult`` with centres (K, D) float32, labels (N,), inertia, iterations, converged.
    """
    n = int(features.shape[0])
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if k > n:
        raise ValueError(f'k-means with K={k} needs at least {k} samples, got {n}')
    device = torch.device(device) if device is not None else default_device()
    chunk_size = chunk_size or auto_chunk_rows(int(features.shape[1]), device)
    data = _Rows(features, device, chunk_size, max_resident_bytes)
    generator = torch.Generator().manual_seed(int(seed))
    tol_abs = tol * data.mean_variance
    if init is not None:
        centers = torch.as_tensor(np.asarray(init, dtype=np.float32)).to(device)
        if tuple(centers.shape) != (k, data.dim):
            raise ValueError(f'init centres have shape {tuple(centers.shape)}, expected ({k}, {data.dim})')
        centers = centers - data.mean
    else:
        centers = _kmeans_plusplus(data, k, generator, progress)
    labels_prev = None
    converged = False
    bar = tqdm(range(1, max_iter + 1), desc=desc, disable=not progress, leave=False)
    n_iter = 0
    for n_iter in bar:
        labels, dist, sums, counts = _assign(data, centers, need_sums=True)
        relocated = _relocate_empty(data, sums, counts, labels, dist)
        if relocated:
            logger.info('%s: re-seeded %d empty cluster(s) at iteration %d', desc, relocated, n_iter)
        new_centers = (sums / counts[:, None] - data.mean.double()).float()
        shift = float(((new_centers - centers).double() ** 2).sum())
        centers = new_centers
        bar.set_postfix(inertia=f'{float(dist.sum()):.4g}', shift=f'{shift:.3g}')
        if labels_prev is not None and not relocated and torch.equal(labels, labels_prev):
            converged = True  # strict convergence: labels are final for these centres
            break
        if shift <= tol_abs:
            converged = True
            break
        labels_prev = labels
    labels, dist, _, _ = _assign(data, centers, need_sums=False)
    inertia = float(dist.sum())
    logger.info('%s: K=%d, N=%d, D=%d, %d iterations, inertia %.6g%s', desc, k, n, data.dim, n_iter, inertia,
                '' if converged else ' (max_iter reached)')
    return KMeansResult((centers + data.mean).cpu(), labels, inertia, n_iter, converged)
