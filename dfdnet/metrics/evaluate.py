"""Evaluate folders of restored faces against ground truth (or without it) and summarise per method.

Images are matched by file stem (``00001.png`` ↔ ``00001.jpg``; a restored ``00001_00.png``, the
restore tool's per-face name, also matches a GT ``00001`` when nothing else does). A file without its counterpart,
an unreadable file or a size mismatch is reported in its row and the evaluation goes on.
Full-reference metrics (need ``gt_dir``): PSNR, SSIM (RGB and BT.601 Y), PSNR inside the GT's component
boxes (``psnr_components``: eyes, nose, mouth, where the dictionaries act), the fine detail inside
them relative to the GT's (``detail_ratio``, ``dfdnet.metrics.detail``; summarised by its median),
identity (cosine of dlib
face descriptors), landmark NME, LPIPS (optional). No-reference: NIQE (with a pristine-parameter
file) and the number of faces dlib's HOG detector finds.
"""
from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from dfdnet.face.components import component_boxes
from dfdnet.metrics.detail import detail_ratio
from dfdnet.metrics.options import EvaluationOptions
from dfdnet.metrics.psnr_ssim import calculate_psnr, calculate_ssim, component_mask, masked_psnr
from dfdnet.utils.image_io import is_image_file, read_rgb

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ('psnr', 'ssim', 'psnr_y', 'ssim_y', 'psnr_components', 'detail_ratio', 'identity', 'identity_dist',
                  'landmark_nme', 'lpips', 'niqe', 'faces')
CSV_COLUMNS = ('method', 'file', 'status') + METRIC_COLUMNS
# Direction of each metric in the summary header.
# detail_ratio is best near 1 (above 1.5: over-sharpened or noisy); a paired comparison counts more detail as better.
_BETTER = {'psnr': '↑', 'ssim': '↑', 'psnr_y': '↑', 'ssim_y': '↑', 'psnr_components': '↑', 'detail_ratio': '≈1',
           'identity': '↑',
           'identity_dist': '↓', 'landmark_nme': '↓', 'lpips': '↓', 'niqe': '↓', 'faces': ''}


@dataclass
class EvaluationResult:
    rows: list = field(default_factory=list)
    messages: list = field(default_factory=list)   # skipped metrics, missing counterparts


