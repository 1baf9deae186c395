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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('-opt', '--opt', help='YAML options file (e.g. options/build_dictionary.yml)')
    parser.add_argument('--input', help='folder of aligned high-quality faces (or photos with --align)')
    parser.add_argument('--output', help='output folder for the 16 *_center.npy files and dictionary.json')
    parser.add_argument('--k', type=int, help='atoms per part and scale (paper 256, released 512)')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--checkpoint', help='generator checkpoint whose frozen encoder is used')
    source.add_argument('--vgg', help='torchvision VGG19 state dict (features.N.* keys)')
    source.add_argument('--random_encoder', type=int, metavar='SEED',
                        help='a seeded RANDOM encoder (experiments only; recorded in dictionary.json)')
    parser.add_argument('--max_faces', type=int, help='use at most this many faces')
    parser.add_argument('--align', action='store_true', default=None,
                        help='input holds photos: detect and align every face first')
    parser.add_argument('--no_flip', action='store_true', help='no horizontal-flip augmentation')
    parser.add_argument('--landmarks_dir', help='read 68 landmarks from released <name>.txt files here')
    parser.add_argument('--cache_dir', help='landmark and feature cache (default <output>_cache)')
    parser.add_argument('--batch_size', type=int, help='faces per encoder pass')
    parser.add_argument('--precision', choices=('auto', 'fp32', 'bf16', 'fp16'),
                        help='encoder precision for the features (auto: bf16 where the hardware has it natively); '
                             'the crops and the k-means stay float32')
    parser.add_argument('--gpu_ids', help="GPU index, e.g. 0; -1 for the CPU (default: GPU 0 if any)")
    parser.add_argument('--seed', type=int, help='seed of the face sample and the k-means++ initialisation')
    parser.add_argument('--max_rows_per_atom', type=int,
                        help='keep a seeded sample of at most this x K rows per dictionary (0: every face)')
    parser.add_argument('--plan', type=int, metavar='N',
                        help='print the disk, memory and time a build of N faces needs, then stop (no work)')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    return parser.parse_args(argv)


def overrides_from_args(args) -> dict:
    """The flags given, as ``BuildOptions`` fields (dotted paths; None: not given, the file's value
    stays). The encoder flags replace the file's encoder as a group (see ``main``)."""
    return {'input': args.input, 'output': args.output, 'k': args.k, 'max_faces': args.max_faces,
            'faces.align': args.align, 'landmarks_dir': args.landmarks_dir, 'cache_dir': args.cache_dir,
            'batch_size': args.batch_size, 'seed': args.seed,
            'max_rows_per_atom': args.max_rows_per_atom, 'precision': args.precision, 'flip': False if args.no_flip else None,
            'gpu_ids': [int(i) for i in args.gpu_ids.split(',')] if args.gpu_ids is not None else None}


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
        options = load_options(args.opt, overrides_from_args(args))
        given = {'checkpoint': args.checkpoint, 'vgg': args.vgg, 'random_encoder': args.random_encoder}
        if any(v is not None for v in given.values()):  # an encoder on the command line replaces the file's
            options = dataclasses.replace(options, **given)
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
    device = torch.device(select_device(options.gpu_ids))
    plan = make_plan(faces, options.k, feature_layout(config), options.flip, options.max_rows_per_atom,
                     encoder_flops_per_view(config.encoder, config.image_size), options.kmeans.resident_gb * 2**30,
                     options.landmarks_dir is not None)
    print(format_plan(plan, options.k, measure_flops_per_second(device), str(device)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
