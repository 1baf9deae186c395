"""Generate a seeded set of random camera-shake motion-blur kernels into one .npz file.

    PYTHONPATH=. python scripts/data/make_motion_kernels.py --count 32 --seed 0 --out dfdnet/data/motion_kernels_32.npz
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


from dfdnet.data.motion_kernels import generate_motion_kernels, save_kernel_set


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--count', type=int, default=32, help='number of kernels')
    parser.add_argument('--seed', type=int, default=0, help='random seed (same seed, same kernels)')
    parser.add_argument('--min_size', type=int, default=7, help='smallest kernel side (odd)')
    parser.add_argument('--max_size', type=int, default=35, help='largest kernel side (odd)')
    parser.add_argument('--out', type=Path, required=True, help='output .npz file')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    if args.out.exists() and not args.overwrite:
        parser.error(f'{args.out} exists; pass --overwrite to replace it')
    kernels = generate_motion_kernels(args.count, args.seed, (args.min_size, args.max_size))
    save_kernel_set(args.out, kernels, seed=args.seed, count=args.count, sizes=[args.min_size, args.max_size],
                    generator='dfdnet.data.motion_kernels (Boracchi & Foi 2012 trajectories)')
    print(f'wrote {len(kernels)} kernels ({", ".join(str(k.shape[0]) for k in kernels)} px) to {args.out} '
          f'({args.out.stat().st_size / 1024:.1f} KiB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
