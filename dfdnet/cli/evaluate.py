"""``python -m dfdnet.cli.evaluate``: metrics of restored faces, per image (CSV) and per method (Markdown)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _method(text: str) -> tuple[str, Path]:
    """``NAME=DIR`` or ``DIR`` (the method is then named after the folder)."""
    if '=' in text:
        name, folder = text.split('=', 1)
        return name, Path(folder)
    return Path(text).name or text, Path(text)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--restored', nargs='+', type=_method, default=[], metavar='[NAME=]DIR',
                        help='folder(s) of restored faces, one method each')
    parser.add_argument('--gt', type=Path, default=None,
                        help='ground-truth folder (without it: no-reference metrics only)')
    parser.add_argument('--lq', type=Path, default=None, help='low-quality inputs (for --baseline bicubic)')
    parser.add_argument('--baseline', choices=['bicubic'], action='append', default=[],
                        help='add a baseline row: bicubic = the --lq images upsampled to the GT size')
    parser.add_argument('--gt-landmarks', type=Path, default=None,
                        help='folder of GT landmarks "<name>.png.txt" (released format); default: dlib on the GT')
    parser.add_argument('--csv', type=Path, default=None, help='write the per-image rows here')
    parser.add_argument('--crop-border', type=int, default=0, help='pixels cropped from each side for PSNR/SSIM/NIQE')
    parser.add_argument('--niqe-params', type=Path, default=None,
                        help='NIQE pristine parameters (.npz, e.g. ../shared/data/metrics/niqe_pris_params.npz)')
    parser.add_argument('--no-face-metrics', action='store_true', help='skip identity, landmarks and face counts')
    parser.add_argument('--lpips', choices=['auto', 'off'], default='auto',
                        help='auto: LPIPS if the lpips package and its weights are present locally')
    parser.add_argument('--device', default='cpu', help='device for LPIPS')
    parser.add_argument('--resize-restored', action='store_true',
                        help='bicubic-resize restored faces of another size to the GT size (e.g. a 256-px model '
                             'against 512-px GT); otherwise a size mismatch is an error for that image')
    parser.add_argument('--paired', nargs=2, metavar=('A', 'B'), default=None,
                        help='also compare method B with method A image by image (PSNR, PSNR in the component '
                             'boxes, identity distance: mean difference, wins, Wilcoxon signed-rank p)')
    parser.add_argument('--from-csv', nargs='+', type=Path, default=None, metavar='CSV',
                        help='summarise the rows of earlier --csv files (e.g. one per setting, pooled for '
                             '--paired) instead of evaluating folders')
    args = parser.parse_args(argv)
    if not args.restored and not args.baseline and not args.from_csv:
        parser.error('give --restored DIR (and/or --baseline bicubic --lq DIR --gt DIR), or --from-csv')
    return args


def main(argv=None) -> int:
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO)
    args = parse_args(argv)
    from dfdnet.metrics.evaluate import (EvaluationOptions, evaluate, markdown_table, paired_comparison, paired_table,
                                         read_csv_rows, summarise, write_csv)

    messages = []
    try:
        if args.from_csv:
            rows = read_csv_rows(args.from_csv)
        else:
            result = evaluate(EvaluationOptions(
                restored=args.restored, gt_dir=args.gt, lq_dir=args.lq, baseline_bicubic='bicubic' in args.baseline,
                gt_landmarks_dir=args.gt_landmarks, crop_border=args.crop_border, niqe_params=args.niqe_params,
                face_metrics=not args.no_face_metrics, lpips=args.lpips, device=args.device,
                resize_restored=args.resize_restored))
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
    return _check_every_method_scored(rows, [name for name, _ in args.restored] + list(args.baseline),
                                      matched_to_gt=args.gt is not None)


def _check_every_method_scored(rows: list, methods: list, matched_to_gt: bool) -> int:
    """1 (with the reason on stderr) when a method has no image evaluated, e.g. no file name that
    matches the ground truth; else 0."""
    methods = list(dict.fromkeys(methods + [row['method'] for row in rows]))
    empty = [method for method in methods if not any(r['method'] == method and r['status'] == 'ok' for r in rows)]
    for method in empty:
        counts = [r['status'] for r in rows if r['method'] == method]
        reason = ('no file name matches one in --gt (NAME.png is compared with the GT NAME.png; a per-face '
                  'NAME_00.png too)' if matched_to_gt and counts else 'no image found or readable')
        print(f'error: {method}: nothing evaluated: {reason}', file=sys.stderr)
    return 1 if empty else 0


if __name__ == '__main__':
    sys.exit(main())
