"""The device rule of every command and of the API: one option, ``--device``, one function.

``--device`` takes 'auto', 'cpu', 'cuda' or 'cuda:N'; the released command's GPU ids ('0', '-1')
are accepted too (``test_FaceDict.py --gpu_ids``, YAML ``gpu_ids:`` of old option files).
"""
from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)


DEVICE_HELP = ("auto: the first GPU when CUDA is available, else the CPU; cpu; cuda or cuda:N: that GPU (the CPU "
               "with a warning when CUDA is not available); a GPU id such as 0 or -1 (= cpu), as the released "
               "--gpu_ids, is accepted too")


def check_device(spec, flag: str = '--device') -> str:
    """``spec`` as a device option string, or ValueError naming ``flag`` when it is not one that
    ``select_device`` takes (checked without torch, when the options are parsed)."""
    if isinstance(spec, (list, tuple)):  # YAML gpu_ids: [0]
        spec = ','.join(str(i) for i in spec) or '-1'
    text = 'auto' if spec is None else str(spec).replace(' ', '').lower()
    ids = text.partition(':')[2] if text.startswith('cuda:') else ('0' if text == 'cuda' else text)
    if text in ('auto', 'cpu') or all(re.fullmatch(r'-?\d+', i) for i in ids.split(',')):
        return text
    raise ValueError(f"{flag} must be auto, cpu, cuda, cuda:N or a GPU id such as 0 (-1: the CPU); got {spec!r}")


def device_from_gpu_ids(gpu_ids, where: str) -> str:
    """The device option of an old options file's ``gpu_ids`` (None: auto; [-1]: cpu; [i]: GPU i),
    with a deprecation note in the log naming ``where`` (the file)."""
    device = 'auto' if gpu_ids is None else check_device(gpu_ids, f'{where}: gpu_ids')
    logger.warning('%s: gpu_ids is deprecated; write device: auto, cpu, cuda or cuda:N instead (read as device: %s)',
                   where, device)
    return device


def select_device(spec='auto') -> str:
    """A torch device string for ``spec``.

    'auto' (or None): the first CUDA GPU when there is one, else the CPU, without a warning.
    '-1' or 'cpu': the CPU. A GPU id ('0', '1', '0,1' or a list of ints: the first is used), 'cuda'
    or 'cuda:N': that GPU; the CPU with a warning when CUDA is not available, cuda:0 when the id
    does not exist. An empty list means the CPU.
    """
    import torch

    spec = check_device(spec)
    if spec == 'auto':
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    if spec == 'cpu':
        return 'cpu'
    if spec.startswith('cuda'):
        spec = spec.partition(':')[2] or '0'
    ids = [int(i) for i in spec.split(',')]
    if not ids or ids[0] < 0:
        return 'cpu'
    if not torch.cuda.is_available():
        logger.warning('CUDA is not available: running on the CPU (pass --device cpu to choose it explicitly)')
        return 'cpu'
    if ids[0] >= torch.cuda.device_count():
        logger.warning('GPU %d does not exist (%d visible): using cuda:0', ids[0], torch.cuda.device_count())
        return 'cuda:0'
    if len(ids) > 1:
        logger.warning('only one GPU is used: cuda:%d', ids[0])
    return f'cuda:{ids[0]}'
