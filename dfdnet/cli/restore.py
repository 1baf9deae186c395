"""``test_FaceDict.py`` / ``dfdnet-restore``: restore every face of the photos in a folder (the
released command line, over ``dfdnet.pipeline.photo.PhotoRestorer``).

    python test_FaceDict.py --test_path TestData --results_dir results/TestData --upscale_factor 4 --gpu_ids -1

Exit status: 0 when every image was processed, 1 when any image failed, 2 when nothing could
start (bad options, missing or broken checkpoint / dictionaries / landmark model, no images).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# Repeated from dfdnet.pipeline.photo so that --help needs no torch, OpenCV or dlib (tested equal).
DEFAULT_CHECKPOINT = Path('checkpoints/facefh_dictionary/latest_net_G.pth')
DEFAULT_DICT_DIR = Path('DictionaryCenter512')


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``prog`` defaults to the name the command was started by."""
    parser = argparse.ArgumentParser(
        prog=prog, description='Restore every face of whole images with DFDNet and paste them back.')
    released = parser.add_argument_group('released options')
    released.add_argument('--test_path', default='TestData',
                          help='an image file, or a folder searched recursively (default %(default)s)')
    released.add_argument('--results_dir', default='results',
                          help='output root; must not be or contain the input (default %(default)s)')
    released.add_argument('--upscale_factor', type=int, default=4, help='whole-image upscale factor (default 4)')
    released.add_argument('--gpu_ids', default='auto',
                          help="GPU id, e.g. '0'; '-1' = CPU; 'auto' = the first GPU if CUDA is available, else the "
                               "CPU (default auto)")
    model = parser.add_argument_group('model')
    model.add_argument('--checkpoint', type=Path, default=None,
                       help='generator weights: released latest_net_G.pth, BasicSR port or this project\'s '
                            f'format (default: {DEFAULT_CHECKPOINT} when it exists, else the model shipped with '
                            'the package, dfdnet/pretrained/default)')
    model.add_argument('--dict_dir', type=Path, default=None,
                       help='component dictionaries: a DictionaryCenter512 folder or the BasicSR .pth '
                            f'(default: {DEFAULT_DICT_DIR} with the released checkpoint, else the shipped model\'s)')
    model.add_argument('--dft_levels', type=int, nargs='*', default=None, choices=(0, 1, 2, 3), metavar='LEVEL',
                       help='ablation: the feature levels (0 = stride 2 ... 3 = stride 16) that use the '
                            'dictionaries; give the flag alone for none ("0 DFT"). Default: the model\'s own')
    model.add_argument('--batch_size', type=int, default=4, help='faces per generator forward (default 4)')
    model.add_argument('--precision', choices=('auto', 'fp32', 'bf16', 'fp16'), default='auto',
                       help='auto: bf16 where the hardware has it natively (CUDA with bf16, a CPU with AMX-BF16 or '
                            'AVX512-BF16), else fp32 (default auto; the log says which ran)')
    faces = parser.add_argument_group('faces')
    faces.add_argument('--detector', choices=('hog', 'cnn'), default='hog',
                       help='dlib detector: hog (fast, default) or cnn (MMOD: finds harder faces, slow on CPU)')
    faces.add_argument('--detector_upsample', type=int, default=1,
                       help='times dlib doubles the image before detecting (default 1, as released)')
    faces.add_argument('--only_largest_face', action='store_true', help='restore only the largest face of each image')
    faces.add_argument('--aligned', action='store_true',
                       help='inputs are aligned faces: no detection, no paste-back')
    faces.add_argument('--landmarks_dir', type=Path, default=None,
                       help='with --aligned: folder of <image file name>.txt files, 68 rows "x y" in the '
                            "input image's pixels")
    faces.add_argument('--landmark_model', choices=('dlib', 'fan'), default='dlib',
                       help="68-point landmarks on the aligned crop: dlib (default) or fan (needs --landmark_weights)")
    faces.add_argument('--landmark_weights', type=Path, default=None,
                       help='local weights for the landmark model (dlib .dat, or face-alignment\'s 2DFAN4 '
                            'TorchScript file for fan); nothing is downloaded')
    faces.add_argument('--template', type=Path, default=None,
                       help='FFHQ_template.npy (5 x 2, 1024 px) replacing the built-in five-point template')
    output = parser.add_argument_group('output')
    output.add_argument('--ext', default='png', help='output image format (default png)')
    output.add_argument('--no_html', action='store_true', help='do not write results_dir/index.html')
    output.add_argument('--max_input_megapixels', type=float, default=64.0,
                        help='skip (and report) larger inputs instead of running out of memory; 0 = no limit '
                             '(default 64: a 64-MP photo needs about 4.5 GB)')
    output.add_argument('--max_output_megapixels', type=float, default=128.0,
                        help='skip (and report) images whose upscaled result would be larger; 0 = no limit '
                             '(default 128)')
    output.add_argument('--verbose', action='store_true', help='log debugging details')
    return parser


