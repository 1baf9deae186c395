"""``python -m dfdnet.cli.make_figure``: a grid of input / restored face pairs from restore runs.

Each pair is a face as the network saw it (``Step1_CropImg``, or ``Step0_Input`` for ``--aligned``
runs) next to its restoration (``Step3_RestoreCropFace``), both shown at ``--tile`` px.
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


def make_grid(pairs: list, tile: int = 192, pairs_per_row: int = 3, gap: int = 6) -> np.ndarray:
    """BGR uint8 grid: rows of ``pairs_per_row`` (input | restored) pairs on a white background."""
    if not pairs:
        raise ValueError('no face pairs to show')
    rows = -(-len(pairs) // pairs_per_row)
    cols = min(len(pairs), pairs_per_row)
    label_h = 24
    width = cols * (2 * tile + 3 * gap)
    import cv2

    grid = np.full((label_h + rows * (tile + gap) + gap, width, 3), 255, np.uint8)
    for c in range(cols):
        x = c * (2 * tile + 3 * gap) + gap
        cv2.putText(grid, 'input', (x + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(grid, 'restored', (x + tile + gap + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                    cv2.LINE_AA)
    for i, (lq, out) in enumerate(pairs):
        r, c = divmod(i, pairs_per_row)
        x, y = c * (2 * tile + 3 * gap) + gap, label_h + r * (tile + gap)
        grid[y:y + tile, x:x + tile] = _tile(lq, tile)
        grid[y:y + tile, x + tile + gap:x + 2 * tile + gap] = _tile(out, tile)
    return grid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--results', nargs='+', required=True, type=Path, help='test_FaceDict.py results folder(s)')
    parser.add_argument('--out', required=True, type=Path, help='figure file (.jpg or .png)')
    parser.add_argument('--faces', nargs='*', default=None,
                        help='only these face files (names in Step3_RestoreCropFace), in this order')
    parser.add_argument('--tile', type=int, default=192)
    parser.add_argument('--per_row', type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    pairs = [pair for folder in args.results for pair in face_pairs(folder)]
    if args.faces:
        by_name = {restored.name: (crop, restored) for crop, restored in pairs}
        missing = [name for name in args.faces if name not in by_name]
        if missing:
            parser.error(f'faces not found in the results: {missing}')
        pairs = [by_name[name] for name in args.faces]
    grid = make_grid(pairs, args.tile, args.per_row)
    import cv2

    with atomic_path(args.out) as tmp:
        if not cv2.imwrite(str(tmp), grid, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f'cannot write {args.out}')
    logger.info('%d pairs -> %s (%dx%d)', len(pairs), args.out, grid.shape[1], grid.shape[0])
    return 0


if __name__ == '__main__':
    sys.exit(main())
