#!/usr/bin/env python
"""Seconds per face of the generator on each backend (torch, OpenVINO, onnxruntime) and precision.

    PYTHONPATH=. python scripts/benchmarks/backends.py --models shipped released --precisions fp32 bf16 --repeats 5

"shipped" is dfdnet/pretrained/default at fidelity 1; "released" is the released layout (width 64)
with seeded random weights and K random atoms (--k; the 3 GB of K = 512 make a graph over 2 GB).
The converted models are cached under --work (a first run converts). Each time is the median of
--repeats forwards at batch --batch after one warm-up, the typical boxes of a 512-px face, in one
process; differences are against torch fp32 in 1/255. GFLOP/s: the network's multiply-adds per face
(x2, counted by torch's FlopCounterMode) over its time, beside one large 3x3 convolution (256 to 256
channels at 128 px, channels-last) in the same precision: what this CPU reaches on the network's kind of
work. --photo: the whole photo through PhotoRestorer (detection, alignment, restoration, paste-back),
seconds per face, for the shipped model. Results: a Markdown table and --json.
"""
from __future__ import annotations

import argparse
import json
import os
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


def _network_gflop(g, images, boxes) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        g(images[:1], boxes[:1])
    return counter.get_total_flops() / 1e9


def _conv_gflops(precision: str, repeats: int) -> float:
    """GFLOP/s of one 256 -> 256, 3x3 convolution at 128 px, channels-last, in ``precision``."""
    dtype = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(dtype=dtype, memory_format=torch.channels_last)
    x = torch.randn(1, 256, 128, 128).to(dtype=dtype, memory_format=torch.channels_last)
    seconds = _time(lambda a, _b: conv(a), x, None, repeats)
    return 2 * 256 * 256 * 9 * 128 * 128 / seconds / 1e9


def _runs(precisions, backends):
    """The (precision, backend) pairs to time: every pair but onnxruntime below float32."""
    return [(p, b) for p in precisions for b in backends if b != 'onnxruntime' or p == 'fp32']


def _photo_rows(photo: Path, precisions, backends) -> list:
    import cv2

    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.pipeline.photo import PhotoRestorer

    image = cv2.imread(str(photo))[:, :, ::-1]
    rows = []
    for precision, backend in _runs(precisions, backends):
        restorer = PhotoRestorer.from_options(RestoreOptions(
            upscale_factor=2, device='cpu', precision=precision, backend=backend, fidelity='1'))
        start = time.perf_counter()
        result = restorer.enhance(image)
        seconds = time.perf_counter() - start
        faces = len(result.restored_faces)
        rows.append({'photo': photo.name, 'precision': precision, 'backend': backend, 'faces': faces,
                     'seconds': seconds, 's_per_face': seconds / max(1, faces)})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


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
    parser.add_argument('--photo', type=Path, default=None, help='a whole photo to restore with the shipped model')
    args = parser.parse_args(argv)
    os.environ['DFDNET_CACHE'] = str(args.work)  # the converted models, shared by the network and photo runs
    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, 512, 512) * 2 - 1
    boxes = torch.tensor([TYPICAL_BOXES] * args.batch, dtype=torch.float32)
    rows = []
    for name, (checkpoint, dicts) in _models(args.models, args.k, args.work).items():
        fp32 = load_generator(checkpoint, dicts, precision='fp32', fidelity=1.0)
        with torch.no_grad():
            reference = fp32(images, boxes)
        gflop = _network_gflop(fp32, images, boxes)
        del fp32
        base = {}
        for precision, backend in _runs(args.precisions, args.backends):
            start = time.perf_counter()
            g = load_generator(checkpoint, dicts, precision=precision, backend=backend)
            load = time.perf_counter() - start
            seconds = _time(g, images, boxes, args.repeats)
            with torch.no_grad():
                diff = compare(reference, g(images, boxes).float().numpy())
            base.setdefault(precision, seconds if backend == 'torch' else None)
            rows.append({'model': name, 'precision': precision, 'backend': backend, 'load_s': load,
                         's_per_face': seconds, 'vs_torch': seconds / base[precision] if base[precision] else None,
                         'gflop': gflop, 'gflops': gflop / seconds, **diff})
            print(rows[-1], file=sys.stderr, flush=True)
            del g
    conv = {precision: _conv_gflops(precision, args.repeats) for precision in args.precisions}
    print('| model | precision | backend | s per face | vs torch | GFLOP/s (one large conv) | max diff /255 | '
          'mean diff /255 | load s |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        ratio = f"{r['vs_torch']:.2f}x" if r['vs_torch'] else ''
        print(f"| {r['model']} | {r['precision']} | {r['backend']} | {r['s_per_face']:.3f} | {ratio} | "
              f"{r['gflops']:.0f} ({conv[r['precision']]:.0f}) | {r['max_255']:.2f} | {r['mean_255']:.3f} | "
              f"{r['load_s']:.1f} |")
    photo_rows = _photo_rows(args.photo, args.precisions, args.backends) if args.photo else []
    for r in photo_rows:
        print(f"| {r['photo']} ({r['faces']} faces), whole photo | {r['precision']} | {r['backend']} | "
              f"{r['s_per_face']:.3f} | | | | | |")
    if args.json:
        args.json.write_text(json.dumps({'rows': rows, 'conv_gflops': conv, 'photo': photo_rows}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
