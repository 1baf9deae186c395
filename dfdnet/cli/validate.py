"""``python -m dfdnet.cli.validate``: PSNR / SSIM of generator checkpoints on a training run's
validation set (``experiments/<name>/val_set``: degraded LQ, GT and component boxes), without
the training machinery. Used to compare runs, e.g. the encoder experiment of docs/default_model.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dfdnet.utils.device import DEVICE_HELP, check_device

logger = logging.getLogger(__name__)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--val_set', required=True, type=Path, help='a validation-set folder (manifest.json, lq/, gt/)')
    parser.add_argument('--checkpoint', required=True, nargs='+', type=Path, help='generator checkpoint(s)')
    parser.add_argument('--dict_dir', type=Path, default=None, help='dictionaries (models with DFT levels)')
    parser.add_argument('--dft_levels', type=int, nargs='*', default=None, help='override the DFT levels (ablation)')
    parser.add_argument('--device', default='cpu', help=DEVICE_HELP + ' (default cpu)')
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO)
    print('| checkpoint | faces | PSNR (dB) | SSIM | PSNR in component boxes (dB) | detail ratio (median) '
          '| PSNR by group (dB) |\n|---|---|---|---|---|---|---|')
    from dfdnet.models.validation import validate_checkpoint

    for checkpoint in args.checkpoint:
        scores = validate_checkpoint(checkpoint, args.dict_dir, args.val_set, args.dft_levels, args.device)
        means = scores.means()
        groups = ', '.join(f'{name} {value:.2f} ({count})' for name, (value, count) in scores.group_psnr().items())
        print(f'| {checkpoint} | {len(scores.psnr)} | {means["psnr"]:.2f} | {means["ssim"]:.4f} '
              f'| {means["component_psnr"]:.2f} | {means["detail_ratio"]:.3f} | {groups} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
