"""Write the extra validation sets of the default model's recipes: the validation faces of a
training YAML (its last ``train_data.val_count`` faces, never the held-out FFHQ faces) degraded
in fixed ways that the training's own validation mix does not isolate.

    PYTHONPATH=. python scripts/data/make_validation_variants.py -opt options/default_model/stage13_decoder_bf16.yml \
        --output experiments/val_variants

Each set is a ``make_validation_set`` folder (``manifest.json``, ``lq/``, ``gt/``), read by
``python -m dfdnet.cli.validate --val_set``; an existing set made with the same settings is reused
and one made with other settings is refused. Face i is degraded with
``numpy.random.default_rng((seed, i))``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


from dfdnet.data.degradation_pipeline import DegradationConfig
from dfdnet.data.face_dataset import load_landmarks, split_train_val
from dfdnet.data.validation_set import make_validation_set
from dfdnet.models.options import parse_options
from dfdnet.utils.image_io import list_face_images

CLEAN = dict(clean_prob=1.0, up_interpolation='bicubic')
EQ11 = dict(blur_prob=0.9, jpeg_prob=0.5, up_interpolation='bicubic')
# name: (degradation fields over the 'paper' preset, seed)
VARIANTS = {
    'clean_x2_bicubic': (dict(CLEAN, clean_scale=(2.0, 2.0), interpolation='bicubic'), 1234),
    # (cv2's bilinear at exactly x2 averages 2x2 pixels as area does: no set of its own)
    'clean_x2_area': (dict(CLEAN, clean_scale=(2.0, 2.0), resize_interpolations=('area',)), 1234),
    'eq11': (EQ11, 4321),
    'x4_noise_jpeg': (dict(blur_prob=0.0, scale=(4.0, 4.0), noise_sigma=(5.0, 15.0), jpeg_prob=1.0,
                           jpeg_quality=(50, 90), up_interpolation='bicubic'), 5678),
    'x4_blur_noise': (dict(blur_prob=1.0, motion_prob=0.0, gaussian_sigma=(1.0, 3.0), scale=(4.0, 4.0),
                           noise_sigma=(0.0, 10.0), jpeg_prob=0.0, up_interpolation='bicubic'), 8765),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='a training YAML (its train_data picks the faces)')
    parser.add_argument('--output', required=True, help='one folder per variant is written here')
    parser.add_argument('--only', nargs='*', choices=sorted(VARIANTS), help='these variants (default: all)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    options, _ = parse_options(args.opt)
    data = options.train_data
    files = list_face_images(data.hq_folder)
    _, val_files = split_train_val(files, data.val_count, data.max_images)
    if not val_files:
        parser.error(f'{args.opt}: train_data.val_count is 0, there are no validation faces')
    landmarks = load_landmarks(val_files, data.landmarks, data.landmark_size)
    for name in args.only or sorted(VARIANTS):
        fields, seed = VARIANTS[name]
        make_validation_set(Path(args.output) / name, val_files, landmarks, options.generator.image_size,
                            DegradationConfig.from_dict(dict(fields, preset='paper')), seed, data.landmark_size)
    return 0


if __name__ == '__main__':
    sys.exit(main())
