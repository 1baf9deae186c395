"""The rows k-means works on: chunked float32 access to (N, D) features, centre distances relative
to the data mean, and float64 per-cluster sums (see ``dfdnet.dictionary.kmeans``)."""
from __future__ import annotations

import numpy as np
import torch


class FeatureRows:
    """Chunked float32 access to an (N, D) array-like on ``device``.

    ``centre=True`` keeps one float32 copy of the rows minus their mean on the device instead
    (``offset`` is that mean; ``mean`` is then about zero): the faiss backend's layout.
    """

    def __init__(self, features, device: torch.device, chunk_size: int, max_resident_bytes: int,
                 centre: bool = False):
        if features.ndim != 2:
            raise ValueError(f'k-means expects (N, D) features, got shape {tuple(features.shape)}')
        self.n, self.dim = int(features.shape[0]), int(features.shape[1])
        self.device = device
        self.chunk_size = max(1, int(chunk_size))
        itemsize = np.dtype(str(features.dtype).replace('torch.', '')).itemsize
        as_float32 = self.n * self.dim * 4 <= max_resident_bytes
        if centre or self.n * self.dim * min(itemsize, 4) > max_resident_bytes:
            self.data = features  # streamed: (memmap) rows are read and converted block by block
        elif isinstance(features, torch.Tensor):
            self.data = features.to(device, torch.float32) if as_float32 else features.to(device)
        else:
            if not isinstance(features, np.ndarray) or isinstance(features, np.memmap) \
                    or not features.flags.writeable:
                features = np.array(features)  # into memory (torch wants a writable array)
            tensor = torch.from_numpy(np.ascontiguousarray(features))  # no copy yet
            # float32 once when it fits (converting float16 at every pass is slow on a CPU)
            self.data = tensor.to(device, torch.float32) if as_float32 else tensor.to(device)
        self.offset = torch.zeros(self.dim, dtype=torch.float32, device=device)
        if centre:
            self.offset = self._mean()
            copy = torch.empty(self.n, self.dim, dtype=torch.float32, device=device)
            for start, chunk in self.chunks():
                torch.sub(chunk, self.offset, out=copy[start:start + chunk.shape[0]])
            self.data = copy
        self.resident = isinstance(self.data, torch.Tensor) and self.data.device == device
        self.mean, self.sq_norms, self.mean_variance = self._statistics()

    def _mean(self) -> torch.Tensor:
        """The mean row (D,) float32, accumulated in float64."""
        total = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for _, chunk in self.chunks():
            total += chunk.sum(0).double()
        return (total / self.n).float()

    def _statistics(self):
        """Two passes: the mean row (D,) float32, squared norms of the *centred* rows (N,)
        float32 and the mean per-dimension variance (scikit-learn's tolerance scale)."""
        mean = self._mean()
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


class CentredPoints:
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


class ClusterSums:
    """float64 per-cluster sums (K, D) and counts (K,) of rows, added block by block in float32."""

    def __init__(self, k: int, data: FeatureRows):
        self.sums = torch.zeros(k, data.dim, dtype=torch.float64, device=data.device)
        self.counts = torch.zeros(k, dtype=torch.float64, device=data.device)
        self._block = torch.empty(k, data.dim, dtype=torch.float32, device=data.device)

    def add(self, labels: torch.Tensor, chunk: torch.Tensor) -> None:
        self._block.zero_().index_add_(0, labels, chunk)
        self.sums += self._block
        self.counts += torch.bincount(labels, minlength=len(self.counts)).double()


def auto_chunk_rows(dim: int, device: torch.device) -> int:
    """Rows per block: ~32 MiB of float32 on a CPU (the block stays in cache between the distance
    product and the cluster sums: faster than big blocks, docs/dictionary.md), ~1 GiB on a GPU."""
    budget = (1 << 30) if device.type == 'cuda' else (32 << 20)
    return max(1, budget // (4 * dim))
