"""Reconstruction loss of the paper (Eq. 7): pixel MSE plus a perceptual MSE on four layers, and an
optional Gram-matrix style loss on the same layers (as GFPGAN's), which rewards texture of the
truth's amount and kind without asking for it at the same pixels."""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn


logger = logging.getLogger(__name__)

PIXEL_LOSSES = ('mse', 'psnr')


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C): channel correlations, normalised by C·H·W."""
    b, c, h, w = features.shape
    flat = features.float().reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_loss(out_feats, target_feats, weights) -> torch.Tensor:
    """Σ_m w_m · L1(Gram(Ψ_m(Î)), Gram(Ψ_m(I))) over the layers with a non-zero weight (the
    target's features are treated as constants)."""
    total = out_feats[0].new_zeros((), dtype=torch.float32)
    for weight, out_f, tgt_f in zip(weights, out_feats, target_feats):
        if weight:
            total = total + float(weight) * F.l1_loss(gram_matrix(out_f), gram_matrix(tgt_f.detach()))
    return total


class ReconstructionLoss(nn.Module):
    """λ_l2 · MSE(Î, I) + Σ_m λ_p,m · ‖Ψ_m(Î) − Ψ_m(I)‖² / (C_m H_m W_m), averaged over the batch.

    Args:
        feature_net: frozen module mapping (B, 3, H, W) in [-1, 1] to a list of feature maps
            (e.g. ``VGGEncoder``: relu2_2, relu3_4, relu4_4, conv5_4); it is not trained and not
            owned (it may be the generator's own encoder).
        pixel_weight: λ_l2 (100 in the paper).
        perceptual_weights: λ_p, one per feature map (0.5, 1, 2, 4 in the paper).
        pixel_loss: 'mse' (the paper) or 'psnr': the batch mean of 10·log10(MSE + floor) per face,
            i.e. minus its PSNR up to a constant, so that every face counts in dB (mean PSNR is
            what evaluation reports). With MSE a clean face's small error barely registers next
            to a degraded face's, and a restorer learns to harm good inputs. The floor
            (``psnr_floor_db``) bounds the weight of faces restored better than it: too high a
            floor (50 dB) lets near-perfect clean faces dominate and the network stops restoring.
        style_weights: one per feature map, for ``style_loss`` (None: none).
    forward(output, target) -> (total, {'l_pix': ..., 'l_percep': ..., 'l_style': ...}) scalar tensors.
    """

    def __init__(self, feature_net: nn.Module, pixel_weight: float = 100.0, perceptual_weights=(0.5, 1.0, 2.0, 4.0),
                 pixel_loss: str = 'mse', psnr_floor_db: float = 40.0, style_weights=None):
        super().__init__()
        self.psnr_floor = 4.0 * 10.0 ** (-float(psnr_floor_db) / 10.0)  # MSE on the [-1, 1] scale
        if pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f'pixel_loss must be one of {PIXEL_LOSSES}, got {pixel_loss!r}')
        self.pixel_loss = pixel_loss
        # Keep the network out of this module's parameters/state dict: it is frozen and shared.
        self._feature_net = [feature_net]
        self.pixel_weight = float(pixel_weight)
        self.perceptual_weights = tuple(float(w) for w in perceptual_weights)
        self.style_weights = tuple(float(w) for w in style_weights or (0.0,) * len(self.perceptual_weights))

    @property
    def feature_net(self) -> nn.Module:
        return self._feature_net[0]

    def forward(self, output: torch.Tensor, target: torch.Tensor):
        if self.pixel_loss == 'mse':
            l_pix = F.mse_loss(output, target) * self.pixel_weight
        else:
            mse = (output.float() - target.float()).pow(2).flatten(1).mean(1)
            l_pix = 10.0 * torch.log10(mse + self.psnr_floor).mean() * self.pixel_weight
        l_percep = output.new_zeros(())
        l_style = output.new_zeros(())
        if any(self.perceptual_weights) or any(self.style_weights):
            out_feats = self.feature_net(output)
            with torch.no_grad():
                target_feats = self.feature_net(target)
            if len(out_feats) != len(self.perceptual_weights) or len(out_feats) != len(self.style_weights):
                raise ValueError(f'{len(self.perceptual_weights)} perceptual and {len(self.style_weights)} style '
                                 f'weights for {len(out_feats)} feature maps')
            for weight, out_f, tgt_f in zip(self.perceptual_weights, out_feats, target_feats):
                # mean over C·H·W and the batch = ‖·‖² / (C H W) averaged over samples
                if weight:
                    l_percep = l_percep + weight * F.mse_loss(out_f.float(), tgt_f.float())
            l_style = style_loss(out_feats, target_feats, self.style_weights)
        return l_pix + l_percep + l_style, {'l_pix': l_pix.detach(), 'l_percep': l_percep.detach(),
                                            'l_style': l_style.detach()}
