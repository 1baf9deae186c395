#!/usr/bin/env python
"""Speed and memory of the DFDNet generator (and of the released implementation's semantics).

    PYTHONPATH=. python scripts/benchmarks/inference.py generator --k 8 512 --batch 1 --released --threads 2
    PYTHONPATH=. python scripts/benchmarks/inference.py generator --quick            # a fast smoke run

Each configuration runs in its own process so that its peak RSS is its own. Dictionaries of
K random atoms are written once in the released .npy layout under --dict_root and loaded
through the normal loader. Results: a Markdown table on stdout and JSON (--json).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from dfdnet.archs.dfdnet_arch import GeneratorConfig
from dfdnet.archs.random_weights import TYPICAL_BOXES, save_random_checkpoint
from dfdnet.utils.precision import PRECISIONS

ROOT = Path(__file__).resolve().parents[2]  # the repository


def run_one(args) -> dict:
    """One configuration, in this process: load, warm up, time, report peak memory."""
    import torch

    from dfdnet.utils.benchmarking import machine_info, peak_rss_mb, timed

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = args.device
    dict_dir = Path(args.dict_dir)
    row = {'impl': args.impl, 'K': args.k, 'batch': args.batch, 'dtype': args.dtype, 'device': device}
    rss_start = peak_rss_mb()
    boxes = torch.tensor([TYPICAL_BOXES] * args.batch)
    images = torch.rand(args.batch, 3, 512, 512, device=device) * 2 - 1
    if args.impl == 'ours':
        from dfdnet.archs.checkpoint import load_generator

        # the real loading path, with the precision the restore command would use
        model = load_generator(args.checkpoint, dict_dir, device=device, precision=args.dtype)
        row['width'] = model.config.width

        def step():
            with torch.inference_mode():
                model(images, boxes)
    else:
        from dfdnet.archs.released_reference import ReleasedDFDNet

        model = ReleasedDFDNet(dict_dir).to(device).eval()
        row['width'] = 64

        def step():
            with torch.inference_mode():
                for i in range(args.batch):  # the released code handles one face per call
                    model(images[i:i + 1], boxes[i])
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats(device)
    times = timed(step, repeats=args.repeats, warmup=args.warmup, device=device)
    best = min(times)
    row.update({'s_per_batch': best, 's_per_face': best / args.batch, 'faces_per_s': args.batch / best,
                'median_s_per_face': sorted(times)[len(times) // 2] / args.batch,
                'peak_rss_mb': peak_rss_mb(), 'rss_before_load_mb': rss_start,
                'dict_mb': sum(p.stat().st_size for p in dict_dir.glob('*.npy')) / 2**20})
    if device.startswith('cuda'):
        row['cuda_max_allocated_mb'] = torch.cuda.max_memory_allocated(device) / 2**20
    row['machine'] = machine_info(device)
    return row


def run_generator(args) -> list[dict]:
    from dfdnet.models.builders import write_random_dictionary  # here: the timed processes stay lean

    if args.dict_root is None:  # nothing to reuse: work in a folder that is removed afterwards
        with tempfile.TemporaryDirectory(prefix='dfdnet_bench_') as tmp:
            args.dict_root = tmp
            return run_generator(args)
    dict_root = Path(args.dict_root)
    checkpoint = save_random_checkpoint(dict_root / f'random_net_G_w{args.width}.pth', args.width)
    rows = []
    configs = [('ours', k, b, d) for k in args.k for b in args.batch for d in args.dtype]
    if args.released and args.width != 64:
        raise SystemExit('--released times the released network: width 64 only')
    if args.released:
        configs += [('released', k, 1, 'fp32') for k in args.k]
    for impl, k, batch, dtype in configs:
        dict_dir = write_random_dictionary(dict_root / f'K{k}_w{args.width}', GeneratorConfig(width=args.width), k, 0)
        cmd = [sys.executable, __file__, '_one', '--impl', impl, '--k', str(k), '--batch', str(batch),
               '--dtype', dtype, '--device', args.device, '--threads', str(args.threads),
               '--repeats', str(args.repeats), '--warmup', str(args.warmup), '--dict_dir', str(dict_dir),
               '--checkpoint', str(checkpoint)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({'impl': impl, 'K': k, 'batch': batch, 'dtype': dtype, 'error': proc.stderr.strip()[-300:]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f'{impl} K={k} B={batch} {dtype}: ' + (f"{rows[-1]['s_per_face']:.2f} s/face, peak RSS "
              f"{rows[-1]['peak_rss_mb']:.0f} MB" if 'error' not in rows[-1] else rows[-1]['error']), file=sys.stderr)
    return rows


def run_pipeline(args) -> list[dict]:
    """Whole-image pipeline on a folder: seconds per image and per face, split by stage."""
    with tempfile.TemporaryDirectory(prefix='dfdnet_bench_pipeline_') as tmp:
        return _run_pipeline(args, Path(tmp))


def _run_pipeline(args, work: Path) -> list[dict]:
    from dfdnet.cli import restore
    from dfdnet.models.builders import write_random_dictionary
    from dfdnet.utils.benchmarking import machine_info

    checkpoint, dict_dir = args.checkpoint, args.dict_dir
    if checkpoint is None:  # random weights in our format: timing only
        checkpoint = save_random_checkpoint(work / 'random_net_G.pth')
        dict_dir = write_random_dictionary(work / f'K{args.k[0]}', GeneratorConfig(), args.k[0], 0)
    rows = []
    for batch in args.batch:
        out = work / f'results_b{batch}'
        code = restore.main(['--test_path', args.images, '--results_dir', str(out), '--checkpoint', str(checkpoint),
                             '--dict_dir', str(dict_dir), '--upscale_factor', str(args.upscale_factor),
                             '--device', args.device, '--batch_size', str(batch), '--no_html'])
        summary = json.loads((out / 'summary.json').read_text())
        images = max(1, summary['images_done'])
        faces = max(1, summary['faces_restored'])
        row = {'impl': 'pipeline', 'batch': batch, 'images': summary['images_done'], 'faces': summary['faces_restored'],
               'exit': code, 's_per_image': summary['total_seconds'] / images, 's_per_face': summary['total_seconds'] / faces,
               'model_load_s': summary['model_load_seconds'], 'device': summary['device']}
        for stage, seconds in summary['stage_seconds'].items():
            row[f'{stage}_s_per_image'] = seconds / images
        row['machine'] = machine_info(summary['device'])
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    gen = sub.add_parser('generator', help='time the generator forward per 512 face')
    gen.add_argument('--k', type=int, nargs='+', default=[8, 64, 512], help='atoms per dictionary')
    gen.add_argument('--batch', type=int, nargs='+', default=[1])
    gen.add_argument('--dtype', nargs='+', default=['fp32'], choices=[p for p in PRECISIONS if p != 'auto'])
    gen.add_argument('--device', default='cpu')
    gen.add_argument('--threads', type=int, default=2)
    gen.add_argument('--repeats', type=int, default=3)
    gen.add_argument('--released', action='store_true', help="also time the released code's semantics")
    gen.add_argument('--dict_root', help='where random dictionaries are written (reused across runs)')
    gen.add_argument('--json', help='write the rows here')
    gen.add_argument('--warmup', type=int, default=1, help='untimed forwards before the timed ones')
    gen.add_argument('--width', type=int, default=64, help='base channels (64: the released network)')
    gen.add_argument('--quick', action='store_true',
                     help='width 16, K=4, batch 1, no warm-up, one repeat (a smoke run of the script)')
    pipe = sub.add_parser('pipeline', help='time test_FaceDict on a folder, split by stage')
    pipe.add_argument('--images', default=str(ROOT.parent / 'shared' / 'data' / 'whole' / 'dfdnet_testwhole'))
    pipe.add_argument('--checkpoint', help='generator checkpoint (default: random weights, K atoms)')
    pipe.add_argument('--dict_dir')
    pipe.add_argument('--k', type=int, nargs=1, default=[8])
    pipe.add_argument('--batch', type=int, nargs='+', default=[1])
    pipe.add_argument('--upscale_factor', type=int, default=4)
    pipe.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:N' or 'auto'")
    pipe.add_argument('--threads', type=int, default=2)
    pipe.add_argument('--json')
    one = sub.add_parser('_one')
    for name, kind in (('--impl', str), ('--k', int), ('--batch', int), ('--dtype', str), ('--device', str),
                       ('--threads', int), ('--repeats', int), ('--warmup', int), ('--dict_dir', str),
                       ('--checkpoint', str)):
        one.add_argument(name, type=kind, required=True)
    args = parser.parse_args(argv)

    if args.command == '_one':
        print(json.dumps(run_one(args)))
        return 0
    from dfdnet.utils.benchmarking import markdown_table

    if args.command == 'pipeline':
        import torch

        torch.set_num_threads(args.threads)
        rows = run_pipeline(args)
        stages = sorted({k for r in rows for k in r if k.endswith('_s_per_image')})
        print(markdown_table(rows, ['batch', 'images', 'faces', 'device', 's_per_image', 's_per_face'] + stages))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 0 if all(r['exit'] == 0 for r in rows) else 1
    else:
        if args.quick:
            args.k, args.batch, args.dtype, args.repeats, args.warmup, args.released = [4], [1], ['fp32'], 1, 0, False
            args.width = 16
        rows = run_generator(args)
        print(markdown_table(rows, ['impl', 'width', 'K', 'batch', 'dtype', 'device', 's_per_face', 'faces_per_s',
                                    'peak_rss_mb', 'dict_mb']))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 1 if any('error' in r for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
