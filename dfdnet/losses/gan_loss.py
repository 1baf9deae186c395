"""Hinge adversarial losses for multi-scale discriminators (paper Eq. 8-9)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator loss: sum over scales of E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    if len(real_logits) != len(fake_logits):
        raise ValueError(f'got {len(real_logits)} real and {len(fake_logits)} fake discriminator outputs')
    total = real_logits[0].new_zeros(())
    for real, fake in zip(real_logits, fake_logits):
        total = total + F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return total


def hinge_g_loss(fake_logits: list[torch.Tensor], weights) -> torch.Tensor:
    """Generator loss: - sum_r λ_a,r · E[D_r(fake)]; ``weights`` has one λ_a per scale (4, 2, 1, 1)."""
    weights = list(weights)
    if len(weights) != len(fake_logits):
        raise ValueError(f'{len(weights)} adversarial weights for {len(fake_logits)} discriminator scales')
    total = fake_logits[0].new_zeros(())
    for weight, fake in zip(weights, fake_logits):
        total = total - float(weight) * fake.mean()
    return total


def feature_matching_loss(fake_features: list, real_features: list) -> torch.Tensor:
    """pix2pixHD feature matching: the mean over discriminators of the mean L1 distance between
    their activations on the output and on the ground truth (the latter treated as constants).

    Both arguments: one list of activations (tensors) per discriminator, in the same order.
    """
    if len(fake_features) != len(real_features) or not fake_features:
        raise ValueError(f'got {len(fake_features)} fake and {len(real_features)} real feature lists')
    total = fake_features[0][0].new_zeros((), dtype=torch.float32)
    for fakes, reals in zip(fake_features, real_features):
        for fake, real in zip(fakes, reals):
            total = total + F.l1_loss(fake.float(), real.detach().float()) / len(fakes)
    return total / len(fake_features)
