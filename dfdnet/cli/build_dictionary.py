"""``build_dictionary``: multi-scale component dictionaries from a folder of high-quality faces.

Example: ``python build_dictionary.py -opt options/build_dictionary.yml --input faces/ --output dicts/``;
over G processes or GPUs: ``torchrun --nproc_per_node=G build_dictionary.py ...`` (docs/scaling.md).
``--plan N`` prints the disk, memory and time of a build of N faces and stops.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys


ENCODER_FLAGS = ('checkpoint', 'vgg', 'random_encoder')  # one encoder: given on the command line, replaces the file's


def build_parser() -> argparse.ArgumentParser:
    """The command line: the ``option`` fields of ``BuildOptions`` (and ``FaceOptions.align``), which
    override the options file, plus the command's own flags."""
    from dfdnet.dictionary.options import BuildOptions, FaceOptions  # no torch, OpenCV or dlib: --help stays instant
    from dfdnet.utils.options import add_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', '--opt', help='YAML options file (e.g. options/build_dictionary.yml)')
    groups = {'encoder': parser.add_mutually_exclusive_group()}
    add_arguments(parser, BuildOptions, groups, defaults=False)
    add_arguments(parser, FaceOptions, groups, prefix='faces.', defaults=False)
    parser.add_argument('--plan', type=int, metavar='N',
                        help='print the disk, memory and time a build of N faces needs, then stop (no work)')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def overrides_from_args(args) -> dict:
    """The flags given, as dotted ``BuildOptions`` paths (a flag not given is absent: the file's value
    stays). The encoder flags replace the file's encoder as a group (see ``main``)."""
    from dfdnet.dictionary.options import BuildOptions, FaceOptions
    from dfdnet.utils.options import overrides_from_args as given

    return {**given(BuildOptions, args), **given(FaceOptions, args, prefix='faces.')}


def main(argv=None) -> int:
    args = parse_args(argv)
    # heavy imports (torch, OpenCV, dlib) after the arguments, so that --help is instant
    from dfdnet.dictionary.builder import DictionaryBuildError, build_dictionary
    from dfdnet.dictionary.options import load_options
    from dfdnet.errors import CheckpointError

    from dfdnet.utils.text import configure_logging

    configure_logging(logging.DEBUG if args.verbose else logging.INFO,
                      '%(asctime)s %(levelname)s %(name)s: %(message)s')
    from dfdnet.utils.distributed import close_coordination, init_coordination, launched_info

    try:
        overrides = overrides_from_args(args)
        options = load_options(args.opt, overrides)
        if any(name in overrides for name in ENCODER_FLAGS):  # an encoder on the command line replaces the file's
            options = dataclasses.replace(options, **{name: overrides.get(name) for name in ENCODER_FLAGS})
        if args.plan is not None:
            return print_plan(options, args.plan)
        info = launched_info()
    except (CheckpointError, ValueError, RuntimeError) as exc:
        logging.getLogger('build_dictionary').error('%s', exc)
        return 2
    init_coordination(info)
    try:
        summary = build_dictionary(options, info)
    except (DictionaryBuildError, CheckpointError, ValueError, FileNotFoundError) as exc:
        logging.getLogger('build_dictionary').error('%s', exc)
        return 2
    finally:
        close_coordination(info)
    if not info.is_main:
        return 0
    skipped = len(summary.skipped)
    print(f'wrote K={summary.k} dictionaries to {summary.output} from {summary.faces_used} faces '
          f'({summary.samples} samples per part and scale); {skipped} face(s)/image(s) skipped'
          + (f' (listed in {summary.output / "dictionary.json"})' if skipped else '')
          + f'; {summary.seconds["total"]:.1f} s')
    return 0


def print_plan(options, faces: int) -> int:
    """``--plan N``: the disk, memory and time of a build of ``faces`` faces with ``options`` (the
    released 512-px layout of the options' encoder architecture)."""
    import torch

    from dfdnet.archs.dfdnet_arch import GeneratorConfig
    from dfdnet.dictionary.features import feature_layout
    from dfdnet.dictionary.plan import encoder_flops_per_view, format_plan, make_plan, measure_flops_per_second
    from dfdnet.utils.device import select_device

    if faces < 1 or options.k < 1 or options.max_rows_per_atom < 0:
        raise ValueError(f'--plan needs a positive number of faces and K, and max_rows_per_atom >= 0; got --plan '
                         f'{faces}, k {options.k}, max_rows_per_atom {options.max_rows_per_atom}')
    config = GeneratorConfig(encoder=options.encoder)
    device = torch.device(select_device(options.device))
    plan = make_plan(faces, options.k, feature_layout(config), options.flip, options.max_rows_per_atom,
                     encoder_flops_per_view(config.encoder, config.image_size), options.kmeans.resident_gb * 2**30,
                     options.landmarks_dir is not None)
    print(format_plan(plan, options.k, measure_flops_per_second(device), str(device)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
