"""Run the generator on aligned faces in batches."""
from __future__ import annotations

import logging

import numpy as np
import torch

from dfdnet.archs.fidelity import restore_batch
from dfdnet.face.color import COLOR_FIXES, color_fix
from dfdnet.utils.pixels import from_network, to_network

logger = logging.getLogger(__name__)

NOT_FINITE = "the network's output is not finite (NaN or Inf: broken weights?); the face is not pasted"


def crops_to_tensor(crops, device) -> torch.Tensor:
    """A list of (S, S, 3) uint8 RGB crops -> (B, 3, S, S) float32 in [-1, 1] on ``device`` (``to_network``)."""
    return to_network(np.stack(crops), device)


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or 'out of memory' in str(exc).lower()


class CropRestorer:
    """Restores aligned faces with a DFDNet generator, ``batch_size`` faces per forward.

    generator: a module called as ``generator(images (B, 3, S, S) in [-1, 1], boxes (B, 4, 4))``
    (``load_generator`` returns one in eval mode; with fidelity 'auto' each face gets its own,
    ``dfdnet.archs.fidelity.restore_batch``); device: where it lives; color_fix: 'none',
    'adain' or 'wavelet' (``dfdnet.face.color``: each restored face's colour matched to its input
    crop). On an out-of-memory error the batch is split in halves and retried.
    """

    def __init__(self, generator, device='cpu', batch_size: int = 4, color_fix: str = 'none'):
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if color_fix not in COLOR_FIXES:
            raise ValueError(f'color_fix must be one of {COLOR_FIXES}, got {color_fix!r}')
        self.color_fix = color_fix
        self.generator = generator
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.forward_calls = 0

    def restore(self, crops, boxes) -> list:
        """Restore faces: crops list of (S, S, 3) uint8 RGB, boxes list of (4, 4) int.

        Returns the restored (S, S, 3) uint8 RGB faces in the same order; None in place of a face
        whose output holds NaN or Inf (it would come out black or grey: ``NOT_FINITE``), which the
        caller skips and reports.
        """
        if len(crops) != len(boxes):
            raise ValueError(f'{len(crops)} crops but {len(boxes)} box sets')
        restored = []
        for start in range(0, len(crops), self.batch_size):
            stop = start + self.batch_size
            restored.extend(self._forward(crops[start:stop], boxes[start:stop]))
        return restored

    def _forward(self, crops, boxes) -> list:
        try:
            with torch.inference_mode():
                images = crops_to_tensor(crops, self.device)
                box_tensor = torch.as_tensor(np.stack(boxes), dtype=torch.long, device=self.device)
                output, fidelities = restore_batch(self.generator, images, box_tensor)
                if fidelities is not None:
                    logger.debug('fidelity per face: %s', fidelities)
                self.forward_calls += 1
                finite = torch.isfinite(output).flatten(1).all(dim=1).tolist()
                output = torch.nan_to_num(output) if not all(finite) else output  # those faces are dropped
            return [color_fix(face, crop, self.color_fix) if ok else None
                    for face, crop, ok in zip(from_network(output), crops, finite)]
        except RuntimeError as exc:
            if len(crops) == 1 or not _is_out_of_memory(exc):
                raise
            if self.device.type == 'cuda':
                torch.cuda.empty_cache()
            half = len(crops) // 2
            logger.warning('out of memory with %d faces per forward; retrying with %d', len(crops), half)
            self.batch_size = max(1, half)
            return self._forward(crops[:half], boxes[:half]) + self._forward(crops[half:], boxes[half:])
