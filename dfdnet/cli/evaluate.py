"""``python -m dfdnet.cli.evaluate``: metrics of restored faces, per image (CSV) and per method (Markdown)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    """The fields of ``EvaluationOptions`` (each declared once there) plus the command's own flags:
    where the rows go and how they are summarised."""
    from dfdnet.metrics.options import EvaluationOptions  # no torch, OpenCV or dlib: --help stays instant
    from dfdnet.utils.options import add_arguments, add_flag

    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser, EvaluationOptions)
    parser.add_argument('--baseline', choices=['bicubic'], action='append', dest='legacy_baseline',
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the old spelling of --baseline_bicubic
    parser.add_argument('--csv', type=Path, default=None, help='write the per-image rows here')
    parser.add_argument('--paired', nargs=2, metavar=('A', 'B'), default=None,
                        help='also compare method B with method A image by image (PSNR, PSNR in the component '
                             'boxes, identity distance: mean difference, wins, Wilcoxon signed-rank p)')
    add_flag(parser, '--from_csv', '--from-csv', nargs='+', type=Path, default=None, metavar='CSV',
             help='summarise the rows of earlier --csv files (e.g. one per setting, pooled for --paired) instead '
                  'of evaluating folders')
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'legacy_baseline', None):
        args.baseline_bicubic = True
    if not args.restored and not args.baseline_bicubic and not args.from_csv:
        parser.error('give --restored DIR (and/or --baseline_bicubic --lq_dir DIR --gt_dir DIR), or --from_csv')
    return args


def main(argv=None) -> int:
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO)
    args = parse_args(argv)
    from dfdnet.metrics.evaluate import (EvaluationOptions, evaluate, markdown_table, paired_comparison, paired_table,
                                         read_csv_rows, summarise, write_csv)
    from dfdnet.utils.options import options_from_args

    messages = []
    try:
        options = options_from_args(EvaluationOptions, args)
        if args.from_csv:
            rows = read_csv_rows(args.from_csv)
        else:
            result = evaluate(options)
            rows, messages = result.rows, result.messages
    except (OSError, ValueError) as exc:  # a missing folder or CSV file, a bad option
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if args.csv is not None and not args.from_csv:
        write_csv(rows, args.csv)
    print(markdown_table(summarise(rows)))
    if args.paired:
        print('\n' + paired_table(paired_comparison(rows, *args.paired), *args.paired))
    if messages:
        print('\nNotes:')
        for message in messages:
            print(f'- {message}')
    if args.csv is not None and not args.from_csv:
        print(f'\nper-image rows: {args.csv}')
    methods = [name for name, _ in options.restored] + (['bicubic'] if options.baseline_bicubic else [])
    return _check_every_method_scored(rows, methods, matched_to_gt=options.gt_dir is not None)


def _check_every_method_scored(rows: list, methods: list, matched_to_gt: bool) -> int:
    """1 (with the reason on stderr) when a method has no image evaluated, e.g. no file name that
    matches the ground truth; else 0."""
    methods = list(dict.fromkeys(methods + [row['method'] for row in rows]))
    empty = [method for method in methods if not any(r['method'] == method and r['status'] == 'ok' for r in rows)]
    for method in empty:
        counts = [r['status'] for r in rows if r['method'] == method]
        reason = ('no file name matches one in --gt_dir (NAME.png is compared with the GT NAME.png; a per-face '
                  'NAME_00.png too)' if matched_to_gt and counts else 'no image found or readable')
        print(f'error: {method}: nothing evaluated: {reason}', file=sys.stderr)
    return 1 if empty else 0


if __name__ == '__main__':
    sys.exit(main())
