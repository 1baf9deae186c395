"""``python -m dfdnet.cli.align_faces``: cut aligned 512-px faces out of in-the-wild photos.

Each face large enough to be a high-quality sample is detected (dlib HOG), aligned to the
released five-point template with the restore pipeline's own code and written as
``<image stem>_<face>.png``; the faces' 68-point landmarks are found later by the consumer
(training or dictionary building), as for any aligned folder. Unreadable images and faces whose
landmarks fail are reported and skipped.
"""
from __future__ import annotations

import argparse
import sys
import logging
from pathlib import Path


logger = logging.getLogger(__name__)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--input', required=True, type=Path, help='folder of photos')
    parser.add_argument('--output', required=True, type=Path, help='folder for the aligned faces (PNG)')
    parser.add_argument('--size', type=int, default=512, help='side of the aligned faces')
    parser.add_argument('--min_face_size', type=int, default=160,
                        help='skip faces whose detection box is smaller than this (px): they would be upsampled')
    args = parser.parse_args(argv)
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO)

    from tqdm import tqdm

    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.pipeline.photo import build_preparer
    from dfdnet.utils.image_io import ImageReadError, list_face_images, read_rgb, write_image

    if args.output.resolve() == args.input.resolve():
        parser.error('--output must not be the input folder')
    try:
        photos = list_face_images(args.input)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    preparer = build_preparer(RestoreOptions(detector='hog', detector_upsample=1), args.size)
    args.output.mkdir(parents=True, exist_ok=True)
    written, failed = 0, []
    for path in tqdm(photos, desc='align faces', unit='photo'):
        try:
            rgb = read_rgb(path)
        except ImageReadError as exc:
            failed.append(str(exc))
            continue
        faces, skipped, _ = preparer.faces_in_image(rgb, upscale=1.0)
        failed += [f'{path} face {s.index}: {s.reason}' for s in skipped]
        for face in faces:
            side = min(face.box[2] - face.box[0], face.box[3] - face.box[1])
            if side < args.min_face_size:
                continue
            write_image(args.output / f'{path.stem}_{face.index:02d}.png', face.crop)
            written += 1
    for line in failed:
        logger.warning('%s', line)
    logger.info('%d aligned faces from %d photos written to %s (%d problems)', written, len(photos), args.output,
                len(failed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
