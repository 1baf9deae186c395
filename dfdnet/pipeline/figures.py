"""Figures of restore runs: a grid of input / restored face pairs read from results folders.

Each pair is a face as the network saw it (the crop folder, or the input folder for ``--aligned``
runs) next to its restoration. The folder names are arguments, by default the step folders of
``dfdnet.pipeline.results_folder``. The command is ``python -m dfdnet.cli.make_figure``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dfdnet.pipeline.results_folder import STEP_CROP, STEP_INPUT, STEP_RESTORED
from dfdnet.utils.files import atomic_path


def face_pairs(results_dir, restored_step: str = STEP_RESTORED, crop_step: str = STEP_CROP,
               input_step: str = STEP_INPUT) -> list[tuple[Path, Path]]:
    """(input face, restored face) files of one ``test_FaceDict.py`` results folder, matched by name:
    each file of ``restored_step`` with its namesake in ``crop_step``, else (aligned inputs are not
    re-cropped) the file of ``input_step`` with its stem."""
    results_dir = Path(results_dir)
    pairs = []
    for restored in sorted((results_dir / restored_step).glob('*.*')):
        crop = results_dir / crop_step / restored.name
        if not crop.is_file():
            found = sorted((results_dir / input_step).glob(f'{restored.stem}.*'))
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


def compare_rows(pairs: list, compare: list, restored_step: str = STEP_RESTORED) -> list:
    """(input, restored, then the same face from each ``(label, results folder)``) per face of
    ``pairs``; ValueError naming the files when a compared run lacks one."""
    rows = []
    for crop, restored in pairs:
        others = [Path(folder) / restored_step / restored.name for _, folder in compare]
        missing = [str(p) for p in others if not p.is_file()]
        if missing:
            raise ValueError(f'{restored.name} is missing from {", ".join(missing)}')
        rows.append((crop, restored, *others))
    return rows


def write_figure(grid: np.ndarray, out) -> None:
    """Write the BGR ``grid`` to ``out`` atomically (JPEG quality 90 for .jpg/.jpeg); OSError naming
    the file when it cannot be written."""
    import cv2

    out = Path(out)
    with atomic_path(out) as tmp:
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if out.suffix.lower() in ('.jpg', '.jpeg') else []
        if not cv2.imwrite(str(tmp), grid, params):
            raise OSError(f'cannot write {out}')
