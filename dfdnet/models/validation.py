"""Scoring a generator on a validation set: the one loop behind training's validation and
``python -m dfdnet.cli.validate``."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from dfdnet.metrics import calculate_psnr, calculate_ssim, component_mask, detail_ratio, masked_psnr
from dfdnet.utils.pixels import from_network


def _mean_of_numbers(values) -> float:
    """Mean over the values that are not NaN (faces without component boxes); NaN if none."""
    numbers = [v for v in values if not np.isnan(v)]
    return float(np.mean(numbers)) if numbers else float('nan')


@dataclass
class ValidationScores:
    """Per-face scores (RGB, 0-255) in loader order; ``images``: up to ``keep_images`` (name, lq, out, gt) uint8.

    ``component_psnr``: PSNR inside the union of the face's component boxes (``dfdnet.metrics.component_mask``),
    where the dictionaries act (about 12 % of a 512-px aligned face); NaN for a face whose boxes
    all lie outside the image. ``detail_ratio``: fine-detail energy inside those boxes over the
    ground truth's (``dfdnet.metrics.detail_ratio``; 1 = as detailed as the truth), NaN likewise.
    """
    psnr: list = field(default_factory=list)
    ssim: list = field(default_factory=list)
    component_psnr: list = field(default_factory=list)
    detail_ratio: list = field(default_factory=list)
    recon_loss: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    images: list = field(default_factory=list)

    def means(self) -> dict:
        """{'psnr', 'ssim', 'component_psnr'[, 'recon_loss']}: means over the faces;
        'detail_ratio': the median over the faces (a ratio)."""
        ratios = [v for v in self.detail_ratio if not np.isnan(v)]
        means = {'psnr': float(np.mean(self.psnr)), 'ssim': float(np.mean(self.ssim)),
                 'component_psnr': _mean_of_numbers(self.component_psnr),
                 'detail_ratio': float(np.median(ratios)) if ratios else float('nan')}
        if self.recon_loss:
            means['recon_loss'] = float(np.mean(self.recon_loss))
        return means

    def group_psnr(self) -> dict:
        """{group: (mean PSNR, count)} for the faces' groups ('clean' / 'degraded'), sorted by name."""
        by_group: dict = {}
        for group, value in zip(self.groups, self.psnr):
            by_group.setdefault(group, []).append(value)
        return {name: (float(np.mean(v)), len(v)) for name, v in sorted(by_group.items())}


@torch.no_grad()
def score_generator(net_g, loader, device='cpu', recon_loss=None, autocast=contextlib.nullcontext,
                    keep_images: int = 0) -> ValidationScores:
    """Restore every batch of ``loader`` (dicts with lq, gt, boxes, path[, group]) with ``net_g`` as
    it is (the caller sets eval mode and any EMA weights) and score each face.

    recon_loss: a callable (out, gt) -> (loss, parts) scored per face when given; autocast: a
    context factory the forward runs under. Raises ValueError for an empty loader.
    """
    scores = ValidationScores()
    for batch in loader:
        lq, gt = batch['lq'].to(device), batch['gt'].to(device)
        with autocast():
            output = net_g(lq, batch['boxes'].to(device)).float()
        for i in range(lq.shape[0]):
            out_img, gt_img = from_network(output[i]), from_network(gt[i])
            scores.psnr.append(calculate_psnr(out_img, gt_img))
            scores.ssim.append(calculate_ssim(out_img, gt_img))
            mask = component_mask(batch['boxes'][i], *gt_img.shape[:2])
            scores.component_psnr.append(masked_psnr(out_img, gt_img, mask) if mask.any() else float('nan'))
            scores.detail_ratio.append(detail_ratio(out_img, gt_img, mask) if mask.any() else float('nan'))
            scores.groups.append(batch['group'][i] if 'group' in batch else 'all')
            if recon_loss is not None:
                scores.recon_loss.append(float(recon_loss(output[i:i + 1], gt[i:i + 1])[0]))
            if len(scores.images) < keep_images:
                scores.images.append((batch['path'][i], from_network(lq[i]), out_img, gt_img))
    if not scores.psnr:
        raise ValueError('the validation set is empty')
    return scores


@torch.inference_mode()
def validate_checkpoint(checkpoint, dict_dir, val_folder, dft_levels=None, device='cpu') -> ValidationScores:
    """Scores of one generator checkpoint on a validation folder made by ``make_validation_set``;
    ``device``: any ``--device`` value (``dfdnet.utils.device.select_device``)."""
    from torch.utils.data import DataLoader

    from dfdnet.archs.checkpoint import load_generator
    from dfdnet.data.validation_set import ValidationDataset
    from dfdnet.utils.device import select_device

    device = select_device(device)
    model = load_generator(checkpoint, dict_dir, device=device, dft_levels=dft_levels)
    return score_generator(model, DataLoader(ValidationDataset(val_folder), batch_size=1), device=device)
