"""Optional learned metric: LPIPS (``lpips`` package).

It needs pretrained weights that this project never downloads. They are used only when the
package is installed AND its backbone weights are already in the torch hub cache
(``torch.hub.get_dir()/checkpoints``); otherwise ``MetricUnavailable`` says what is missing and the
evaluation goes on without them.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from dfdnet.utils.pixels import to_float01, to_network

logger = logging.getLogger(__name__)


class MetricUnavailable(RuntimeError):
    """A learned metric cannot run here (package or weights missing); the message says which."""


def _hub_checkpoint(file_name: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / 'checkpoints' / file_name


def _lpips_backbone_file(net: str) -> str:
    """File name torchvision caches the ImageNet weights of LPIPS's backbone under."""
    from torchvision import models

    weights = {'alex': models.AlexNet_Weights.IMAGENET1K_V1, 'vgg': models.VGG16_Weights.IMAGENET1K_V1,
               'squeeze': models.SqueezeNet1_1_Weights.IMAGENET1K_V1}
    if net not in weights:
        raise ValueError(f'LPIPS backbone must be one of {sorted(weights)}, got {net!r}')
    return weights[net].url.rsplit('/', 1)[-1]


class LpipsMetric:
    """LPIPS distance (Zhang et al. 2018) of two (H, W, 3) RGB images, uint8 or float in [0, 1]; lower is better."""

    def __init__(self, net: str = 'alex', device: str = 'cpu'):
        """device: any ``--device`` value (``dfdnet.utils.device.select_device``)."""
        if importlib.util.find_spec('lpips') is None:
            raise MetricUnavailable('LPIPS skipped: the `lpips` package is not installed '
                                    '(pip install lpips; its backbone weights must also be present locally)')
        backbone = _hub_checkpoint(_lpips_backbone_file(net))
        if not backbone.is_file():
            raise MetricUnavailable(f'LPIPS skipped: the {net} backbone weights are not in the torch hub cache '
                                    f'({backbone}); they are not downloaded by this project')
        import lpips
        import torch

        from dfdnet.utils.device import select_device

        self.device = torch.device(select_device(device))
        self.model = lpips.LPIPS(net=net, verbose=False).eval().to(self.device)

    def __call__(self, img1, img2) -> float:
        import torch

        def to_tensor(img):
            img = np.asarray(img)
            return to_network((to_float01(img) if img.dtype == np.uint8 else img)[None], self.device)

        with torch.no_grad():
            return float(self.model(to_tensor(img1), to_tensor(img2)).item())

