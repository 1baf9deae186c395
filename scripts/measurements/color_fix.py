"""Colour error of each ``--color_fix`` against ground truth, on a test set made by
``dfdnet-make-testset`` (aligned faces: ``gt/`` and ``<setting>/lq/``).

Every face is restored once (``--aligned``, landmarks found on the degraded input as the command
does); each colour fix is then applied to that output with the input crop as reference. Reported
per setting: mean CIEDE2000 ΔE (Lab, scikit-image) and PSNR against the ground truth.

    PYTHONPATH=. python scripts/measurements/color_fix.py --testset results/testset_val --settings x4 eq11 x4_noise_jpeg
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab


from dfdnet.face.color import COLOR_FIXES, color_fix
from dfdnet.metrics import calculate_psnr
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer
from dfdnet.utils.image_io import list_face_images, read_rgb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--testset', type=Path, required=True)
    parser.add_argument('--settings', nargs='+', default=['x4', 'eq11', 'x4_noise_jpeg'])
    parser.add_argument('--checkpoint', type=Path, default=None)
    parser.add_argument('--dict_dir', type=Path, default=None)
    parser.add_argument('--json', type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    restorer = PhotoRestorer.from_options(RestoreOptions(checkpoint=args.checkpoint, dict_dir=args.dict_dir,
                                                         aligned=True, device='cpu'))
    table = {}
    for setting in args.settings:
        scores = {name: {'delta_e': [], 'psnr': []} for name in ('input',) + COLOR_FIXES}
        for lq_path in list_face_images(args.testset / setting / 'lq'):
            gt = read_rgb(args.testset / 'gt' / lq_path.name)
            prepared = restorer.prepare_aligned(read_rgb(lq_path))
            restored = restorer.restore_faces([prepared])[0]
            outputs = {'input': prepared.crop, **{name: color_fix(restored, prepared.crop, name) for name in COLOR_FIXES}}
            gt_lab = rgb2lab(gt)
            for name, out in outputs.items():
                scores[name]['delta_e'].append(float(deltaE_ciede2000(gt_lab, rgb2lab(out)).mean()))
                scores[name]['psnr'].append(calculate_psnr(out, gt))
        table[setting] = {name: {k: float(np.mean(v)) for k, v in s.items()} | {'faces': len(s['psnr'])}
                          for name, s in scores.items()}
    print('| setting | ' + ' | '.join(f'{n} ΔE00 / PSNR' for n in ('input',) + COLOR_FIXES) + ' |')
    print('|---|' + '---|' * (1 + len(COLOR_FIXES)))
    for setting, row in table.items():
        print(f'| {setting} | ' + ' | '.join(f'{row[n]["delta_e"]:.3f} / {row[n]["psnr"]:.2f}'
                                             for n in ('input',) + COLOR_FIXES) + ' |')
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
