#!/usr/bin/env python
"""Loading the released weights: seconds, peak memory and the split by step of ``load_generator``.

    PYTHONPATH=. python scripts/benchmarks/load.py --work /tmp/dfdnet_load --k 512 --precisions fp32 bf16 --repeats 3
    PYTHONPATH=/work/main python scripts/benchmarks/load.py ... --cold_only   # another checkout's loader

The files are a released-layout ``latest_net_G.pth`` (386 keys, 240 M parameters, seeded random
weights) and ``--k`` random float32 atoms per dictionary in the released ``.npy`` layout, written
once under ``--work`` (never into the repository). Each load runs in its own process (its peak RSS
is its own) with the dictionary cache ($DFDNET_CACHE) in a folder under ``--work``: "cold" starts
from an empty cache (a first run), "warm" from the one a cold run left. The source files are in the
page cache either way (they were just read). The steps are timed by wrapping the loader's
functions; "other" is the rest of ``load_generator`` (folding the spectral norm, channels-last).
After the load, one forward of a 512-px face (typical boxes) gives the peak RSS after a forward.
Each figure is the median of ``--repeats`` runs. Results: a Markdown table and ``--json``.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dfdnet.utils.precision import PRECISIONS

# (module, function) -> step name; a function the measured checkout lacks is skipped
STEPS = [('dfdnet.archs.checkpoint', 'read_checkpoint', 'read checkpoint'),
         ('dfdnet.archs.checkpoint', 'generator_to_load', 'build network'),
         ('dfdnet.archs.checkpoint', 'DFDNetGenerator', 'build network'),
         ('dfdnet.archs.checkpoint', 'check_finite', 'check weights'),
         ('dfdnet.archs.checkpoint', 'load_state_strict', 'copy weights'),
         ('dfdnet.archs.checkpoint', 'load_dictionaries', 'dictionaries'),
         ('dfdnet.archs.atom_cache', 'read_entry', 'dictionaries: cache check'),
         ('dfdnet.archs.atom_cache', 'write_entry', 'dictionaries: cache build')]


def write_released_checkpoint(path: Path) -> Path:
    """The released ``latest_net_G.pth`` layout (with its unused classifier, duplicate encoder and
    to_rgb layers) with seeded random weights: timing only."""
    import torch

    from dfdnet.archs.random_weights import condition_spectral_norm_
    from dfdnet.archs.released_reference import ReleasedDFDNet
    from dfdnet.utils.files import atomic_torch_save

    if not path.exists():
        torch.manual_seed(0)
        atomic_torch_save(condition_spectral_norm_(ReleasedDFDNet(None)).state_dict(), path)
    return path


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM, MiB). Not ``ru_maxrss``: a process started by
    another carries that one's peak across ``exec`` (here: the parent that wrote the files)."""
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmHWM in /proc/self/status (Linux only)')


def _timed(function, name: str, seconds: dict):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
    return wrapper


def run_one(args) -> dict:
    """One load and one forward, in this process."""
    import importlib

    import torch

    from dfdnet.archs.random_weights import TYPICAL_BOXES

    torch.set_num_threads(args.threads)
    seconds = {}
    wrapped = set()
    for module_name, function, name in STEPS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, function) and name not in wrapped:
            setattr(module, function, _timed(getattr(module, function), name, seconds))
            wrapped.add(name)
    from dfdnet.archs.checkpoint import load_generator

    rss_start = peak_rss_mib()
    start = time.perf_counter()
    model = load_generator(args.checkpoint, args.dict_dir, precision=args.precision)
    total = time.perf_counter() - start
    rss_load = peak_rss_mib()
    with torch.inference_mode():
        start = time.perf_counter()
        out = model(torch.rand(1, 3, 512, 512) * 2 - 1, torch.tensor([TYPICAL_BOXES]))
        forward = time.perf_counter() - start
    assert bool(torch.isfinite(out).all())
    top = sum(v for k, v in seconds.items() if ':' not in k)
    return {'load_s': total, 'steps_s': {**seconds, 'other': total - top}, 'forward_s': forward,
            'rss_start_mib': rss_start, 'peak_rss_load_mib': rss_load, 'peak_rss_forward_mib': peak_rss_mib()}


def _child(args, precision: str, cache: Path) -> dict:
    command = [sys.executable, __file__, '--one', '--precision', precision, '--checkpoint', str(args.checkpoint),
               '--dict_dir', str(args.dict_dir), '--threads', str(args.threads)]
    env = {**os.environ, 'DFDNET_CACHE': str(cache)}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f'the load failed ({precision}):\n{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(runs: list, key: str):
    return statistics.median(run[key] for run in runs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work', type=Path, default=Path('/tmp/dfdnet_load'),
                        help='where the random released-layout files and the caches are written')
    parser.add_argument('--k', type=int, default=512, help='atoms per dictionary (released: 512)')
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=[p for p in PRECISIONS if p != 'auto'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--cold_only', action='store_true',
                        help='one run per repeat (a checkout without the dictionary cache: cold and warm are the same)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--json', type=Path)
    parser.add_argument('--one', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--precision', help=argparse.SUPPRESS)
    parser.add_argument('--checkpoint', type=Path, help=argparse.SUPPRESS)
    parser.add_argument('--dict_dir', type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)))
        return
    from dfdnet.archs.dfdnet_arch import GeneratorConfig
    from dfdnet.models.builders import write_random_dictionary

    args.checkpoint = write_released_checkpoint(args.work / 'latest_net_G.pth')
    args.dict_dir = write_random_dictionary(args.work / f'dictionaries_k{args.k}', GeneratorConfig(), args.k, seed=0)
    rows = []
    for precision in args.precisions:
        runs = {'cold': []} if args.cold_only else {'cold': [], 'warm': []}
        for repeat in range(args.repeats):
            cache = args.work / f'cache_{precision}_{repeat}'
            shutil.rmtree(cache, ignore_errors=True)
            for state in runs:
                runs[state].append(_child(args, precision, cache))
            shutil.rmtree(cache, ignore_errors=True)
        for state, done in runs.items():
            steps = {name: statistics.median(run['steps_s'].get(name, 0.0) for run in done)
                     for name in dict.fromkeys(k for run in done for k in run['steps_s'])}
            rows.append({'precision': precision, 'cache': state, 'K': args.k, 'load_s': _median(done, 'load_s'),
                         'forward_s': _median(done, 'forward_s'), 'steps_s': steps,
                         'peak_rss_load_mib': _median(done, 'peak_rss_load_mib'),
                         'peak_rss_forward_mib': _median(done, 'peak_rss_forward_mib'), 'runs': done})
    print(f'| precision | cache | load (s) | peak RSS after load (GiB) | after a forward (GiB) | steps (s) |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        steps = ', '.join(f'{k} {v:.2f}' for k, v in row['steps_s'].items())
        print(f"| {row['precision']} | {row['cache']} | {row['load_s']:.2f} | {row['peak_rss_load_mib'] / 1024:.2f} "
              f"| {row['peak_rss_forward_mib'] / 1024:.2f} | {steps} |")
    if args.json:
        args.json.write_text(json.dumps({'argv': sys.argv, 'rows': rows}, indent=1))


if __name__ == '__main__':
    main()
