"""``python scripts/validate.py``: PSNR / SSIM of generator checkpoints on a training run's
validation set (``experiments/<name>/val_set``: degraded LQ, GT and component boxes), without
the training machinery. Used to compare runs, e.g. the encoder experiment of docs/default_model.md.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


@torch.inference_mode()
def validate_checkpoint(checkpoint, dict_dir, val_folder, dft_levels=None) -> dict:
    """{'psnr', 'ssim', 'faces', 'groups'} (RGB, 0-255, means over the faces) of one checkpoint on
    ``val_folder``; 'groups' has the mean PSNR of the clean/mild faces (degradation ``clean_prob``)
    and of the degraded ones, each with its count."""
    from dfdnet.archs.checkpoint import load_generator
    from dfdnet.data.validation_set import ValidationDataset
    from dfdnet.metrics import calculate_psnr, calculate_ssim
    from dfdnet.models.dfdnet_model import tensor_to_uint8

    model = load_generator(checkpoint, dict_dir, dft_levels=dft_levels)
    dataset = ValidationDataset(val_folder)
    psnr = ssim = 0.0
    groups: dict = {}
    for item in dataset:
        out = tensor_to_uint8(model(item['lq'][None], item['boxes'][None])[0])
        gt = tensor_to_uint8(item['gt'])
        value = calculate_psnr(out, gt)
        psnr += value
        ssim += calculate_ssim(out, gt)
        group = 'clean' if 'clean_scale' in dataset.items[item['index']].get('params', {}) else 'degraded'
        groups.setdefault(group, []).append(value)
    return {'psnr': psnr / len(dataset), 'ssim': ssim / len(dataset), 'faces': len(dataset),
            'groups': {name: (sum(v) / len(v), len(v)) for name, v in sorted(groups.items())}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--val_set', required=True, type=Path, help='a validation-set folder (manifest.json, lq/, gt/)')
    parser.add_argument('--checkpoint', required=True, nargs='+', type=Path, help='generator checkpoint(s)')
    parser.add_argument('--dict_dir', type=Path, default=None, help='dictionaries (models with DFT levels)')
    parser.add_argument('--dft_levels', type=int, nargs='*', default=None, help='override the DFT levels (ablation)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    print('| checkpoint | faces | PSNR (dB) | SSIM | PSNR by group (dB) |\n|---|---|---|---|---|')
    for checkpoint in args.checkpoint:
        m = validate_checkpoint(checkpoint, args.dict_dir, args.val_set, args.dft_levels)
        groups = ', '.join(f'{name} {value:.2f} ({count})' for name, (value, count) in m['groups'].items())
        print(f'| {checkpoint} | {m["faces"]} | {m["psnr"]:.2f} | {m["ssim"]:.4f} | {groups} |')
    return 0
