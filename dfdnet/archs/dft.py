"""Dictionary feature transfer (DFT): component crop, CAdaIN, matching, confidence, paste.

The released semantics (reference §2, steps 1-8) with two equivalent reformulations that
make the dictionary cheap:

* CAdaIN renormalises atom k to the crop's channel statistics,
  ``R_k = N_k * sigma_F + mu_F`` with ``N_k = (D_k - mu(D_k)) / sigma(D_k)``. ``N_k`` does not
  depend on the input, so it is computed once when the dictionary is loaded.
* The match score ``<F, R_k> = <F * sigma_F, N_k> + sum_c mu_F,c * sum(F_c)``; the second term
  is the same for every k, so the argmax is one matrix product with the stored atoms.
  Near-ties are re-scored in float64 with the direct formula.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dfdnet.archs.dictionary import channel_stats

_REFINE_RTOL = 1e-4


def cadain(atoms: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
    """Direct CAdaIN as released: atoms (K, C, s, s) renormalised to crop (1, C, s, s) stats."""
    a_mean, a_std = channel_stats(atoms)
    c_mean, c_std = channel_stats(crop)
    return (atoms - a_mean) / a_std * c_std + c_mean


def match_atoms(atoms: torch.Tensor, crops: torch.Tensor, standardized: bool = True):
    """Best atom for each crop.

    Args:
        atoms: (K, C, s, s); standardised atoms ``N_k`` when ``standardized`` (CAdaIN on),
            raw atoms otherwise (CAdaIN off: plain inner product with the raw atom).
        crops: (B, C, s, s) resized component features.
    Returns:
        index (B,) of the chosen atom (first index on ties) and the swap features (B, C, s, s):
        the chosen atom renormalised to each crop's statistics (or the raw atom).
    """
    with torch.autocast(device_type=crops.device.type, enabled=False):
        crops = crops.float()
        flat_atoms = atoms.flatten(1)
        if standardized:
            mean, std = channel_stats(crops)
            scores = (crops * std).flatten(1) @ flat_atoms.T
        else:
            scores = crops.flatten(1) @ flat_atoms.T
        index = scores.argmax(dim=1)
        best = scores.gather(1, index[:, None])
        close = scores >= best - _REFINE_RTOL * best.abs().clamp_min(1e-12)
        for b in torch.nonzero(close.sum(1) > 1).flatten().tolist():
            candidates = torch.nonzero(close[b]).flatten()
            exact = _exact_scores(atoms[candidates], crops[b:b + 1], standardized)
            index[b] = candidates[exact.argmax()]  # argmax returns the first maximum
        chosen = atoms[index]
        swap = chosen * std + mean if standardized else chosen
    return index, swap


def _exact_scores(atoms: torch.Tensor, crop: torch.Tensor, standardized: bool) -> torch.Tensor:
    """Released scores in float64: <crop, CAdaIN(atom)> for a few atoms; crop (1, C, s, s)."""
    atoms, crop = atoms.double(), crop.double()
    if standardized:
        mean, std = channel_stats(crop)
        atoms = atoms * std + mean
    return (atoms * crop).flatten(1).sum(1)


def scale_boxes(boxes: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
    """Integer boxes (..., 4) [x1, y1, x2, y2] in image pixels -> feature pixels.

    floor(box / stride) as released; clamped to the map (the released code crashed on boxes
    that reached past the image; inside the image clamping changes nothing).
    """
    scaled = torch.div(boxes, stride, rounding_mode='floor')
    limits = torch.tensor([width, height, width, height], device=boxes.device)
    return torch.minimum(scaled.clamp_min(0), limits)


def transfer_slice(feature, boxes, atom_sets, attn_blocks, stride, standardized=True, use_confidence=True):
    """Released DFT at one level with integer crops.

    feature: (B, C, H, W); boxes: (B, P, 4) int image-pixel boxes, P parts in paste order;
    atom_sets: list of P (K, C, s, s) tensors; attn_blocks: list of P confidence modules.
    Returns the updated copy of ``feature``.
    """
    _, _, height, width = feature.shape
    fboxes = scale_boxes(boxes, stride, height, width).tolist()
    updated = feature.clone()
    for p, (atoms, attn) in enumerate(zip(atom_sets, attn_blocks)):
        valid = [b for b, box in enumerate(fboxes) if box[p][2] > box[p][0] and box[p][3] > box[p][1]]
        if not valid:
            continue
        crops, resized = [], []
        for b in valid:
            x1, y1, x2, y2 = fboxes[b][p]
            crop = feature[b:b + 1, :, y1:y2, x1:x2]
            crops.append(crop)
            resized.append(F.interpolate(crop, atoms.shape[-2:], mode='bilinear', align_corners=False))
        _, swaps = match_atoms(atoms, torch.cat(resized), standardized)
        swaps = swaps.to(feature.dtype)
        for i, b in enumerate(valid):
            x1, y1, x2, y2 = fboxes[b][p]
            crop = crops[i]
            swap = F.interpolate(swaps[i:i + 1], crop.shape[-2:], mode='nearest')
            delta = attn(swap - crop) * swap if use_confidence else swap
            updated[b:b + 1, :, y1:y2, x1:x2] = delta + crop
    return updated


def transfer_roi_align(feature, boxes, atom_sets, attn_blocks, stride, standardized=True, use_confidence=True):
    """Differentiable DFT at one level: RoIAlign crops, batched confidence, bilinear paste.

    Same arguments as ``transfer_slice``. Each part's result ``F + A * Swap`` is computed at
    atom size and pasted back into its (real-valued) box with ``grid_sample``; later parts
    overwrite earlier ones as in the released code.
    """
    height, width = feature.shape[-2:]
    boxes = boxes.to(feature.dtype)
    updated = feature
    for p, (atoms, attn) in enumerate(zip(atom_sets, attn_blocks)):
        size = tuple(atoms.shape[-2:])
        crops = roi_align(feature, boxes[:, p], size, spatial_scale=1.0 / stride)
        _, swaps = match_atoms(atoms, crops, standardized)
        swaps = swaps.to(feature.dtype)
        delta = attn(swaps - crops) * swaps if use_confidence else swaps
        pasted, mask = _paste(delta, boxes[:, p] / stride, height, width)
        updated = torch.where(mask, feature + pasted, updated)
    return updated


def roi_align(feature: torch.Tensor, boxes: torch.Tensor, size, spatial_scale: float) -> torch.Tensor:
    """``torchvision.ops.roi_align(..., sampling_ratio=2, aligned=True)`` with one box per image, in
    plain torch (torchvision's import alone costs ~2 s of start-up; tested equal to it).

    feature (B, C, H, W); boxes (B, 4) ``[x1, y1, x2, y2]`` in image pixels, box b on image b ->
    (B, C, h, w): each bin is the mean of 2 x 2 bilinear samples; a sample more than one pixel
    outside the map counts as 0, one inside that margin takes the edge value, as in torchvision.
    """
    out_h, out_w = size
    height, width = feature.shape[-2:]
    x1, y1, x2, y2 = (boxes * spatial_scale - 0.5).unbind(1)
    steps_x = (torch.arange(2 * out_w, device=feature.device, dtype=feature.dtype) + 0.5) / (2 * out_w)
    steps_y = (torch.arange(2 * out_h, device=feature.device, dtype=feature.dtype) + 0.5) / (2 * out_h)
    xs = x1[:, None] + (x2 - x1)[:, None] * steps_x  # (R, 2w) sample positions, pixel-index units
    ys = y1[:, None] + (y2 - y1)[:, None] * steps_y  # (R, 2h)
    grid = torch.stack(torch.broadcast_tensors(((2 * xs + 1) / width - 1)[:, None, :],
                                               ((2 * ys + 1) / height - 1)[:, :, None]), dim=-1)
    samples = F.grid_sample(feature, grid, mode='bilinear', padding_mode='border', align_corners=False)
    inside = (((xs >= -1) & (xs <= width))[:, None, :] & ((ys >= -1) & (ys <= height))[:, :, None])[:, None]
    return F.avg_pool2d(samples * inside.to(samples.dtype), 2)


def _paste(patches: torch.Tensor, boxes: torch.Tensor, height: int, width: int):
    """Bilinearly place patches (B, C, s, s) into boxes (B, 4) of an (H, W) map; also the mask."""
    x1, y1, x2, y2 = boxes.unbind(1)
    bw, bh = (x2 - x1).clamp_min(1e-3), (y2 - y1).clamp_min(1e-3)
    theta = torch.zeros(boxes.shape[0], 2, 3, dtype=patches.dtype, device=patches.device)
    theta[:, 0, 0] = width / bw
    theta[:, 0, 2] = (width - 2 * x1) / bw - 1
    theta[:, 1, 1] = height / bh
    theta[:, 1, 2] = (height - 2 * y1) / bh - 1
    grid = F.affine_grid(theta, (boxes.shape[0], 1, height, width), align_corners=False)
    pasted = F.grid_sample(patches, grid, mode='bilinear', padding_mode='border', align_corners=False)
    mask = (grid.abs() <= 1).all(dim=-1)[:, None]
    return pasted, mask
