"""``python -m dfdnet.cli.make_figure``: a grid of input / restored face pairs from restore runs.

Each pair is a face as the network saw it (its crop, or its input for ``--aligned`` runs) next to
its restoration, both shown at ``--tile`` px. With ``--compare LABEL=DIR ...`` (runs of the same
photos with other settings, e.g. fidelities) each row is the input next to that face from every
run. The pairs and the grid are ``dfdnet.pipeline.figures``'s.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dfdnet.pipeline.figures import compare_rows, face_pairs, make_grid, write_figure
from dfdnet.pipeline.results_folder import STEP_RESTORED

logger = logging.getLogger(__name__)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--results', nargs='+', required=True, type=Path, help='test_FaceDict.py results folder(s)')
    parser.add_argument('--out', required=True, type=Path, help='figure file (.jpg or .png)')
    parser.add_argument('--faces', nargs='*', default=None,
                        help=f'only these face files (names in {STEP_RESTORED}), in this order')
    parser.add_argument('--compare', nargs='*', default=[], metavar='LABEL=DIR',
                        help='more results folders of the same inputs, each shown as a column after the first run')
    parser.add_argument('--label', default='restored', help="the first run's column title")
    parser.add_argument('--tile', type=int, default=192)
    parser.add_argument('--per_row', type=int, default=3)
    args = parser.parse_args(argv)
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.INFO)
    pairs = [pair for folder in args.results for pair in face_pairs(folder)]
    if args.faces:
        by_name = {restored.name: (crop, restored) for crop, restored in pairs}
        missing = [name for name in args.faces if name not in by_name]
        if missing:
            parser.error(f'faces not found in the results: {missing}')
        pairs = [by_name[name] for name in args.faces]
    compare = []
    for item in args.compare:
        label, sep, folder = item.partition('=')
        if not sep or not label or not folder:
            parser.error(f'--compare takes LABEL=DIR, got {item!r}')
        compare.append((label, Path(folder)))
    try:
        rows = compare_rows(pairs, compare) if compare else pairs
        grid = make_grid(rows, args.tile, args.per_row, labels=('input', args.label, *(c[0] for c in compare)))
    except ValueError as exc:
        parser.error(str(exc))
    try:
        write_figure(grid, args.out)
    except OSError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    logger.info('%d pairs -> %s (%dx%d)', len(pairs), args.out, grid.shape[1], grid.shape[0])
    return 0


if __name__ == '__main__':
    sys.exit(main())
