"""``test_FaceDict.py``: restore every face of the photos in a folder (the released command line).

    python test_FaceDict.py --test_path ./TestData/TestWhole --results_dir ./Results/TestWholeResults \
        --upscale_factor 4 --gpu_ids 0

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

DEFAULT_CHECKPOINT = Path('checkpoints/facefh_dictionary/latest_net_G.pth')
DEFAULT_DICT_DIR = Path('DictionaryCenter512')
# The project's own trained model (docs/default_model.md), used when the released files are absent.
SHIPPED_MODEL_DIR = Path(__file__).resolve().parents[2] / 'pretrained' / 'default'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='test_FaceDict.py', description='Restore every face of whole images with DFDNet and paste them back.')
    released = parser.add_argument_group('released options')
    released.add_argument('--test_path', default='./TestData/TestWhole',
                          help='an image file, or a folder searched recursively (default %(default)s)')
    released.add_argument('--results_dir', default='./Results/TestWholeResults', help='output root (default %(default)s)')
    released.add_argument('--upscale_factor', type=int, default=4, help='whole-image upscale factor (default 4)')
    released.add_argument('--gpu_ids', default='0',
                          help="GPU id, e.g. '0'; '-1' = CPU; falls back to CPU when CUDA is absent (default 0)")
    model = parser.add_argument_group('model')
    model.add_argument('--checkpoint', type=Path, default=None,
                       help='generator weights: released latest_net_G.pth, BasicSR port or this project\'s '
                            f'format (default: {DEFAULT_CHECKPOINT} when it exists, else the model shipped in '
                            'pretrained/default)')
    model.add_argument('--dict_dir', type=Path, default=None,
                       help='component dictionaries: a DictionaryCenter512 folder or the BasicSR .pth '
                            f'(default: {DEFAULT_DICT_DIR} with the released checkpoint, else the shipped model\'s)')
    model.add_argument('--dft_levels', type=int, nargs='*', default=None, choices=(0, 1, 2, 3), metavar='LEVEL',
                       help='ablation: the feature levels (0 = stride 2 ... 3 = stride 16) that use the '
                            'dictionaries; give the flag alone for none ("0 DFT"). Default: the model\'s own')
    model.add_argument('--batch_size', type=int, default=4, help='faces per generator forward (default 4)')
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
    output.add_argument('--verbose', action='store_true', help='log debugging details')
    return parser


def resolve_model_paths(args, released_checkpoint=DEFAULT_CHECKPOINT, released_dict_dir=DEFAULT_DICT_DIR,
                        shipped_dir=SHIPPED_MODEL_DIR) -> tuple:
    """The (checkpoint, dictionary path, description) to load: the single place that decides which
    model runs.

    Paths given on the command line win (a missing dictionary path then means the released
    folder). With neither given, the released files are used when both are in place, else the
    model shipped in ``pretrained/default``; if that is gone too, the released paths are returned
    and loading them reports what is missing.
    """
    if args.checkpoint is not None or args.dict_dir is not None:
        checkpoint = Path(args.checkpoint) if args.checkpoint is not None else Path(released_checkpoint)
        dict_dir = Path(args.dict_dir) if args.dict_dir is not None else Path(released_dict_dir)
        return checkpoint, dict_dir, 'given on the command line'
    if Path(released_checkpoint).exists() and Path(released_dict_dir).exists():
        return Path(released_checkpoint), Path(released_dict_dir), 'the released DFDNet weights'
    shipped_dir = Path(shipped_dir)
    if (shipped_dir / 'net_g.pth').is_file() and (shipped_dir / 'dictionaries').is_dir():
        return (shipped_dir / 'net_g.pth', shipped_dir / 'dictionaries',
                "this project's default model (released weights not found; see docs/default_model.md)")
    return Path(released_checkpoint), Path(released_dict_dir), 'the released DFDNet weights'


def select_device(gpu_ids: str) -> str:
    """'-1' -> 'cpu'; 'N[,M...]' -> 'cuda:N' when CUDA is available, else 'cpu' with a warning."""
    import torch

    ids = [int(i) for i in str(gpu_ids).replace(' ', '').split(',') if i != '']
    if not ids or ids[0] < 0:
        return 'cpu'
    if not torch.cuda.is_available():
        logger.warning('CUDA is not available: running on the CPU (pass --gpu_ids -1 to choose it explicitly)')
        return 'cpu'
    if ids[0] >= torch.cuda.device_count():
        logger.warning('GPU %d does not exist (%d visible): using cuda:0', ids[0], torch.cuda.device_count())
        return 'cuda:0'
    if len(ids) > 1:
        logger.warning('only one GPU is used: cuda:%d', ids[0])
    return f'cuda:{ids[0]}'


def build_preparer(options, face_size: int, device: str = 'cpu'):
    """Detector and landmark models of ``options``, built once (dlib is imported here)."""
    from dfdnet.face.alignment import face_template
    from dfdnet.face.detection import FaceDetector
    from dfdnet.face.landmarks import DlibLandmarker, build_landmarker
    from dfdnet.pipeline.faces import FacePreparer

    landmarks68 = build_landmarker(options.landmark_model, options.landmark_weights, device=device)
    template = face_template(face_size, options.template_path)
    if options.aligned:
        return FacePreparer(face_size, landmarks68, template=template)
    return FacePreparer(face_size, landmarks68, detector=FaceDetector(options.detector, options.detector_upsample),
                        landmarks5=DlibLandmarker(5), template=template, only_largest=options.only_largest_face)


WEIGHTS_HINT = """
DFDNet needs a generator checkpoint and its component dictionaries. Without --checkpoint and
--dict_dir it runs the released files when they are in place, else the model shipped in
pretrained/default (see docs/default_model.md). For the released model, put its files at
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

    from dfdnet.archs import load_generator
    from dfdnet.errors import CheckpointError, DictionaryError
    from dfdnet.face.landmarks import LandmarkError
    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.pipeline.restorer import FaceRestorer
    from dfdnet.pipeline.runner import RestorationRun
    from dfdnet.utils.image_io import list_images

    device = select_device(args.gpu_ids)
    checkpoint, dict_dir, model_source = resolve_model_paths(args)
    try:
        options = RestoreOptions(
            test_path=args.test_path, results_dir=args.results_dir, checkpoint=checkpoint, dict_dir=dict_dir,
            upscale_factor=args.upscale_factor, device=device, detector=args.detector,
            detector_upsample=args.detector_upsample, only_largest_face=args.only_largest_face, aligned=args.aligned,
            landmarks_dir=args.landmarks_dir, landmark_model=args.landmark_model,
            landmark_weights=args.landmark_weights, template_path=args.template, batch_size=args.batch_size,
            ext=args.ext, write_html=not args.no_html)
    except ValueError as exc:
        parser.error(str(exc))
    if options.landmarks_dir is not None and not options.landmarks_dir.is_dir():
        return _fail(f'landmarks folder not found: {options.landmarks_dir}')
    try:
        paths = list_images(options.test_path, exclude=options.results_dir)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    if not paths:
        return _fail(f'no images found under {options.test_path}')

    start = time.perf_counter()
    try:
        generator = load_generator(options.checkpoint, options.dict_dir, device=device, dft_levels=args.dft_levels)
        preparer = build_preparer(options, generator.config.image_size, device)
    except (CheckpointError, DictionaryError) as exc:
        return _fail(str(exc) + missing_weights_hint(options.checkpoint, options.dict_dir))
    except (LandmarkError, FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    load_seconds = time.perf_counter() - start
    config = generator.config
    core = f', {config.core_size}-px core' if config.core_size != config.image_size else ''
    logger.info('model: %s: %s + %s (DFDNet%d%s, width %d, DFT levels %s)', model_source, options.checkpoint,
                options.dict_dir, config.image_size, core, config.width, list(config.dft_levels))

    logger.info('%d image(s) from %s -> %s', len(paths), options.test_path, options.results_dir)
    restorer = FaceRestorer(generator, device=device, batch_size=options.batch_size)
    with logging_redirect_tqdm():
        summary = RestorationRun(options, preparer, restorer).run(paths)
    summary.model_load_seconds = load_seconds
    summary.write_json(options.results_dir / 'summary.json')
    print(summary.format())
    print(f'results: {options.results_dir}' + ('' if args.no_html else f' (open {options.results_dir / "index.html"})'))
    return 0 if summary.ok else 1


if __name__ == '__main__':
    sys.exit(main())
