"""``python -m dfdnet.cli.make_testset``: paired synthetic test sets from held-out HQ faces."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

SHARED_DATA = Path(os.environ.get('DFDNET_SHARED_DATA', Path(__file__).resolve().parents[2].parent / 'shared' / 'data'))
DEFAULT_SOURCES = [SHARED_DATA / 'faces_hq' / 'ffhq_gpen', SHARED_DATA / 'faces_hq' / 'ffhq512_redegnet']
DEFAULT_KERNELS = SHARED_DATA / 'degradation' / 'motion_kernels'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', required=True, type=Path, help='output folder (gt/, landmarks/, <setting>/lq ...)')
    parser.add_argument('--sources', nargs='+', type=Path, default=DEFAULT_SOURCES,
                        help='folders of aligned HQ faces (default: the held-out FFHQ faces)')
    parser.add_argument('--settings', nargs='+', default=None,
                        help='settings to make (default: all of dfdnet.data.testset.SETTINGS: x4, x8, eq11, '
                             'clean_x2, x4_noise_jpeg, x4_blur_noise_jpeg; docs/evaluation.md)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--size', type=int, default=512, help='side of the GT and of the upsampled LQ')
    parser.add_argument('--max-images', type=int, default=None)
    parser.add_argument('--motion-kernels', type=Path, default=None,
                        help=f'folder of .mat/.npy/.png kernels or a .npz set (default: {DEFAULT_KERNELS} '
                             'if present, else the kernels shipped with dfdnet)')
    parser.add_argument('--no-landmarks', action='store_true', help='do not write the GT dlib landmarks')
    parser.add_argument('--overwrite', action='store_true', help='replace a test set already in --out')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO)
    args = parse_args(argv)
    from dfdnet.data.testset import SETTINGS, MakeTestsetOptions, build_testset

    settings = tuple(args.settings or SETTINGS)

    kernels = args.motion_kernels
    if kernels is None and DEFAULT_KERNELS.is_dir():
        kernels = DEFAULT_KERNELS
    options = MakeTestsetOptions(sources=args.sources, out_dir=args.out, seed=args.seed, settings=settings,
                             size=args.size, max_images=args.max_images, motion_kernels=kernels,
                             landmarks=not args.no_landmarks, overwrite=args.overwrite)
    try:
        report = build_testset(options)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'{len(report.names)} faces written to {args.out} ({", ".join(settings)}); '
          f'{len(report.skipped)} inputs skipped')
    for path, reason in report.skipped.items():
        print(f'  skipped {path}: {reason}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
