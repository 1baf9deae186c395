#!/usr/bin/env python
"""Seconds per face of the generator on each backend (torch, OpenVINO, onnxruntime) and precision.

    PYTHONPATH=. python scripts/benchmarks/backends.py --models shipped released --precisions fp32 bf16 --repeats 5

"shipped" is dfdnet/pretrained/default at fidelity 1; "released" is the released layout (width 64)
with seeded random weights and K random atoms (--k; the 3 GB of K = 512 make a graph over 2 GB).
The converted models are cached under --cache (a first run converts). Each time is the median of
--repeats forwards at batch --batch after one warm-up, the typical boxes of a 512-px face, in one
process; differences are against torch fp32 in 1/255. Results: a Markdown table and --json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from dfdnet.archs.checkpoint import load_generator
from dfdnet.archs.onnx_export import compare
from dfdnet.archs.dfdnet_arch import GeneratorConfig
from dfdnet.archs.random_weights import TYPICAL_BOXES, save_random_checkpoint
from dfdnet.models.builders import write_random_dictionary
from dfdnet.utils.precision import PRECISIONS

ROOT = Path(__file__).resolve().parents[2]  # the repository


def _models(names, k: int, work: Path) -> dict:
    models = {}
    for name in names:
        if name == 'shipped':
            shipped = ROOT / 'dfdnet' / 'pretrained' / 'default'
            models[name] = (shipped / 'net_g.pth', shipped / 'dictionaries')
        else:
            models[name] = (save_random_checkpoint(work / 'released_w64.pth'),
                            write_random_dictionary(work / f'dicts_k{k}', GeneratorConfig(), k, 0))
    return models


def _time(g, images, boxes, repeats: int) -> float:
    with torch.no_grad():
        g(images, boxes)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            g(images, boxes)
            times.append(time.perf_counter() - start)
    return statistics.median(times) / len(images)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=['shipped', 'released'], choices=('shipped', 'released'))
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'],
                        choices=[p for p in PRECISIONS if p != 'auto'])
    parser.add_argument('--backends', nargs='+', default=['torch', 'openvino', 'onnxruntime'])
    parser.add_argument('--k', type=int, default=64, help='atoms of the released-layout dictionaries')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--work', type=Path, default=ROOT / 'experiments' / 'benchmark_backends')
    parser.add_argument('--json', type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, 512, 512) * 2 - 1
    boxes = torch.tensor([TYPICAL_BOXES] * args.batch, dtype=torch.float32)
    rows = []
    for name, (checkpoint, dicts) in _models(args.models, args.k, args.work).items():
        with torch.no_grad():
            reference = load_generator(checkpoint, dicts, precision='fp32', fidelity=1.0)(images, boxes)
        base = {}
        for precision in args.precisions:
            for backend in args.backends:
                if backend == 'onnxruntime' and precision != 'fp32':
                    continue
                start = time.perf_counter()
                g = load_generator(checkpoint, dicts, precision=precision, backend=backend,
                                   cache_dir=args.work / 'cache')
                load = time.perf_counter() - start
                seconds = _time(g, images, boxes, args.repeats)
                with torch.no_grad():
                    diff = compare(reference, g(images, boxes).float().numpy())
                base.setdefault(precision, seconds if backend == 'torch' else None)
                rows.append({'model': name, 'precision': precision, 'backend': backend, 'load_s': load,
                             's_per_face': seconds, 'vs_torch': seconds / base[precision] if base[precision] else None,
                             **diff})
                print(rows[-1], file=sys.stderr, flush=True)
                del g
    print('| model | precision | backend | s per face | vs torch | max diff /255 | mean diff /255 | load s |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        ratio = f"{r['vs_torch']:.2f}x" if r['vs_torch'] else ''
        print(f"| {r['model']} | {r['precision']} | {r['backend']} | {r['s_per_face']:.3f} | {ratio} | "
              f"{r['max_255']:.2f} | {r['mean_255']:.3f} | {r['load_s']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
