"""``python -m dfdnet.cli.make_testset``: paired synthetic test sets from held-out HQ faces."""
from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    """The command line: the fields of ``MakeTestsetOptions``, each declared once there."""
    from dfdnet.data.testset_options import MakeTestsetOptions  # no torch, OpenCV or dlib: --help stays instant
    from dfdnet.utils.options import add_arguments

    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser, MakeTestsetOptions)
    return parser


def main(argv=None) -> int:
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO)
    parser = build_parser()
    args = parser.parse_args(argv)
    from dfdnet.data.testset import SETTINGS, build_testset
    from dfdnet.data.testset_options import SHARED_MOTION_KERNELS, MakeTestsetOptions
    from dfdnet.utils.options import options_from_args

    if args.motion_kernels is None and SHARED_MOTION_KERNELS.is_dir():
        args.motion_kernels = SHARED_MOTION_KERNELS
    try:
        options = options_from_args(MakeTestsetOptions, args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        report = build_testset(options)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'{len(report.names)} faces written to {options.out_dir} ({", ".join(options.settings or SETTINGS)}); '
          f'{len(report.skipped)} inputs skipped')
    for path, reason in report.skipped.items():
        print(f'  skipped {path}: {reason}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
