"""K-means for features that do not fit in memory at once, in PyTorch or with faiss.

* k-means++ initialisation, greedy as in scikit-learn (``2 + int(log K)`` candidates per step,
  the one that lowers the potential most is kept), driven by a seeded ``torch.Generator``; for
  features wider than ``2 * init_dims`` its distances are taken in a seeded random projection to
  ``init_dims`` dimensions (the seeds are still rows of the data);
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
  the mean per-dimension variance of the data; and, with ``inertia_tol`` > 0, as soon as one
  iteration lowers the inertia by less than that fraction. Overlapping features (CNN crops) creep
  for tens of iterations within a fraction of a percent of their final inertia; the default 3e-4
  stops them early near scikit-learn's inertia (measured on real component features in
  docs/benchmarks.md).

Backends (``backend=``): 'torch' runs all of the above in PyTorch. 'faiss' makes one centred
float32 copy of the features (so they must fit in ``max_resident_bytes``) and lets a faiss
``IndexFlatL2`` find the nearest centres in the Lloyd iterations (on the GPU when faiss was built
with GPUs and the device is CUDA); the k-means++ draws, the cluster sums, the empty-cluster rule,
the stopping rule and the final labels and inertia are the same code as the torch backend's.
'auto' picks faiss on a CUDA device when faiss was built with GPUs and the copy fits, and the
torch backend otherwise (on a CPU it was faster than faiss's search on real component features,
docs/benchmarks.md). ``result.backend`` says
which ran.

On CPU the result depends only on the data, K, the seed and the backend (``chunk_size`` only
changes the last bits of the float32 block sums). On CUDA the block sums use atomic adds, so
results can differ in the last bits between runs.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from dfdnet.dictionary.kmeans_rows import CentredPoints, ClusterSums, FeatureRows, auto_chunk_rows
from dfdnet.utils.device import select_device

logger = logging.getLogger(__name__)

BACKENDS = ('auto', 'faiss', 'torch')


@dataclass
class KMeansResult:
    """centers (K, D) float32 (CPU), labels (N,) int64 (CPU), inertia = sum of squared distances
    to the nearest centre (float64 sum); backend 'torch' or 'faiss' and the device it ran on."""
    centers: torch.Tensor
    labels: torch.Tensor
    inertia: float
    n_iter: int
    converged: bool
    backend: str = 'torch'
    device: str = 'cpu'


def _capped_sq_dist(data: FeatureRows, centred: torch.Tensor, cap: torch.Tensor) -> torch.Tensor:
    """(N, t) float32 ``min(cap, squared distance)`` of every row to each of the t ``centred``
    points (``cap`` (N,) float32)."""
    points = CentredPoints(centred, data.mean)
    out = torch.empty(data.n, centred.shape[0], dtype=torch.float32, device=data.device)
    for start, chunk in data.chunks():
        stop = start + chunk.shape[0]
        torch.minimum(points.sq_dist(chunk, data.sq_norms[start:stop]), cap[start:stop, None], out=out[start:stop])
    return out


def _kmeans_plusplus(data: FeatureRows, k: int, generator: torch.Generator, progress: bool) -> torch.Tensor:
    """Greedy k-means++ (scikit-learn's variant) -> the chosen rows' indices (k,) int64."""
    n_trials = 2 + int(math.log(k))
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = int(torch.randint(data.n, (1,), generator=generator))
    # squared distance of every row to its nearest centre so far (float32 values, float64 sums)
    closest = _capped_sq_dist(data, data.rows(chosen[:1]) - data.mean,
                              torch.full((data.n,), math.inf, device=data.device))[:, 0]
    for c in tqdm(range(1, k), desc='k-means++', disable=not progress, leave=False):
        cumulative = torch.cumsum(closest.double().cpu(), 0)
        potential = float(cumulative[-1])
        if potential <= 0:  # fewer distinct points than k: any point will do
            candidates = torch.randint(data.n, (n_trials,), generator=generator)
        else:
            draws = torch.rand(n_trials, generator=generator, dtype=torch.float64) * potential
            candidates = torch.searchsorted(cumulative, draws).clamp_(max=data.n - 1)
        trial = _capped_sq_dist(data, data.rows(candidates) - data.mean, closest)
        best = int(torch.argmin(trial.sum(0, dtype=torch.float64)))
        closest = trial[:, best].contiguous()
        chosen[c] = candidates[best]
    return chosen


def _projected(data: FeatureRows, dims: int, generator: torch.Generator) -> FeatureRows:
    """The centred rows times a seeded Gaussian (D, dims) matrix / sqrt(dims), resident float32:
    squared distances are kept in expectation (Johnson-Lindenstrauss)."""
    projection = (torch.randn(data.dim, dims, generator=generator) / math.sqrt(dims)).to(data.device)
    out = torch.empty(data.n, dims, dtype=torch.float32, device=data.device)
    for start, chunk in data.chunks():
        torch.mm(chunk - data.mean, projection, out=out[start:start + chunk.shape[0]])
    return FeatureRows(out, data.device, auto_chunk_rows(dims, data.device), max_resident_bytes=out.nbytes)


def _initial_centres(data: FeatureRows, k: int, generator: torch.Generator, progress: bool, init_dims: int) -> torch.Tensor:
    """k-means++ seeds -> centred centres (k, D) float32 on the device. For 0 < 2 * init_dims < D
    the draws use distances in a random projection to ``init_dims`` dimensions: each of the k
    steps reads every row, which for wide features is bound by memory bandwidth (0.9 of 1.5 s
    for 6,920 x 2,048 features, K = 64); the centres are the chosen rows themselves. Fewer rows
    than ``init_dims`` are seeded in full: the projection matrix would outweigh the data."""
    project = 0 < 2 * init_dims < data.dim and data.n > init_dims
    space = _projected(data, init_dims, generator) if project else data
    return data.rows(_kmeans_plusplus(space, k, generator, progress)) - data.mean


def _assign(data: FeatureRows, centers: torch.Tensor, need_sums: bool):
    """One pass for centred ``centers``: labels (N,), squared distances (N,) and optionally the
    float64 sums of the (uncentred) rows per cluster and the counts.

    Each block is summed per cluster in float32 and added to float64 totals.
    """
    k = centers.shape[0]
    prepared = CentredPoints(centers, data.mean)
    labels = torch.empty(data.n, dtype=torch.long)
    dist = torch.empty(data.n, dtype=torch.float64)
    sums = ClusterSums(k, data) if need_sums else None
    for start, chunk in data.chunks():
        stop = start + chunk.shape[0]
        d = prepared.sq_dist(chunk, data.sq_norms[start:stop])
        best_d, best = d.min(dim=1)
        labels[start:stop] = best.cpu()
        dist[start:stop] = best_d.double().cpu()
        if need_sums:
            sums.add(best, chunk)
    return (labels, dist) + ((sums.sums, sums.counts) if need_sums else (None, None))


class _FaissAssign:
    """The Lloyd assignment step with a faiss ``IndexFlatL2`` (CPU, or GPU for CUDA data):
    called with centred centres (K, D), returns what ``_assign(..., need_sums=True)`` does."""

    def __init__(self, faiss, data: FeatureRows):
        self.data = data
        if data.device.type == 'cuda':
            import faiss.contrib.torch_utils  # noqa: F401  (faiss GPU indexes then take CUDA tensors)
            config = faiss.GpuIndexFlatConfig()
            config.device = data.device.index or 0
            resources = faiss.StandardGpuResources()
            self.index = faiss.GpuIndexFlatL2(resources, data.dim, config)
            self.index.referenced_objects = [resources]  # keep the resources alive with the index
        else:
            self.index = faiss.IndexFlatL2(data.dim)

    def _faiss_array(self, tensor: torch.Tensor):
        return tensor if tensor.is_cuda else tensor.contiguous().numpy()

    def __call__(self, centers: torch.Tensor):
        self.index.reset()
        self.index.add(self._faiss_array(centers))
        dist, labels = self.index.search(self._faiss_array(self.data.data), 1)
        labels = torch.as_tensor(labels[:, 0]).to(self.data.device)
        sums = ClusterSums(centers.shape[0], self.data)
        for start, chunk in self.data.chunks():
            sums.add(labels[start:start + chunk.shape[0]], chunk)
        return labels.cpu(), torch.as_tensor(dist[:, 0]).cpu().double(), sums.sums, sums.counts


def _relocate_empty(data: FeatureRows, sums, counts, labels, dist) -> int:
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


def _lloyd(data: FeatureRows, centers: torch.Tensor, assign, max_iter: int, tol_abs: float, inertia_tol: float,
           progress: bool, desc: str):
    """Lloyd iterations from centred ``centers`` (K, D) with ``assign(centers) -> labels, dist,
    sums, counts``; returns (centred centres (K, D), iterations, converged)."""
    labels_prev = None
    inertia_prev = math.inf
    converged = False
    bar = tqdm(range(1, max_iter + 1), desc=desc, disable=not progress, leave=False)
    n_iter = 0
    for n_iter in bar:
        labels, dist, sums, counts = assign(centers)
        inertia = float(dist.sum())  # of these labels with the centres they were assigned to
        relocated = _relocate_empty(data, sums, counts, labels, dist)
        if relocated:
            logger.info('%s: re-seeded %d empty cluster(s) at iteration %d', desc, relocated, n_iter)
        new_centers = (sums / counts[:, None] - data.mean.double()).float()
        shift = float(((new_centers - centers).double() ** 2).sum())
        centers = new_centers
        bar.set_postfix(inertia=f'{inertia:.4g}', shift=f'{shift:.3g}')
        if labels_prev is not None and not relocated and torch.equal(labels, labels_prev):
            converged = True  # strict convergence: labels are final for these centres
            break
        if shift <= tol_abs:
            converged = True
            break
        if inertia_tol > 0 and not relocated and inertia >= inertia_prev * (1 - inertia_tol):
            converged = True  # the last assignment gained too little; its centre update is kept
            break
        labels_prev, inertia_prev = labels, inertia
    return centers, n_iter, converged


def _import_faiss():
    """The faiss module, or None when it cannot be imported."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def choose_backend(backend: str, features, device: torch.device, max_resident_bytes: int):
    """(backend 'faiss' or 'torch', device it runs on, why) for ``backend`` 'auto' / 'faiss' / 'torch'.

    Raises ValueError for an unknown name or features the faiss backend cannot take, and
    ImportError when 'faiss' is asked for but cannot be imported.
    """
    if backend not in BACKENDS:
        raise ValueError(f'k-means backend must be one of {", ".join(BACKENDS)}, got {backend!r}')
    if backend == 'torch':
        return 'torch', device, 'requested'
    if backend == 'auto' and device.type != 'cuda':
        # faster than faiss's search on real component features on a CPU (docs/benchmarks.md)
        return 'torch', device, 'faster than faiss on a CPU'
    if _import_faiss() is None:
        if backend == 'faiss':
            raise ImportError("k-means backend 'faiss' was requested but the faiss module cannot be imported: "
                              "install faiss-cpu (or a faiss GPU build), or use backend='torch' or 'auto'")
        return 'torch', device, 'faiss is not installed'
    n, dim = int(features.shape[0]), int(features.shape[1])
    floating = (features.dtype.is_floating_point if isinstance(features, torch.Tensor)
                else hasattr(features, 'dtype') and np.issubdtype(np.dtype(features.dtype), np.floating))
    problem = None
    if not floating:
        problem = f'faiss needs a float numpy array, memmap or tensor, got {type(features).__name__}'
    elif n * dim * 4 > max_resident_bytes:
        problem = (f'its centred float32 copy of the ({n}, {dim}) features takes {n * dim * 4 / 2**30:.2f} GiB, '
                   f'more than max_resident_bytes ({max_resident_bytes / 2**30:.2f} GiB)')
    if problem and backend == 'faiss':
        raise ValueError(f"k-means backend 'faiss' cannot run: {problem}; raise the limit or use backend='torch'")
    if problem:
        return 'torch', device, f'faiss not used: {problem}'
    if device.type == 'cuda' and _import_faiss().get_num_gpus() == 0:
        if backend == 'auto':
            return 'torch', device, 'this faiss build has no GPU support and the device is CUDA'
        logger.warning("this faiss build has no GPU support: the k-means backend 'faiss' runs on the CPU "
                       "(backend='torch' would use %s)", device)
        return 'faiss', torch.device('cpu'), 'requested (CPU build of faiss)'
    return 'faiss', device, 'requested' if backend == 'faiss' else 'faiss is installed and the features fit'


def kmeans(features, k: int, seed: int = 0, max_iter: int = 300, tol: float = 1e-4, chunk_size: int | None = None,
           device=None, max_resident_bytes: int = 2 * 2**30, progress: bool = False, desc: str = 'k-means',
           init=None, backend: str = 'auto', inertia_tol: float = 0.0, init_dims: int = 128) -> KMeansResult:
    """Cluster the rows of ``features`` (N, D) into ``k`` groups.

    Args:
        features: numpy array / memmap (float16 or float32) or tensor, shape (N, D).
        k: number of clusters; must not exceed N.
        seed: seeds the k-means++ draws (a ``torch.Generator`` on the CPU), for either backend.
        max_iter, tol: Lloyd stopping rules (scikit-learn's meaning).
        inertia_tol: also stop when an iteration lowers the inertia by less than this fraction
            (0: off, scikit-learn's rules only).
        init_dims: k-means++ distances in a seeded random projection to this many dimensions when
            the features have more than twice as many (0: always in the full space).
        chunk_size: rows per distance block (default ``auto_chunk_rows``); extra memory about
            chunk_size * (D + k) * 4 bytes.
        device: compute device (default: CUDA when available, else CPU).
        max_resident_bytes: copy the data to the device once when they take at most this much
            (the faiss backend always copies: it needs N * D * 4 bytes within this limit).
        init: optional (K, D) starting centres instead of k-means++.
        backend: 'auto', 'faiss' or 'torch' (see the module docstring).
    Returns:
        ``KMeansResult`` with centres (K, D) float32, labels (N,), inertia, iterations, converged,
        and the backend and device that ran.
    """
    n = int(features.shape[0])
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if k > n:
        raise ValueError(f'k-means with K={k} needs at least {k} samples, got {n}')
    if inertia_tol < 0 or init_dims < 0:
        raise ValueError(f'inertia_tol and init_dims must be >= 0, got {inertia_tol} and {init_dims}')
    device = torch.device(select_device('auto' if device is None else device))
    backend, device, why = choose_backend(backend, features, device, max_resident_bytes)
    logger.info('%s: %s backend on %s (%s)', desc, backend, device, why)
    chunk_size = chunk_size or auto_chunk_rows(int(features.shape[1]), device)
    data = FeatureRows(features, device, chunk_size, max_resident_bytes, centre=backend == 'faiss')
    generator = torch.Generator().manual_seed(int(seed))
    if init is not None:
        centers = torch.as_tensor(np.asarray(init, dtype=np.float32)).to(device)
        if tuple(centers.shape) != (k, data.dim):
            raise ValueError(f'init centres have shape {tuple(centers.shape)}, expected ({k}, {data.dim})')
        centers = centers - data.offset - data.mean
    else:
        centers = _initial_centres(data, k, generator, progress, init_dims)
    if backend == 'faiss':
        assign = _FaissAssign(_import_faiss(), data)
    else:
        def assign(centres):
            return _assign(data, centres, need_sums=True)
    centers, n_iter, converged = _lloyd(data, centers, assign, max_iter, tol * data.mean_variance, inertia_tol,
                                        progress, desc)
    labels, dist, _, _ = _assign(data, centers, need_sums=False)  # the same final pass for both backends
    inertia = float(dist.sum())
    logger.info('%s: K=%d, N=%d, D=%d, %d iterations, inertia %.6g%s (%s backend)', desc, k, n, data.dim, n_iter,
                inertia, '' if converged else ' (max_iter reached)', backend)
    return KMeansResult((centers + data.mean + data.offset).cpu(), labels, inertia, n_iter, converged,
                        backend, str(device))