WEIGHTS_HINT = """
DFDNet needs a generator checkpoint and its component dictionaries. Without --checkpoint and
--dict_dir it runs the released files when they are in place, else the model shipped with the
package in dfdnet/pretrained/default (see docs/default_model.md). For the released model, put its files at
    checkpoints/facefh_dictionary/latest_net_G.pth
    DictionaryCenter512/{left_eye,right_eye,nose,mouth}_{256,128,64,32}_center.npy   (16 files)
or pass --checkpoint FILE --dict_dir DIR (the BasicSR port's DFDNet_official-*.pth and
DFDNet_dict_512-*.pth, or a model trained with train.py, work too)."""


def missing_weights_hint(checkpoint, dict_dir) -> str:
    """The hint above when the checkpoint or the dictionaries do not exist at all."""
    return WEIGHTS_HINT if not Path(checkpoint).exists() or not Path(dict_dir).exists() else ''


def _fail(message: str) -> int:
    print(f'error: {message}', file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    from tqdm.contrib.logging import logging_redirect_tqdm

    from dfdnet.errors import CheckpointError, DictionaryError
    from dfdnet.face.landmarks import LandmarkError
    from dfdnet.pipeline.options import RestoreOptions, check_run_paths
    from dfdnet.pipeline.photo import PhotoRestorer, resolve_model_paths
    from dfdnet.pipeline.runner import RestorationRun
    from dfdnet.utils.image_io import list_images

    try:
        options = RestoreOptions(
            test_path=args.test_path, results_dir=args.results_dir, checkpoint=args.checkpoint,
            dict_dir=args.dict_dir, upscale_factor=args.upscale_factor, device=args.gpu_ids, detector=args.detector,
            detector_upsample=args.detector_upsample, only_largest_face=args.only_largest_face, aligned=args.aligned,
            landmarks_dir=args.landmarks_dir, landmark_model=args.landmark_model,
            landmark_weights=args.landmark_weights, template_path=args.template, batch_size=args.batch_size,
            ext=args.ext, write_html=not args.no_html, precision=args.precision,
            max_input_megapixels=args.max_input_megapixels, max_output_megapixels=args.max_output_megapixels)
    except ValueError as exc:
        parser.error(str(exc))
    if options.landmarks_dir is not None and not options.landmarks_dir.is_dir():
        return _fail(f'landmarks folder not found: {options.landmarks_dir}')
    try:
        check_run_paths(options.test_path, options.results_dir)
        paths = list_images(options.test_path, exclude=options.results_dir)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    if not paths:
        return _fail(f'no images found under {options.test_path}')

    start = time.perf_counter()
    try:
        photo_restorer = PhotoRestorer.from_options(options, dft_levels=args.dft_levels)
    except (CheckpointError, DictionaryError) as exc:
        checkpoint, dict_dir, _ = resolve_model_paths(options.checkpoint, options.dict_dir)
        return _fail(str(exc) + missing_weights_hint(checkpoint, dict_dir))
    except (LandmarkError, FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    load_seconds = time.perf_counter() - start
    logger.info('model: %s', photo_restorer.model_description)
    logger.info('%d image(s) from %s -> %s', len(paths), options.test_path, options.results_dir)
    with logging_redirect_tqdm():
        summary = RestorationRun(options, photo_restorer).run(paths)
    summary.model_load_seconds = load_seconds
    summary.write_json(options.results_dir / 'summary.json')
    print(summary.format())
    print(f'results: {options.results_dir}' + ('' if args.no_html else f' (open {options.results_dir / "index.html"})'))
    return 0 if summary.ok else 1


if __name__ == '__main__':
    sys.exit(main())