def images_by_stem(folder: Path, messages: list | None = None) -> dict[str, Path]:
    """stem -> image path of the images directly in ``folder`` (two files with one stem: the first is
    kept, in sorted order, and the clash is reported)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'image folder not found: {folder}')
    found = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)):
        if path.stem in found:
            if messages is not None:
                messages.append(f'{path}: same stem as {found[path.stem].name}, ignored')
            continue
        found[path.stem] = path
    return found


def match_face_index_suffix(files: dict, gt_files: dict) -> dict:
    """Re-key restored files named ``<stem>_<NN>`` (the restore tool's per-face Step3 names) to ``<stem>``
    when only the latter is a GT stem and no file already has that stem."""
    matched = {}
    for stem, path in files.items():
        base = re.sub(r'_\d{2}$', '', stem)
        if stem not in gt_files and base != stem and base in gt_files and base not in files and base not in matched:
            matched[base] = path
        else:
            matched[stem] = path
    return matched


class _Context:
    """Models and per-GT caches shared by all methods."""

    def __init__(self, options: EvaluationOptions, messages: list):
        self.options = options
        self.face_models = None
        if options.face_metrics:
            from dfdnet.metrics.face_dlib import DlibFaceModels
            self.face_models = DlibFaceModels(upsample=0)
        self.niqe_model = None
        if options.niqe_params is not None:
            from dfdnet.metrics.niqe import load_pristine_model
            self.niqe_model = load_pristine_model(options.niqe_params)
        else:
            messages.append('NIQE skipped: no pristine-parameter file given (--niqe_params)')
        self.lpips = None
        if options.gt_dir is not None and options.lpips != 'off':
            from dfdnet.metrics.learned import LpipsMetric, MetricUnavailable
            try:
                self.lpips = LpipsMetric(device=options.device)
            except MetricUnavailable as exc:
                messages.append(str(exc))
        self._gt_faces = {}

    def gt_face(self, stem: str, gt: np.ndarray):
        """(box, 68 landmarks, descriptor) of a GT face, computed once."""
        if stem not in self._gt_faces:
            models = self.face_models
            box = models.face_box(gt)
            landmarks = None
            if self.options.gt_landmarks_dir is not None:
                from dfdnet.data.landmark_cache import landmark_txt_path, read_landmark_txt
                path = landmark_txt_path(self.options.gt_landmarks_dir, f'{stem}.png')
                if path is not None:
                    landmarks = read_landmark_txt(path).astype(np.float64)
            if landmarks is None:
                landmarks = landmarks_or_none(models, gt)
            self._gt_faces[stem] = (box, landmarks, models.descriptor(gt, box))
        return self._gt_faces[stem]


def landmarks_or_none(models, img: np.ndarray):
    """The 68 landmarks of ``models.landmarks68`` or None when they fail its checks (NME not defined)."""
    from dfdnet.face.landmarks import LandmarkError
    try:
        return models.landmarks68(img)
    except LandmarkError as exc:
        logger.info('no landmarks: %s', exc)
        return None


def _no_reference(img: np.ndarray, ctx: _Context, label: str, messages: list) -> dict:
    row = {}
    if ctx.niqe_model is not None:
        from dfdnet.metrics.niqe import calculate_niqe
        try:
            row['niqe'] = calculate_niqe(img, ctx.niqe_model, crop_border=ctx.options.crop_border)
        except ValueError as exc:  # too small or flat: the other metrics still count
            messages.append(f'{label}: no NIQE ({exc})')
    if ctx.face_models is not None:
        row['faces'] = len(ctx.face_models.detect(img, upsample=1))
    return row


def _full_reference(img: np.ndarray, gt: np.ndarray, stem: str, ctx: _Context) -> dict:
    if img.shape != gt.shape:
        raise ValueError(f'size {img.shape[1]}x{img.shape[0]} differs from the GT {gt.shape[1]}x{gt.shape[0]}')
    border = ctx.options.crop_border
    row = {'psnr': calculate_psnr(img, gt, border), 'ssim': calculate_ssim(img, gt, border),
           'psnr_y': calculate_psnr(img, gt, border, test_y_channel=True),
           'ssim_y': calculate_ssim(img, gt, border, test_y_channel=True)}
    if ctx.face_models is not None:
        from dfdnet.metrics.identity import cosine_similarity
        from dfdnet.metrics.landmark_distance import normalised_landmark_distance
        box, gt_landmarks, gt_descriptor = ctx.gt_face(stem, gt)
        descriptor = ctx.face_models.descriptor(img, box)
        row['identity'] = cosine_similarity(descriptor, gt_descriptor)
        row['identity_dist'] = float(np.linalg.norm(descriptor - gt_descriptor))
        landmarks = landmarks_or_none(ctx.face_models, img)
        row['landmark_nme'] = (normalised_landmark_distance(landmarks, gt_landmarks)
                               if landmarks is not None and gt_landmarks is not None else float('nan'))
        if gt_landmarks is not None:  # where the dictionaries act: the GT's component boxes
            mask = component_mask(component_boxes(gt_landmarks, gt.shape[1]), *gt.shape[:2])
            row['psnr_components'] = masked_psnr(img, gt, mask)
            row['detail_ratio'] = detail_ratio(img, gt, mask)
    if ctx.lpips is not None:
        row['lpips'] = ctx.lpips(img, gt)
    return row


def _method_inputs(options: EvaluationOptions, messages: list) -> list[tuple[str, dict, bool]]:
    """(method, stem -> path, is_bicubic_baseline) of every method."""
    methods = [(name, images_by_stem(folder, messages), False) for name, folder in options.restored]
    if options.baseline_bicubic:
        if options.lq_dir is None:
            raise ValueError('the bicubic baseline needs the LQ folder (--lq_dir)')
        if options.gt_dir is None:
            raise ValueError('the bicubic baseline needs the GT folder (--gt_dir) for its target size')
        methods.insert(0, ('bicubic', images_by_stem(options.lq_dir, messages), True))
    names = [m[0] for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f'method names must be unique, got {names}')
    return methods


def evaluate(options: EvaluationOptions) -> EvaluationResult:
    """Per-image rows (dicts with CSV_COLUMNS keys) of every method; see the module docstring."""
    result = EvaluationResult()
    methods = _method_inputs(options, result.messages)
    gt_files = images_by_stem(options.gt_dir, result.messages) if options.gt_dir is not None else None
    ctx = _Context(options, result.messages)
    gt_cache = {}
    for method, files, is_bicubic in methods:
        if gt_files is not None:
            files = match_face_index_suffix(files, gt_files)
        stems = sorted(set(files) | set(gt_files or {}))
        for stem in tqdm(stems, desc=method, unit='img'):
            row = {'method': method, 'file': (files.get(stem) or gt_files[stem]).name, 'status': 'ok'}
            try:
                if stem not in files:
                    row['status'] = 'missing restored' if not is_bicubic else 'missing lq'
                    result.messages.append(f'{method}: no image for GT {gt_files[stem].name}')
                    result.rows.append(row)
                    continue
                gt = None
                if gt_files is not None:
                    if stem in gt_files:
                        if stem not in gt_cache:
                            gt_cache[stem] = read_rgb(gt_files[stem])
                        gt = gt_cache[stem]
                    else:
                        row['status'] = 'missing gt'
                        result.messages.append(f'{method}: {files[stem].name} has no GT counterpart')
                img = read_rgb(files[stem])
                if is_bicubic:
                    if gt is None:
                        result.rows.append(row)
                        continue
                    img = cv2.resize(img, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_CUBIC)
                elif gt is not None and ctx.options.resize_restored and img.shape != gt.shape:
                    img = cv2.resize(img, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_CUBIC)
                if gt is not None:
                    row.update(_full_reference(img, gt, stem, ctx))
                row.update(_no_reference(img, ctx, f'{method}: {row["file"]}', result.messages))
            except Exception as exc:  # one bad image must not stop the evaluation
                row['status'] = f'error: {exc}'
                logger.warning('%s %s: %s', method, row['file'], exc)
                result.messages.append(f'{method}: {row["file"]}: {exc}')
            result.rows.append(row)
    return result


def summarise(rows: list) -> list[dict]:
    """Per method: images ok, missing, errors, and the mean of each metric over its finite values
    (``faces``: the share of images where at least one face was found; ``detail_ratio``: the median)."""
    summary = []
    for method in dict.fromkeys(r['method'] for r in rows):
        mine = [r for r in rows if r['method'] == method]
        entry = {'method': method, 'images': sum(1 for r in mine if r['status'] == 'ok'),
                 'missing': sum(1 for r in mine if r['status'].startswith('missing')),
                 'errors': sum(1 for r in mine if r['status'].startswith('error'))}
        for column in METRIC_COLUMNS:
            values = [float(r[column]) for r in mine if r.get(column) is not None and not math.isnan(float(r[column]))]
            if column == 'faces':
                entry[column] = float(np.mean([v > 0 for v in values])) if values else None
            elif column == 'detail_ratio':
                entry[column] = float(np.median(values)) if values else None
            else:
                entry[column] = float(np.mean(values)) if values else None
        summary.append(entry)
    return summary


def paired_comparison(rows: list, method_a: str, method_b: str,
                      columns=('psnr', 'psnr_components', 'detail_ratio', 'identity_dist')) -> list[dict]:
    """Method B against method A on the images both scored, per column: ``pairs``, ``mean_diff`` (B − A),
    ``b_better`` / ``b_worse`` (counts, by the column's direction; for ``detail_ratio``, more detail),
    ``median_ratio`` (median of B / A, for positive values) and ``p_value`` (two-sided Wilcoxon
    signed-rank test; ``None`` with fewer than 6 pairs or no difference). Rows pair by (``source``,
    ``file``); ``source`` tells apart rows read from several CSV files (one per setting)."""
    from scipy.stats import wilcoxon

    def values(method, column):
        out = {}
        for r in rows:
            if r['method'] == method and r.get('status') == 'ok' and r.get(column) is not None:
                value = float(r[column])
                if math.isfinite(value):
                    out[(r.get('source', ''), r['file'])] = value
        return out

    result = []
    for column in columns:
        a, b = values(method_a, column), values(method_b, column)
        keys = sorted(set(a) & set(b))
        diff = np.array([b[k] - a[k] for k in keys])
        sign = -1.0 if _BETTER[column] == '↓' else 1.0
        p_value = None
        if len(keys) >= 6 and np.any(diff != 0):
            p_value = float(wilcoxon(diff).pvalue)
        ratios = [b[k] / a[k] for k in keys if a[k] > 0 and b[k] > 0]
        result.append({'column': column, 'pairs': len(keys), 'mean_diff': float(diff.mean()) if keys else None,
                       'median_ratio': float(np.median(ratios)) if ratios else None,
                       'b_better': int(np.sum(sign * diff > 0)), 'b_worse': int(np.sum(sign * diff < 0)),
                       'p_value': p_value})
    return result


def paired_table(comparison: list[dict], method_a: str, method_b: str) -> str:
    """``paired_comparison`` as a Markdown table."""
    lines = [f'| {method_b} vs {method_a} | pairs | mean difference | median ratio | {method_b} better '
             f'| {method_b} worse | Wilcoxon p |', '|---|---|---|---|---|---|---|']
    for c in comparison:
        mean = '–' if c['mean_diff'] is None else f'{c["mean_diff"]:+.4f}'
        ratio = '–' if c.get('median_ratio') is None else f'{c["median_ratio"]:.3f}'
        p_value = '–' if c['p_value'] is None else f'{c["p_value"]:.3g}'
        lines.append(f'| {c["column"]} {_BETTER[c["column"]]} | {c["pairs"]} | {mean} | {ratio} | {c["b_better"]} '
                     f'| {c["b_worse"]} | {p_value} |')
    return '\n'.join(lines)


def read_csv_rows(paths) -> list:
    """Rows of ``write_csv`` files, each tagged with its ``source`` (the file's path); empty cells
    (metrics not computed) read as None."""
    rows = []
    for path in paths:
        with open(path, newline='') as fh:
            rows += [{**{k: (None if v == '' else v) for k, v in r.items()}, 'source': str(path)}
                     for r in csv.DictReader(fh)]
    return rows


def _fmt(value, column: str) -> str:
    if value is None:
        return '–'
    if column in ('psnr', 'psnr_y', 'psnr_components', 'niqe'):
        return f'{value:.2f}'
    if column == 'faces':
        return f'{100 * value:.0f}%'
    return f'{value:.4f}'


def markdown_table(summary: list[dict]) -> str:
    """Summary as a Markdown table; metric columns with no value for any method are left out."""
    columns = [c for c in METRIC_COLUMNS if any(e[c] is not None for e in summary)]
    header = ['method', 'images', 'missing', 'errors'] + [f'{c} {_BETTER[c]}'.strip() for c in columns]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for entry in summary:
        cells = [entry['method'], str(entry['images']), str(entry['missing']), str(entry['errors'])]
        cells += [_fmt(entry[c], c) for c in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_csv(rows: list, path) -> None:
    """Per-image rows to ``path`` (written atomically); empty cells for metrics not computed."""
    from dfdnet.utils.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, 'w', newline='') as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction='ignore')
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ('' if row.get(k) is None else row[k]) for k in CSV_COLUMNS})
