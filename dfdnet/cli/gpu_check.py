"""``scripts/gpu_check.sh OUT_DIR [--device cuda]``: the one-command device check.

Parity with the CPU, speed, training (AMP, resume), DDP under torchrun, dictionary building and
the environment, each a section of pass/fail checks. Writes ``OUT_DIR/gpu_check.json`` and
``OUT_DIR/gpu_check.md`` (after every section, so a run cut short keeps what it measured) and
exits 1 naming each mismatch when any check fails. Sized for at most 5 minutes on one GPU;
``--device cpu`` runs the same logic at reduced sizes (docs/benchmarks.md, "GPU check").
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger('gpu_check')

SECTIONS = ('environment', 'parity', 'speed', 'photo', 'training', 'ddp', 'dictionary')


@dataclass(frozen=True)
class CheckSizes:
    """How big each section runs. Widths in channels, K in atoms, batches in faces."""
    name: str
    width: int                  # base channels of the released-layout network (64: released)
    image_size: int             # its face side in pixels (512: released)
    num_atoms: int              # K of its random dictionaries
    batches: tuple              # speed: faces per forward
    precisions: tuple           # parity and speed
    speed_precisions: tuple     # speed only (emulated bf16/fp16 on a CPU is slow)
    shipped_batches: tuple      # speed of the shipped model (empty: not timed)
    repeats: int                # timed forwards per configuration
    photo_batches: tuple
    photo_precisions: tuple
    smoke_iters: int
    paper_iters: int
    resume_iters: int           # iterations after the resume; also the DDP run's
    paper_width: int | None     # None: the released width
    train_batch: int
    train_workers: int
    train_faces: int
    train_atoms: int            # K of the paper-size run's random dictionaries
    dictionary_faces: int
    dictionary_k: int


GPU_SIZES = CheckSizes('gpu', width=64, image_size=512, num_atoms=512, batches=(1, 8, 32),
                       precisions=('fp32', 'bf16', 'fp16'),
                       speed_precisions=('fp32', 'bf16', 'fp16'), shipped_batches=(1, 8, 32), repeats=5,
                       photo_batches=(1, 32), photo_precisions=('fp32', 'bf16', 'fp16'), smoke_iters=20, paper_iters=5,
                       resume_iters=2, paper_width=None, train_batch=2, train_workers=4, train_faces=16,
                       train_atoms=256, dictionary_faces=64, dictionary_k=64)
CPU_SIZES = CheckSizes('cpu (reduced)', width=8, image_size=512, num_atoms=4, batches=(1, 2),
                       precisions=('fp32', 'bf16', 'fp16'),
                       speed_precisions=('fp32',), shipped_batches=(1,), repeats=1, photo_batches=(1,),
                       photo_precisions=('fp32',), smoke_iters=1, paper_iters=1, resume_iters=1, paper_width=4,
                       train_batch=1, train_workers=0, train_faces=2, train_atoms=2, dictionary_faces=2, dictionary_k=2)
# The smallest run, for the suite's test of the check itself: 256-px faces, one face, one repeat,
# one iteration; neither the shipped model's speed (the photo section runs it) nor a paper-size run.
TINY_SIZES = dataclasses.replace(CPU_SIZES, name='tiny', width=4, image_size=256, num_atoms=2, batches=(1,),
                                 shipped_batches=(), paper_iters=0, dictionary_faces=1)
SIZES = {'gpu': GPU_SIZES, 'cpu': CPU_SIZES, 'tiny': TINY_SIZES}


def default_data() -> Path:
    """$DFDNET_SHARED_DATA, else ../shared/data beside the repository, else ./shared/data in it."""
    root = Path(__file__).resolve().parents[2]
    if os.environ.get('DFDNET_SHARED_DATA'):
        return Path(os.environ['DFDNET_SHARED_DATA'])
    beside = root.parent / 'shared' / 'data'
    return beside if beside.is_dir() else root / 'shared' / 'data'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', type=Path, help='folder for gpu_check.json and gpu_check.md')
    parser.add_argument('--device', default='cuda', help="'cuda', 'cuda:N', 'cpu' or 'auto' (select_device)")
    parser.add_argument('--sizes', choices=('auto', *SIZES), default='auto',
                        help='auto: gpu on a GPU, cpu (reduced) on the CPU; tiny: the smallest, for the test suite')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument('--data', type=Path, default=None, help='the shared data folder (faces_hq/, whole/)')
    parser.add_argument('--photo', type=Path, default=None,
                        help='photo for the test_FaceDict section '
                             '(default: DATA/whole/gpen_solvay/Solvay_conference_1927.png)')
    parser.add_argument('--faces', type=Path, default=None,
                        help='aligned HQ faces for training and dictionaries (default: faces_hq/celebahq_512)')
    parser.add_argument('--upscale', type=int, default=2, help='test_FaceDict --upscale_factor')
    parser.add_argument('--amp', default='auto', choices=('auto', 'bf16', 'fp16', 'none'),
                        help='training AMP; auto: bf16 on a GPU, none on the CPU (emulated bf16 is slow)')
    parser.add_argument('--fp32_tol', type=float, default=0.1, help='parity: fp32 max |diff| against the CPU, /255')
    parser.add_argument('--half_tol', type=float, nargs=2, default=(3.0, 0.5), metavar=('MAX', 'MEAN'),
                        help='parity: bf16 / fp16 max and mean |diff|, /255')
    parser.add_argument('--perturb', type=float, default=0.0,
                        help='add this (/255) to the device outputs before the parity comparison: tests the check')
    parser.add_argument('--ddp_timeout', type=float, default=180.0, help='seconds for the torchrun section')
    parser.add_argument('--keep_work', action='store_true', help='keep the temporary experiments under OUT_DIR/work')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s own)')
    return parser


def _sections(args, device: str, sizes: CheckSizes, work: Path) -> dict:
    """The section functions to run, by name, with their arguments (in running order)."""
    from dfdnet.checks import network, runs

    data = args.data or default_data()
    faces = args.faces or data / 'faces_hq' / 'celebahq_512'
    photo = args.photo or data / 'whole' / 'gpen_solvay' / 'Solvay_conference_1927.png'
    amp = {'auto': 'bf16' if device.startswith('cuda') else None, 'none': None}.get(args.amp, args.amp)
    tolerances = {'fp32': (args.fp32_tol, None), 'bf16': tuple(args.half_tol), 'fp16': tuple(args.half_tol)}
    tolerances = {p: tolerances[p] for p in sizes.precisions}
    config = network.released_layout(sizes.width, sizes.image_size)
    table = {
        'environment': (network.check_environment, device),
        'parity': (network.check_parity, device, config, sizes.num_atoms, tolerances, args.perturb),
        'speed': (network.check_speed, device, config, sizes.num_atoms, sizes.batches, sizes.speed_precisions,
                  sizes.repeats, sizes.shipped_batches),
        'photo': (runs.check_photo, device, photo, work, sizes.photo_batches, sizes.photo_precisions, args.upscale),
        'training': (runs.check_training, device, faces, work, sizes, amp),
        'ddp': (runs.check_ddp, device, faces, work, sizes, args.ddp_timeout),
        'dictionary': (runs.check_dictionary, device, faces, work, sizes.dictionary_faces, sizes.dictionary_k),
    }
    return {name: table[name] for name in SECTIONS if name in args.sections}


def run_check(args) -> int:
    """Run the chosen sections, writing the report after each; 0 when all passed, 1 otherwise."""
    import torch

    from dfdnet.checks.report import run_section, write_report
    from dfdnet.utils.device import select_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    if args.device not in ('cpu', '-1', 'auto') and device == 'cpu':
        logger.error('--device %s asked for a GPU but none is usable: the check runs on the CPU and fails', args.device)
    sizes = SIZES.get(args.sizes) or (GPU_SIZES if device.startswith('cuda') else CPU_SIZES)
    report = {'ok': False, 'device': device, 'device_asked': args.device, 'sizes_name': sizes.name,
              'sizes': dataclasses.asdict(sizes), 'environment_line': f'torch {torch.__version__}', 'seconds': 0.0,
              'sections': {}, 'failures': []}
    if args.device not in ('cpu', '-1', 'auto') and device == 'cpu':
        report['failures'].append(f'device: {args.device} asked for, but CUDA is not usable here')
    start = time.perf_counter()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.keep_work:
        (args.out_dir / 'work').mkdir(exist_ok=True)
        work = contextlib.nullcontext(tempfile.mkdtemp(prefix='gpu_check_', dir=args.out_dir / 'work'))
    else:
        work = tempfile.TemporaryDirectory(prefix='gpu_check_')
    with work as tmp:
        for name, (fn, *fn_args) in _sections(args, device, sizes, Path(tmp)).items():
            if device.startswith('cuda'):
                torch.cuda.empty_cache()
            section = run_section(name, fn, *fn_args)
            report['sections'][name] = section.to_dict()
            report['failures'] += section.failures()
            report['seconds'] = round(time.perf_counter() - start, 1)
            report['ok'] = not report['failures']
            if name == 'environment':
                env = section.data
                report['environment_line'] = f"{env.get('gpu') or env.get('cpu')}, torch {env.get('torch')}"
            write_report(args.out_dir, report)
    json_path, md_path = write_report(args.out_dir, report)
    for line in report['failures']:
        print(f'gpu_check FAILED: {line}', file=sys.stderr)
    skipped = [n for n, s in report['sections'].items() if s['skipped']]
    print(f"gpu_check {'passed' if report['ok'] else 'FAILED'} on {device} in {report['seconds']:.0f} s"
          + (f" (skipped: {', '.join(skipped)})" if skipped else '') + f'; results: {json_path}, {md_path}')
    return 0 if report['ok'] else 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO, '%(asctime)s %(levelname)s %(name)s: %(message)s')
    return run_check(args)


if __name__ == '__main__':
    sys.exit(main())
