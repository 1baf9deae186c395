"""``test_FaceDict.py`` / ``dfdnet-restore``: restore every face of the photos in a folder (the
released command line, over ``dfdnet.pipeline.photo.PhotoRestorer``).

    python test_FaceDict.py --test_path TestData --results_dir results/TestData --upscale_factor 4 --gpu_ids -1

Exit status: 0 when every image was processed, 1 when any image failed, 2 when nothing could
start (bad options, missing or broken checkpoint / dictionaries / landmark model, no images).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line, made from ``RestoreOptions``'s fields; ``prog`` defaults to the name the
    command was started by."""
    from dfdnet.pipeline.options import RestoreOptions  # no torch, OpenCV or dlib: --help stays instant
    from dfdnet.utils.options import add_arguments

    parser = argparse.ArgumentParser(
        prog=prog, description='Restore every face of whole images with DFDNet and paste them back.')
    groups = {name: parser.add_argument_group(name) for name in ('released options', 'model', 'faces', 'output', 'video')}
    add_arguments(parser, RestoreOptions, groups)
    groups['model'].add_argument(
        '--dft_levels', type=int, nargs='*', default=None, choices=(0, 1, 2, 3), metavar='LEVEL',
        help='ablation: the feature levels (0 = stride 2 ... 3 = stride 16) that use the dictionaries; give the '
             'flag alone for none ("0 DFT"). Default: the model\'s own')
    groups['output'].add_argument('--verbose', action='store_true', help='log debugging details')
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


def _fail(message: str, hint: str = '') -> int:
    from dfdnet.utils.text import printable

    print(f'error: {printable(message)}{hint}', file=sys.stderr)  # a file name's control characters escaped
    return 2


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.DEBUG if args.verbose else logging.INFO,
                      '%(asctime)s %(levelname)s %(name)s: %(message)s')
    from dfdnet.pipeline.options import RestoreOptions, check_run_paths
    from dfdnet.pipeline.runner import check_output_folders, list_restore_inputs, results_lock
    from dfdnet.utils.options import options_from_args
    from dfdnet.utils.run_lock import FolderLockedError

    try:
        options = options_from_args(RestoreOptions, args)
    except ValueError as exc:
        parser.error(str(exc))
    if options.landmarks_dir is not None and not options.landmarks_dir.is_dir():
        return _fail(f'landmarks folder not found: {options.landmarks_dir}')
    try:
        check_run_paths(options.test_path, options.results_dir)
        check_output_folders(options.test_path, options.results_dir)
        paths = list_restore_inputs(options.test_path, exclude=options.results_dir)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    if not paths:
        return _fail(f'no images or videos found under {options.test_path}')
    created = not options.results_dir.exists()
    lock = results_lock(options.results_dir)
    try:
        lock.acquire()  # before the model loads: a second run into the same folder stops at once
    except (FolderLockedError, OSError) as exc:
        return _fail(str(exc))
    with lock:
        code = _run(options, args, paths)
    if code == 2 and created:  # nothing could start: leave no empty results folder behind
        with contextlib.suppress(OSError):
            options.results_dir.rmdir()
    return code


def _run(options, args, paths) -> int:
    """Load the model, restore ``paths`` and write the summary (the results folder is locked)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from dfdnet.errors import CheckpointError, DictionaryError
    from dfdnet.face.landmarks import LandmarkError
    from dfdnet.pipeline.photo import PhotoRestorer, resolve_model_paths
    from dfdnet.pipeline.runner import FolderRestoration
    from dfdnet.utils.text import printable

    start = time.perf_counter()
    try:
        photo_restorer = PhotoRestorer.from_options(options, dft_levels=args.dft_levels)
    except (CheckpointError, DictionaryError) as exc:
        checkpoint, dict_dir, _ = resolve_model_paths(options.checkpoint, options.dict_dir)
        return _fail(str(exc), missing_weights_hint(checkpoint, dict_dir))
    except (LandmarkError, FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    load_seconds = time.perf_counter() - start
    logger.info('model: %s', photo_restorer.model_description)
    logger.info('%d image(s) from %s -> %s', len(paths), options.test_path, options.results_dir)
    with logging_redirect_tqdm():
        summary = FolderRestoration(options, photo_restorer, exclusive=True).run(paths)
    summary.model_load_seconds = load_seconds
    print(summary.format())
    try:
        summary.write_json(options.results_dir / 'summary.json')
    except OSError as exc:  # e.g. a full disk: the run's results are above, only the record is missing
        print(f'error: cannot write {printable(options.results_dir / "summary.json")}: '
              f'{exc.strerror or exc}', file=sys.stderr)
        return 1
    results = printable(options.results_dir)
    print(f'results: {results}' + (f' (open {results}/index.html)' if options.write_html else ''))
    return 0 if summary.ok else 1


if __name__ == '__main__':
    sys.exit(main())
