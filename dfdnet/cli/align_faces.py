"""``python scripts/align_faces.py``: cut aligned 512-px faces out of in-the-wild photos.

Each face large enough to be a high-quality sample is detected (dlib HOG), aligned to the
released five-point template with the restore pipeline's own code and written as
``<image stem>_<face>.png``; the faces' 68-point landmarks are found later by the consumer
(training or dictionary building), as for any aligned folder. Unreadable images and faces whose
landmarks fail are reported and skipped.
"""
from __future__ import annotations

import argparse
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
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')

    import cv2
    from tqdm import tqdm

    from dfdnet.data.face_dataset import list_images
    from dfdnet.face.detection import FaceDetector
    from dfdnet.utils.files import atomic_path
    from dfdnet.face.landmarks import DlibLandmarker
    from dfdnet.pipeline.faces import FacePreparer

    if args.output.resolve() == args.input.resolve():
        parser.error('--output must not be the input folder')
    try:
        photos = list_images(args.input)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    preparer = FacePreparer(args.size, DlibLandmarker(68), FaceDetector('hog', upsample=1), DlibLandmarker(5))
    args.output.mkdir(parents=True, exist_ok=True)
    written, failed = 0, []
    for path in tqdm(photos, desc='align faces', unit='photo'):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            failed.append(f'{path}: unreadable')
            continue
        faces, skipped, _ = preparer.faces_in_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), upscale=1.0)
        failed += [f'{path} face {s.index}: {s.reason}' for s in skipped]
        for face in faces:
            side = min(face.box[2] - face.box[0], face.box[3] - face.box[1])
            if side < args.min_face_size:
                continue
            with atomic_path(args.output / f'{path.stem}_{face.index:02d}.png') as tmp:
                if not cv2.imwrite(str(tmp), cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR)):
                    raise OSError(f'cannot write {tmp}')
            written += 1
    for line in failed:
        logger.warning('%s', line)
    logger.info('%d aligned faces from %d photos written to %s (%d problems)', written, len(photos), args.output,
                len(failed))
    return 0
