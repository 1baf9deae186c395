"""``test_FaceDict.py`` / ``dfdnet-restore``: restore every face of the photos in a folder (the
released command line, over ``dfdnet.pipeline.photo.PhotoRestorer``).

    python test_FaceDict.py --test_path TestData --results_dir results/TestData --upscale_factor 4 --device cpu

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
    from dfdnet.utils.distributed import close_coordination, init_coordination, launched_info
    from dfdnet.utils.text import configure_logging

    try:
        info = launched_info()
    except RuntimeError as exc:
        return _fail(str(exc))
    where = f'rank {info.rank}/{info.world_size} ' if info.enabled else ''
    configure_logging(logging.DEBUG if args.verbose else logging.INFO,
                      f'%(asctime)s {where}%(levelname)s %(name)s: %(message)s')
    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.utils.options import options_from_args

    try:
        options = options_from_args(RestoreOptions, args)
    except ValueError as exc:
        parser.error(str(exc))
    init_coordination(info)
    try:
        return _locked_run(options, info)
    finally:
        close_coordination(info)


def _prepare(options):
    """(inputs, None) or (None, the message why the run cannot start); the run's paths are checked."""
    from dfdnet.pipeline.options import check_run_paths
    from dfdnet.pipeline.runner import check_output_folders, list_restore_inputs

    if options.landmarks_dir is not None and not options.landmarks_dir.is_dir():
        return None, f'landmarks folder not found: {options.landmarks_dir}'
    try:
        check_run_paths(options.test_path, options.results_dir)
        check_output_folders(options.test_path, options.results_dir)
        paths = list_restore_inputs(options.test_path, exclude=options.results_dir)
    except (FileNotFoundError, ValueError) as exc:
        return None, str(exc)
    if not paths:
        return None, f'no images or videos found under {options.test_path}'
    return paths, None


def _locked_run(options, info) -> int:
    """Rank 0 checks the paths, lists the inputs and takes the results folder's lock for the whole job
    (a second, independent run into the folder stops at once); every rank then restores its share."""
    from dfdnet.pipeline.runner import results_lock
    from dfdnet.utils.files import remove_stale_temporaries
    from dfdnet.utils.run_lock import FolderLockedError

    lock, created, paths, problem = None, False, None, None
    if info.is_main:
        paths, problem = _prepare(options)
        if problem is None:
            created = not options.results_dir.exists()
            lock = results_lock(options.results_dir)
            try:
                lock.acquire()  # before the model loads: a second run into the same folder stops at once
            except (FolderLockedError, OSError) as exc:
                lock, problem = None, str(exc)
        if lock is not None and info.enabled:  # no rank writes yet: every temporary is a killed run's
            remove_stale_temporaries(options.results_dir, min_age_s=0.0)
    paths, problem = info.broadcast((paths, problem))
    if problem is not None:
        return _fail(problem) if info.is_main else 2
    try:
        code = _run(options, paths, info)
    finally:
        if lock is not None:
            lock.release()
    if code == 2 and created:  # nothing could start: leave no empty results folder behind
        with contextlib.suppress(OSError):
            options.results_dir.rmdir()
    return code


def _restore_share(options, paths, info):
    """Load the model and restore this rank's share of ``paths``: (exit code, restoration or None)."""
    import dataclasses

    from tqdm.contrib.logging import logging_redirect_tqdm

    from dfdnet.errors import CheckpointError, DictionaryError
    from dfdnet.face.landmarks import LandmarkError
    from dfdnet.pipeline.photo import PhotoRestorer, resolve_model_paths
    from dfdnet.pipeline.runner import FolderRestoration
    from dfdnet.utils.distributed import rank_device, shard_by_cost

    start = time.perf_counter()
    try:
        options = dataclasses.replace(options, device=rank_device(info, options.device))
        photo_restorer = PhotoRestorer.from_options(options, dft_levels=options.dft_levels)
    except (CheckpointError, DictionaryError) as exc:
        checkpoint, dict_dir, _ = resolve_model_paths(options.checkpoint, options.dict_dir)
        return _fail(str(exc), missing_weights_hint(checkpoint, dict_dir)), None
    except (LandmarkError, FileNotFoundError, ValueError, RuntimeError) as exc:
        return _fail(str(exc)), None
    load_seconds = time.perf_counter() - start
    share = shard_by_cost(paths, [_size(p) for p in paths], info)  # a video stays whole: one input, one rank
    logger.info('model: %s', photo_restorer.model_description)
    logger.info('%d of %d image(s) from %s -> %s', len(share), len(paths), options.test_path, options.results_dir)
    restoration = FolderRestoration(options, photo_restorer, exclusive=not info.enabled, rank=info.rank)
    with logging_redirect_tqdm():
        restoration.run(paths, only=share, page=not info.enabled)
    restoration.summary.model_load_seconds = load_seconds
    return 0, restoration


def _size(path) -> int:
    with contextlib.suppress(OSError):
        return Path(path).stat().st_size
    return 0


def _run(options, paths, info) -> int:
    """Restore ``paths`` over the ranks (the results folder is locked); rank 0 merges the ranks'
    summaries and pages and writes summary.json and index.html once every rank is done."""
    from dfdnet.pipeline.summary import merge_summaries
    from dfdnet.utils.text import printable

    code, restoration = _restore_share(options, paths, info)
    done = None if restoration is None else (restoration.summary, restoration.rows)
    gathered = info.gather(done)  # every rank gets here, also after a failure: no rank waits forever
    if not info.is_main:
        return info.broadcast(None)
    if any(item is None for item in gathered):
        return info.broadcast(max(code, 2))
    if info.enabled:
        summary = merge_summaries([s for s, _ in gathered], paths)
        rows = {path: row for _, part in gathered for path, row in part.items()}
        if options.write_html:
            restoration.write_page(paths, rows, summary)
    else:
        summary = restoration.summary
    print(summary.format())
    try:
        summary.write_json(options.results_dir / 'summary.json')
    except OSError as exc:  # e.g. a full disk: the run's results are above, only the record is missing
        print(f'error: cannot write {printable(options.results_dir / "summary.json")}: '
              f'{exc.strerror or exc}', file=sys.stderr)
        return info.broadcast(1)
    results = printable(options.results_dir)
    print(f'results: {results}' + (f' (open {results}/index.html)' if options.write_html else ''))
    return info.broadcast(0 if summary.ok else 1)


if __name__ == '__main__':
    sys.exit(main())
