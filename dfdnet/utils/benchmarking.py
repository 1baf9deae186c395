"""Helpers for benchmark scripts: machine description, timing, peak memory."""
from __future__ import annotations

import platform
import resource
import time

import torch

from dfdnet.utils.files import atomic_path


def machine_info(device: str = 'cpu') -> dict:
    """What a figure was measured on: CPU model, cores, threads, torch version, GPU name."""
    cpu = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as fh:
            cpu = next((line.split(':', 1)[1].strip() for line in fh if line.startswith('model name')), cpu)
    except OSError:
        pass
    info = {'cpu': cpu, 'logical_cpus': torch.multiprocessing.cpu_count(), 'torch_threads': torch.get_num_threads(),
            'torch': torch.__version__, 'python': platform.python_version(), 'platform': platform.platform()}
    if device.startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return info


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeats: int, warmup: int = 1, device: str = 'cpu') -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones."""
    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize(device)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col, '')
            cells.append(f'{value:.3f}' if isinstance(value, float) else str(value))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def print_report(report: dict, path=None) -> None:
    """Print a measurement script's ``report`` as JSON, and write it to ``path`` too when given."""
    import json

    text = json.dumps(report, indent=2)
    print(text)
    if path is not None:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding='utf-8')
