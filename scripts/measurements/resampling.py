"""Measure the photo pipeline's resampling kernel (``--resampling``) end to end.

Each high-quality photo is the ground truth. Its ×``--scale`` area-downscaled copy (optionally
blurred, noised and JPEG-compressed after the downscale: ``--sigma``, ``--noise``, ``--jpeg``) is
restored at ``--upscale_factor`` = ``--scale`` with the model (default: the shipped one) once per
kernel, and compared with the ground truth in the faces' paste masks (PSNR over the masked
pixels, RGB, 0-255) and over the whole photo. The plain bilinear and bicubic upscales of the small
photo are the baselines.

    PYTHONPATH=. python scripts/measurements/resampling.py --photos DIR --scale 2 --json out.json
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np


from dfdnet.data import degradations as deg
from dfdnet.face.paste import canvas_masks, upscale_image
from dfdnet.metrics.psnr_ssim import calculate_psnr
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer
from dfdnet.utils.image_io import list_face_images, read_rgb
from dfdnet.utils.precision import PRECISIONS

KERNELS = ('bilinear', 'bicubic')


def degrade(gt: np.ndarray, args, rng: np.random.Generator) -> np.ndarray:
    """The small photo: area downscale, then the optional blur, noise and JPEG (uint8 RGB)."""
    small = cv2.resize(gt, (gt.shape[1] // args.scale, gt.shape[0] // args.scale), interpolation=cv2.INTER_AREA)
    if not (args.sigma or args.noise or args.jpeg):
        return small
    img = small.astype(np.float32) / 255
    if args.sigma:
        img = deg.gaussian_blur(img, args.sigma)
    if args.noise:
        img = deg.add_gaussian_noise(img, args.noise, rng)
    if args.jpeg:
        img = deg.jpeg_compress(img, args.jpeg)
    return deg.to_uint8(img)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--photos', type=Path, required=True, help='folder of high-quality photos (ground truth)')
    parser.add_argument('--max_photos', type=int, default=40)
    parser.add_argument('--scale', type=int, default=2)
    parser.add_argument('--sigma', type=float, default=0.0, help='Gaussian blur after the downscale (px)')
    parser.add_argument('--noise', type=float, default=0.0, help='Gaussian noise sigma (0-255)')
    parser.add_argument('--jpeg', type=int, default=0, help='JPEG quality (0: none)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--checkpoint', type=Path, default=None)
    parser.add_argument('--dict_dir', type=Path, default=None)
    parser.add_argument('--paste_transform', default='inverse', choices=('inverse', 'released'))
    parser.add_argument('--precision', default='fp32', choices=PRECISIONS,
                        help='of the generator (fp32: the same figures on every machine)')
    parser.add_argument('--json', type=Path, default=None, help='write the per-photo rows here')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    restorers = {k: PhotoRestorer.from_options(RestoreOptions(checkpoint=args.checkpoint, dict_dir=args.dict_dir,
                                                              upscale_factor=args.scale, device='cpu', resampling=k,
                                                              paste_transform=args.paste_transform,
                                                              precision=args.precision))
                 for k in KERNELS}
    size = restorers['bilinear'].face_size
    rows = []
    for index, path in enumerate(list_face_images(args.photos)[:args.max_photos]):
        gt = read_rgb(path)
        gt = gt[:gt.shape[0] // args.scale * args.scale, :gt.shape[1] // args.scale * args.scale]
        small = degrade(gt, args, np.random.default_rng((args.seed, index)))
        results = {k: r.enhance(small) for k, r in restorers.items()}
        if any(len(r.faces) == 0 for r in results.values()):
            continue
        # The masks of the bilinear run's faces, so that every output is scored on the same pixels.
        mask = canvas_masks(results['bilinear'].faces, gt.shape, size, args.scale, 'face') > 0.5
        outputs = {**{f'upscale_{k}': upscale_image(small, args.scale, k) for k in KERNELS},
                   **{f'restored_{k}': r.image for k, r in results.items()}}
        row = {'photo': path.name, 'faces': len(results['bilinear'].faces)}
        for name, out in outputs.items():
            row[f'{name}_face'] = calculate_psnr(out[mask], gt[mask])  # the masked pixels, (N, 3)
            row[f'{name}_photo'] = calculate_psnr(out, gt)
        rows.append(row)
    keys = [k for k in rows[0] if k.endswith(('_face', '_photo'))]
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    print(f'{len(rows)} photos, x{args.scale}, sigma {args.sigma}, noise {args.noise}, jpeg {args.jpeg}, '
          f'paste {args.paste_transform}')
    for k in keys:
        print(f'  {k:28s} {summary[k]:.2f} dB')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({'args': {k: str(v) for k, v in vars(args).items()}, 'summary': summary,
                                         'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
