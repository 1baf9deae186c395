"""Dictionary feature transfer (DFT): component crop, CAdaIN, matching, confidence, paste.

The released semantics (reference §2, steps 1-8) with two equivalent reformulations that
make the dictionary cheap:

* CAdaIN renormalises atom k to the crop's channel statistics,
  ``R_k = N_k * sigma_F + mu_F`` with ``N_k = (D_k - mu(D_k)) / sigma(D_k)``. ``N_k`` does not
  depend on the input, so it is computed once when the dictionary is loaded.
* The match score ``<F, R_k> = <F * sigma_F, N_k> + sum_c mu_F,c * sum(F_c)``; the second term
  is the same for every k, so the argmax is one matrix product with the stored atoms.
  Near-ties are re-scored in float64 with the direct formula.

Every box-dependent step is a tensor operation (index arithmetic, gathers, ``grid_sample``): no
box value becomes a Python number, so the same code runs eagerly and traces into an ONNX graph
whose boxes are an input (``dfdnet.archs.onnx_export``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dfdnet.archs.dictionary import channel_stats

_REFINE_RTOL = 1e-4
_REFINE_CANDIDATES = 8  # near-ties re-scored per crop: the best float32 scores within the tolerance
_WIDEN_ATOMS = 32  # reduced-precision atoms widened to float32 this many at a time for the matching


def cadain(atoms: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
    """Direct CAdaIN as released: atoms (K, C, s, s) renormalised to crop (1, C, s, s) stats."""
    a_mean, a_std = channel_stats(atoms)
    c_mean, c_std = channel_stats(crop)
    return (atoms - a_mean) / a_std * c_std + c_mean


def match_atoms(atoms: torch.Tensor, crops: torch.Tensor, standardized: bool = True):
    """Best atom for each crop.

    Args:
        atoms: (K, C, s, s); standardised atoms ``N_k`` when ``standardized`` (CAdaIN on),
            raw atoms otherwise (CAdaIN off: plain inner product with the raw atom); float32, or
            bfloat16 / float16 (scored in float32 all the same).
        crops: (B, C, s, s) resized component features.
    Returns:
        index (B,) of the chosen atom and the swap features (B, C, s, s): the chosen atom
        renormalised to each crop's statistics (or the raw atom). Scores within ``_REFINE_RTOL``
        of the best (up to ``_REFINE_CANDIDATES`` of them) are re-scored in float64 with the
        direct formula, and the first index wins an exact tie.
    """
    with torch.autocast(device_type=crops.device.type, enabled=False):
        crops = crops.float()
        if standardized:
            mean, std = channel_stats(crops)
            scores = _float32_scores((crops * std).flatten(1), atoms.flatten(1))
        else:
            scores = _float32_scores(crops.flatten(1), atoms.flatten(1))
        best = scores.amax(dim=1, keepdim=True)
        close = scores >= best - _REFINE_RTOL * best.abs().clamp_min(1e-12)
        candidates = scores.topk(min(_REFINE_CANDIDATES, scores.shape[1]), dim=1).indices  # (B, T), best first
        exact = _exact_scores(atoms[candidates], crops, standardized)
        exact = exact.masked_fill(~close.gather(1, candidates), float('-inf'))
        top = exact.amax(dim=1, keepdim=True)
        index = torch.where(exact == top, candidates, scores.shape[1]).amin(dim=1)
        chosen = atoms[index].float()
        swap = chosen * std + mean if standardized else chosen
    return index, swap


def _float32_scores(queries: torch.Tensor, flat_atoms: torch.Tensor) -> torch.Tensor:
    """queries (B, D) float32 against atoms (K, D) -> (B, K) float32 inner products. Atoms stored
    in bfloat16 / float16 are widened ``_WIDEN_ATOMS`` rows at a time (never the whole dictionary)."""
    if flat_atoms.dtype == torch.float32:
        return queries @ flat_atoms.T
    return torch.cat([queries @ flat_atoms[start:start + _WIDEN_ATOMS].float().T
                      for start in range(0, flat_atoms.shape[0], _WIDEN_ATOMS)], dim=1)


def _exact_scores(atoms: torch.Tensor, crops: torch.Tensor, standardized: bool) -> torch.Tensor:
    """Released scores in float64, <crop, CAdaIN(atom)>: atoms (B, T, C, s, s), crops (B, C, s, s) -> (B, T)."""
    atoms, crops = atoms.double(), crops.double()[:, None]
    if standardized:
        mean, std = channel_stats(crops[:, 0])
        atoms = atoms * std[:, None] + mean[:, None]
    return (atoms * crops).flatten(2).sum(2)


def scale_boxes(boxes: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
    """Integer boxes (..., 4) [x1, y1, x2, y2] in image pixels -> feature pixels.

    floor(box / stride) as released; clamped to the map (the released code crashed on boxes
    that reached past the image; inside the image clamping changes nothing).
    """
    scaled = torch.div(boxes, stride, rounding_mode='floor')
    limits = torch.tensor([width, height, width, height], device=boxes.device)
    return torch.minimum(scaled.clamp_min(0), limits)


def transfer_slice(feature, boxes, atom_sets, attn_blocks, stride, standardized=True, use_confidence=True):
    """Released DFT at one level with integer crops, as tensor operations.

    feature: (B, C, H, W); boxes: (B, P, 4) int image-pixel boxes, P parts in paste order;
    atom_sets: list of P (K, C, s, s) tensors; attn_blocks: list of P confidence modules.
    Returns the updated copy of ``feature``. Each crop ``feature[b, :, y1:y2, x1:x2]`` is
    gathered into a window as large as the batch's largest box of that part (crop at the top
    left, zeros elsewhere, which the confidence convolutions see as the crop's zero padding);
    later parts overwrite earlier ones, and a box empty at this stride changes nothing.
    """
    bsz, channels, height, width = feature.shape
    fboxes = scale_boxes(boxes, stride, height, width)
    flat = feature.permute(0, 2, 3, 1).reshape(-1, channels)  # (B*H*W, C): a view of a channels-last map
    batch = torch.arange(bsz, device=feature.device)[:, None, None]
    rows = torch.arange(height, device=feature.device)[None, :, None]
    cols = torch.arange(width, device=feature.device)[None, None, :]
    source = (batch * height + rows) * width + cols  # (B, H, W): the row of torch.cat(blocks) each position takes
    blocks = [flat]
    for p, (atoms, attn) in enumerate(zip(atom_sets, attn_blocks)):
        x1, y1, x2, y2 = fboxes[:, p, :, None, None].unbind(1)  # each (B, 1, 1)
        crops = resize_crops(flat, (height, width), fboxes[:, p], tuple(atoms.shape[-2:]))
        _, swaps = match_atoms(atoms, crops, standardized)
        (win_rows, in_rows, steps_y), (win_cols, in_cols, steps_x) = _window(y1, y2, height), _window(x1, x2, width)
        inside = (in_rows[:, :, None] & in_cols[:, None, :])[:, None].to(feature.dtype)
        window = _gather(flat, _flat_index(win_rows, win_cols, height, width)) * inside  # (B, C, h, w)
        size = atoms.shape[-1]
        swap = _gather(swaps.to(feature.dtype).permute(0, 2, 3, 1).reshape(-1, channels),
                       _flat_index(_nearest(steps_y, y2 - y1, size), _nearest(steps_x, x2 - x1, size), size, size))
        delta = _masked(attn, swap - window, inside) * swap if use_confidence else swap
        part = (delta + window).to(feature.dtype).permute(0, 2, 3, 1)  # (B, h, w, C)
        i, j = rows - y1, cols - x1
        covered = (i >= 0) & (i < y2 - y1) & (j >= 0) & (j < x2 - x1)
        place = (batch * part.shape[1] + i.clamp(0, part.shape[1] - 1)) * part.shape[2] + j.clamp(0, part.shape[2] - 1)
        source = torch.where(covered, place + sum(block.shape[0] for block in blocks), source)
        blocks.append(part.reshape(-1, channels))
    out = torch.cat(blocks).index_select(0, source.flatten())
    return out.view(bsz, height, width, channels).permute(0, 3, 1, 2)


def resize_crops(flat: torch.Tensor, map_size, boxes: torch.Tensor, size) -> torch.Tensor:
    """``F.interpolate(crop, size, mode='bilinear', align_corners=False)`` of one integer box per
    image, with PyTorch's source indices and weights, as gathers.

    flat: (B*H*W, C) rows of the channels-last (H, W) = ``map_size`` maps; boxes (B, 4) int
    ``[x1, y1, x2, y2]`` in map pixels -> (B, C, s, s) float32 (an empty box gives an unused value).
    """
    height, width = map_size
    x1, y1, x2, y2 = boxes.unbind(1)
    r0, r1, h0, h1 = _linear_axis(y1, y2 - y1, size[0])
    c0, c1, w0, w1 = _linear_axis(x1, x2 - x1, size[1])
    h0, h1, w0, w1 = h0[:, None, :, None], h1[:, None, :, None], w0[:, None, None], w1[:, None, None]

    def corner(rows, cols):
        return _gather(flat, _flat_index(rows, cols, height, width)).float()

    return (corner(r0, c0) * w0 + corner(r0, c1) * w1) * h0 + (corner(r1, c0) * w0 + corner(r1, c1) * w1) * h1


def _linear_axis(start, length, out: int):
    """Bilinear source indices (B, out) and weights along one axis of crops [start, start + length)."""
    length = length.clamp_min(1)[:, None]
    scale = length.float() / out
    src = (scale * (torch.arange(out, device=start.device, dtype=torch.float32) + 0.5) - 0.5).clamp_min(0)
    i0 = torch.minimum(src.floor().long(), length - 1)
    lam = (src - i0.float()).clamp(0, 1)
    return start[:, None] + i0, start[:, None] + i0 + (i0 < length - 1).long(), 1 - lam, lam


def _nearest(steps, length, size: int):
    """Nearest source index (B, M) of window positions ``steps`` (M,), crops of ``length`` (B, 1, 1) from ``size``."""
    scale = size / length.flatten().clamp_min(1).float()
    return (steps.float() * scale[:, None]).floor().long().clamp(max=size - 1)


def _window(start, stop, size: int):
    """One axis of the crops' windows, start/stop (B, 1, 1): (B, M) map indices (clamped), (B, M)
    inside the crop, and the (M,) steps; M = the longest crop of the batch (at least 1)."""
    start, length = start.flatten(), (stop - start).flatten()
    steps = torch.arange(length.max().clamp_min(1), device=start.device)
    return (start[:, None] + steps).clamp(max=size - 1), steps < length[:, None], steps


def _flat_index(rows, cols, height: int, width: int):
    """Row indices (B, m) and column indices (B, n) -> (B, m, n) indices into (B*H*W) rows."""
    batch = torch.arange(rows.shape[0], device=rows.device)[:, None, None]
    return (batch * height + rows[:, :, None]) * width + cols[:, None, :]


def _gather(flat, index):
    """Rows ``index`` (B, m, n) of flat (N, C) -> (B, C, m, n), channels-last in memory."""
    return flat.index_select(0, index.flatten()).view(*index.shape, flat.shape[1]).permute(0, 3, 1, 2)


def _masked(block, x, mask):
    """A Sequential ``block`` on windows, zeroed outside ``mask`` before every layer (the zero
    padding a convolution of the crop alone sees)."""
    for layer in block:
        x = layer(x * mask)
    return x


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
    """Bilinearly place patches (B, C, s, s) into real-valued boxes (B, 4) of an (H, W) map; also the
    mask (B, 1, H, W) of the pixels whose centre lies in the closed box.

    The sampling grid is ``F.affine_grid``'s for the box, written out so that it exports. The mask
    compares the centres with the box edges directly: a centre exactly on an edge (common with
    integer boxes divided by the stride) is inside in every runtime, not wherever rounding puts it.
    """
    x1, y1, x2, y2 = boxes[:, :, None, None].unbind(1)  # each (B, 1, 1)
    bw, bh = (x2 - x1).clamp_min(1e-3), (y2 - y1).clamp_min(1e-3)
    kw = dict(dtype=patches.dtype, device=patches.device)
    base_x = torch.linspace(-1, 1, width, **kw) * ((width - 1) / width)  # affine_grid's base, align_corners=False
    base_y = torch.linspace(-1, 1, height, **kw)[:, None] * ((height - 1) / height)
    grid_x = base_x * (width / bw) + ((width - 2 * x1) / bw - 1)
    grid_y = base_y * (height / bh) + ((height - 2 * y1) / bh - 1)
    grid = torch.stack(torch.broadcast_tensors(grid_x, grid_y), dim=-1)  # (B, H, W, 2)
    pasted = F.grid_sample(patches, grid, mode='bilinear', padding_mode='border', align_corners=False)
    centre_x = torch.arange(width, **kw) + 0.5
    centre_y = torch.arange(height, **kw)[:, None] + 0.5
    mask = (centre_x >= x1) & (centre_x <= x2) & (centre_y >= y1) & (centre_y <= y2)
    return pasted, mask[:, None]
