"""Processes started by ``torchrun``: which rank this is, its device, its share of the work, and the
few collective steps the jobs need (a barrier, gathering small Python objects).

Outside torchrun (no ``RANK`` / ``WORLD_SIZE`` in the environment) everything here is a no-op for
one process of rank 0. The restoration and dictionary jobs coordinate over gloo (small objects
only: the heavy work never crosses processes); training uses NCCL on GPUs for its gradients.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# A rank may wait at a barrier while another finishes a long shard (a video, the landmarks of a
# large folder): far longer than torch's default of 30 minutes.
COORDINATION_TIMEOUT = datetime.timedelta(hours=48)


@dataclass
class DistInfo:
    """rank / world_size / local_rank of this process (torchrun's RANK, WORLD_SIZE, LOCAL_RANK)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather(self, value) -> list | None:
        """Every rank's ``value`` (a picklable object) on rank 0, in rank order; None on the others."""
        if not self.enabled:
            return [value]
        found = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, found, dst=0)
        return found

    def all_gather(self, value) -> list:
        """Every rank's ``value`` (a picklable object) on every rank, in rank order."""
        if not self.enabled:
            return [value]
        found = [None] * self.world_size
        dist.all_gather_object(found, value)
        return found

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def launched_info() -> DistInfo:
    """The rank of this process under torchrun, else a single process. ``RuntimeError`` for
    inconsistent variables."""
    if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
        return DistInfo()
    try:
        info = DistInfo(int(os.environ['RANK']), int(os.environ['WORLD_SIZE']), int(os.environ.get('LOCAL_RANK', 0)))
    except ValueError:
        raise RuntimeError('RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)') from None
    if not 0 <= info.rank < info.world_size:
        raise RuntimeError(f'RANK {info.rank} is not within WORLD_SIZE {info.world_size}')
    return info


def rank_device(info: DistInfo, device_option: str) -> str:
    """The device of this rank: ``cuda:LOCAL_RANK`` when CUDA is available and ``device_option`` is not
    the CPU ('-1' / 'cpu'), else 'cpu'. A single process keeps ``device_option`` as given."""
    from dfdnet.utils.device import select_device

    chosen = select_device(device_option)
    if not info.enabled or chosen == 'cpu':
        return chosen
    if info.local_rank >= torch.cuda.device_count():
        raise RuntimeError(f'local rank {info.local_rank} has no GPU: {torch.cuda.device_count()} visible; start '
                           'torchrun with --nproc_per_node at most the number of GPUs')
    return f'cuda:{info.local_rank}'


def init_coordination(info: DistInfo) -> None:
    """Join the job's gloo process group (for barriers and small objects) when there are several ranks."""
    if info.enabled and not dist.is_initialized():
        dist.init_process_group('gloo', timeout=COORDINATION_TIMEOUT)


def close_coordination(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def shard_by_cost(items: list, costs: list, info: DistInfo) -> list:
    """This rank's items: the costliest first, each to the rank with the least work so far (ties to
    the lower rank); every rank computes the same split. Returned in their original order."""
    if not info.enabled:
        return list(items)
    loads = [0.0] * info.world_size
    owner = {}
    for index in sorted(range(len(items)), key=lambda i: (-costs[i], i)):
        rank = min(range(info.world_size), key=lambda r: (loads[r], r))
        loads[rank] += costs[index]
        owner[index] = rank
    return [item for i, item in enumerate(items) if owner[i] == info.rank]


def contiguous_block(count: int, info: DistInfo) -> range:
    """Indices [start, stop) of this rank's contiguous share of ``count`` items (sizes differ by at most one)."""
    base, extra = divmod(count, info.world_size)
    start = info.rank * base + min(info.rank, extra)
    return range(start, start + base + (1 if info.rank < extra else 0))
