"""The results folder of a restoration run: its released step folders, its lock, the checks that
keep every output away from the inputs, and the removal of an earlier run's per-face files."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from dfdnet.utils.run_lock import FolderLock

logger = logging.getLogger(__name__)

STEP_INPUT = 'Step0_Input'
STEP_CROP = 'Step1_CropImg'
STEP_AFFINE = 'Step1_AffineParam'
STEP_LANDMARKS = 'Step2_Landmarks'
STEP_RESTORED = 'Step3_RestoreCropFace'
STEP_FINAL = 'Step4_FinalResults'
STEPS = (STEP_INPUT, STEP_CROP, STEP_AFFINE, STEP_LANDMARKS, STEP_RESTORED, STEP_FINAL)
FACE_STEPS = (STEP_CROP, STEP_AFFINE, STEP_LANDMARKS, STEP_RESTORED)  # one file per face: <key>_<face:02d>.<ext>
LOCK_NAME = '.dfdnet-restore.lock'


def results_lock(results_dir) -> FolderLock:
    """The lock of a results folder (``<results>/.dfdnet-restore.lock``), not yet taken."""
    return FolderLock(Path(results_dir) / LOCK_NAME, what='results folder')


def _overlaps(folder: Path, source: Path) -> bool:
    """True when ``folder`` is ``source``, holds it, or lies inside it (all resolved)."""
    return folder == source or folder in source.parents or source in folder.parents


def check_output_folders(test_path, results_dir) -> None:
    """``ValueError`` naming the folder when a folder under ``results_dir`` (a step folder, or a
    subfolder of one) is a link that resolves into the input, or onto a folder holding it: writing
    there could overwrite an input. (The results folder itself: ``check_run_paths``.)"""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return
    source, root = Path(test_path).resolve(), results_dir.resolve()
    for folder, subfolders, _ in os.walk(results_dir):
        for name in subfolders:
            path = Path(folder) / name
            if not path.is_symlink():
                continue
            target = path.resolve()
            if root in target.parents:
                continue  # a link inside the results folder: checked as the walk reaches it
            if _overlaps(target, source):
                raise ValueError(f'{path} is a link to {target}, which holds or lies in the input {test_path}: '
                                 'results written there could overwrite an input; remove the link or choose '
                                 'another --results_dir')


def remove_earlier_face_files(results_dir, key: str, protected=frozenset()) -> int:
    """Delete the per-face files (``<key>_NN.<ext>`` in the per-face step folders) that an earlier
    run left for the photo ``key``, so that a photo that now has fewer faces keeps none of the
    old ones; names in ``protected`` (the output keys of this run's inputs) are kept. Returns how
    many were removed."""
    name = Path(key).name
    pattern = re.compile(rf'^{re.escape(name)}_\d{{2,}}\.[A-Za-z0-9]+$')
    removed = 0
    for step in FACE_STEPS:
        folder = (Path(results_dir) / step / key).parent
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            stem = (Path(key).parent / path.stem).as_posix()
            if not pattern.match(path.name) or stem in protected or not path.is_file():
                continue
            try:
                path.unlink()
                removed += 1
            except OSError as exc:
                logger.warning('cannot remove %s, left by an earlier run: %s', path, exc)
    return removed
