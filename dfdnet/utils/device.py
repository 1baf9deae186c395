"""The device rule of the restoration commands and API: one function, one behaviour."""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def select_device(spec='auto') -> str:
    """A torch device string for ``spec``.

    'auto' (or None): the first CUDA GPU when there is one, else the CPU, without a warning.
    '-1' or 'cpu': the CPU. A GPU id ('0', '1', '0,1' or a list of ints: the first is used), 'cuda'
    or 'cuda:N': that GPU; the CPU with a warning when CUDA is not available, cuda:0 when the id
    does not exist. An empty list means the CPU.
    """
    import torch

    if isinstance(spec, (list, tuple)):
        spec = ','.join(str(i) for i in spec) or '-1'
    spec = 'auto' if spec is None else str(spec).replace(' ', '').lower()
    if spec == 'auto':
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    if spec == 'cpu':
        return 'cpu'
    if spec.startswith('cuda'):
        spec = spec.partition(':')[2] or '0'
    try:
        ids = [int(i) for i in spec.split(',') if i != '']
    except ValueError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or GPU ids like '0' / '-1', got {spec!r}") from None
    if not ids or ids[0] < 0:
        return 'cpu'
    if not torch.cuda.is_available():
        logger.warning('CUDA is not available: running on the CPU (pass --gpu_ids -1 to choose it explicitly)')
        return 'cpu'
    if ids[0] >= torch.cuda.device_count():
        logger.warning('GPU %d does not exist (%d visible): using cuda:0', ids[0], torch.cuda.device_count())
        return 'cuda:0'
    if len(ids) > 1:
        logger.warning('only one GPU is used: cuda:%d', ids[0])
    return f'cuda:{ids[0]}'
