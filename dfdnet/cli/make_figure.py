"""``python -m dfdnet.cli.make_figure``: a grid of input / restored face pairs from restore runs.

Each pair is a face as the network saw it (``Step1_CropImg``, or ``Step0_Input`` for ``--aligned``
runs) next to its restoration (``Step3_RestoreCropFace``), both shown at ``--tile`` px. With
``--compare LABEL=DIR ...`` (runs of the same photos with other settings, e.g. fidelities) each
row is the input next to that face from every run.
"""
from __future__ import annotations

import argparse
import sys
import logging
from pathlib import Path

import numpy as np

from dfdnet.utils.files import atomic_path

logger = logging.getLogger(__name__)


def face_pairs(results_dir: Path) -> list[tuple[Path, Path]]:
    """(input face, restored face) files of one ``test_FaceDict.py`` results folder, by name."""
    pairs = []
    for restored in sorted((results_dir / 'Step3_RestoreCropFace').glob('*.*')):
        crop = results_dir / 'Step1_CropImg' / restored.name
        if not crop.is_file():  # aligned inputs are not re-cropped
            found = sorted((results_dir / 'Step0_Input').glob(f'{restored.stem}.*'))
            crop = found[0] if found else None
        if crop is not None:
            pairs.append((crop, restored))
    return pairs


def _tile(path: Path, size: int) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'cannot read {path}')
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC)


def make_grid(pairs: list, tile: int = 192, pairs_per_row: int = 3, gap: int = 6,
              labels=('input', 'restored')) -> np.ndarray:
    """BGR uint8 grid on a white background: ``pairs_per_row`` groups a row, each group the files
    of one face side by side (input, then one restored file per entry of ``labels`` after the first)."""
    if not pairs:
        raise ValueError('no face pairs to show')
    per_group = len(labels)
    if any(len(group) != per_group for group in pairs):
        raise ValueError(f'every face needs {per_group} files ({", ".join(labels)})')
    rows = -(-len(pairs) // pairs_per_row)
    cols = min(len(pairs), pairs_per_row)
    label_h = 24
    group_w = per_group * (tile + gap) + gap
    import cv2

    grid = np.full((label_h + rows * (tile + gap) + gap, cols * group_w, 3), 255, np.uint8)
    for c in range(cols):
        for k, label in enumerate(labels):
            x = c * group_w + gap + k * (tile + gap)
            cv2.putText(grid, label, (x + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for i, group in enumerate(pairs):
        r, c = divmod(i, pairs_per_row)
        y = label_h + r * (tile + gap)
        for k, path in enumerate(group):
            x = c * group_w + gap + k * (tile + gap)
            grid[y:y + tile, x:x + tile] = _tile(path, tile)
    return grid


def compare_rows(pairs: list, compare: list) -> list:
    """(input, restored, then the same face from each ``(label, results folder)``) per face of ``pairs``
    that every compared run has."""
    rows = []
    for crop, restored in pairs:
        others = [folder / 'Step3_RestoreCropFace' / restored.name for _, folder in compare]
        missing = [str(p) for p in others if not p.is_file()]
        if missing:
            raise ValueError(f'{restored.name} is missing from {", ".join(missing)}')
        rows.append((crop, restored, *others))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--results', nargs='+', required=True, type=Path, help='test_FaceDict.py results folder(s)')
    parser.add_argument('--out', required=True, type=Path, help='figure file (.jpg or .png)')
    parser.add_argument('--faces', nargs='*', default=None,
                        help='only these face files (names in Step3_RestoreCropFace), in this order')
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
    import cv2

    with atomic_path(args.out) as tmp:
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if args.out.suffix.lower() in ('.jpg', '.jpeg') else []
        if not cv2.imwrite(str(tmp), grid, params):
            raise OSError(f'cannot write {args.out}')
    logger.info('%d pairs -> %s (%dx%d)', len(pairs), args.out, grid.shape[1], grid.shape[0])
    return 0


if __name__ == '__main__':
    sys.exit(main())
