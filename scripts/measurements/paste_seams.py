"""Measure the paste-back seam of the face-shaped mask against the released square mask.

Each high-quality photo is the ground truth; its ×``--scale`` area-downscaled copy is restored
with the shipped model (or ``--checkpoint``/``--dict_dir``) at ``--upscale_factor`` = ``--scale``,
and the same restored faces are pasted with both masks (and not at all: the upscaled photo alone,
which has no seam). In two bands, the transition ring of each
mask (0.05 < mask < 0.95), it reports against the ground truth:

* ``grad_err``: mean |∇out − ∇gt| (Sobel, 0–255 grey): a seam is an edge the photo does not have;
* ``mae``: mean |out − gt| (0–255, RGB).

    PYTHONPATH=. python scripts/measurements/paste_seams.py --photos ../shared/data/faces_wild_hq --max_photos 8
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np


from dfdnet.face.paste import canvas_masks, face_mask, paste_faces
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer
from dfdnet.utils.image_io import list_face_images, read_rgb


def gradient(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--photos', type=Path, required=True, help='folder of high-quality photos (ground truth)')
    parser.add_argument('--max_photos', type=int, default=8)
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--checkpoint', type=Path, default=None)
    parser.add_argument('--dict_dir', type=Path, default=None)
    parser.add_argument('--max_side', type=int, default=1600, help='ground truth shrunk to at most this side first')
    parser.add_argument('--json', type=Path, default=None, help='write the per-photo rows here')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    restorer = PhotoRestorer.from_options(RestoreOptions(checkpoint=args.checkpoint, dict_dir=args.dict_dir,
                                                         upscale_factor=args.scale, device='cpu',
                                                         paste_mask='released'))
    size = restorer.face_size
    rows = []
    for path in list_face_images(args.photos)[:args.max_photos]:
        gt = read_rgb(path)
        shrink = min(1.0, args.max_side / max(gt.shape[:2]))
        if shrink < 1:
            gt = cv2.resize(gt, (round(gt.shape[1] * shrink), round(gt.shape[0] * shrink)), interpolation=cv2.INTER_AREA)
        height, width = (gt.shape[0] // args.scale) * args.scale, (gt.shape[1] // args.scale) * args.scale
        gt = gt[:height, :width]
        small = cv2.resize(gt, (width // args.scale, height // args.scale), interpolation=cv2.INTER_AREA)
        result = restorer.enhance(small)
        if not result.faces:
            continue
        crop_masks = [face_mask(f.landmarks68, size) for f in result.faces]
        outputs = {'background': paste_faces(small, [], [], args.scale),  # the upscaled photo alone: no seam
                   'released': result.image,
                   'face': paste_faces(small, result.restored_faces, [f.paste_affine for f in result.faces],
                                       args.scale, crop_masks)}
        bands = {kind: canvas_masks(result.faces, gt.shape, size, args.scale, kind) for kind in ('released', 'face')}
        gt_grad = gradient(gt)
        row = {'photo': path.name, 'faces': len(result.faces)}
        for band_name, band_mask in bands.items():
            ring = (band_mask > 0.05) & (band_mask < 0.95)
            for name, out in outputs.items():
                row[f'{name}@{band_name}_grad_err'] = float(np.abs(gradient(out) - gt_grad)[ring].mean())
                row[f'{name}@{band_name}_mae'] = float(np.abs(out.astype(np.float32) - gt)[ring].mean())
        rows.append(row)
        print(json.dumps(row))
    keys = [k for k in rows[0] if '@' in k]
    print(f'\n{len(rows)} photos, {sum(r["faces"] for r in rows)} faces, x{args.scale}; mean over photos:')
    print('| mask | released ring: grad err | released ring: MAE | face ring: grad err | face ring: MAE |')
    print('|---|---|---|---|---|')
    for name in ('background', 'released', 'face'):
        values = [np.mean([r[f'{name}@{band}_{m}'] for r in rows]) for band in ('released', 'face')
                  for m in ('grad_err', 'mae')]
        print(f'| {name} | ' + ' | '.join(f'{v:.2f}' for v in values) + ' |')
    if args.json:
        args.json.write_text(json.dumps({'rows': rows, 'keys': keys}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
