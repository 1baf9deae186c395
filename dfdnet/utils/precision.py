"""Which reduced precision the hardware runs natively.

bf16 pays on a CUDA GPU with bf16 support and on a CPU with AMX-BF16 or AVX512-BF16 (oneDNN
then runs channels-last bf16 convolutions several times faster than float32). Elsewhere it is
emulated and much slower (measured in docs/benchmarks.md).
"""
from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path


logger = logging.getLogger(__name__)

NATIVE_BF16_CPU_FLAGS = ('amx_bf16', 'avx512_bf16')


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('flags'):
                return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device) -> bool:
    """True when ``device`` computes bf16 natively (see the module docstring)."""
    import torch

    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    return device.type == 'cpu' and any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)


def resolve_amp(amp: str | None, device) -> str | None:
    """``train.amp``: 'auto' becomes 'bf16' where it is native and None (float32) elsewhere."""
    if amp != 'auto':
        return amp
    import torch

    chosen = 'bf16' if native_bf16(device) else None
    logger.info('train.amp auto: %s on %s', chosen or 'float32 (no native bf16)', torch.device(device))
    return chosen


PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')  # of every command's --precision (this module imports torch lazily)
_DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16'}  # torch dtype names


def resolve_precision(precision: str, device) -> str:
    """Inference precision: 'auto' becomes 'bf16' where it is native and 'fp32' elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision != 'auto':
        return precision
    import torch

    chosen = 'bf16' if native_bf16(device) else 'fp32'
    logger.info('precision auto: %s on %s', chosen if chosen == 'bf16' else 'fp32 (no native bf16)',
                torch.device(device))
    return chosen


def precision_dtype(precision: str):
    """The torch dtype of a resolved precision: 'fp32' float32, 'bf16' bfloat16, 'fp16' float16."""
    import torch

    return getattr(torch, {'fp32': 'float32', **_DTYPES}[precision])


def inference_autocast(precision: str, device):
    """``torch.autocast`` to ``precision`` ('bf16' / 'fp16'); for 'fp32' no context at all, so that
    an outer autocast (mixed-precision training) stays in force."""
    if precision == 'fp32':
        return contextlib.nullcontext()
    import torch

    # No weight cache: at inference each weight is used once per forward, so caching its cast copy
    # only adds that copy (half the float32 weights' size) to the peak memory.
    return torch.autocast(torch.device(device).type, dtype=precision_dtype(precision), cache_enabled=False)
