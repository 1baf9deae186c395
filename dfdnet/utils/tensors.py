"""Small tensor checks shared by the loaders."""
from __future__ import annotations

import torch


def all_finite(tensor: torch.Tensor) -> bool:
    """True when no value of ``tensor`` is NaN or infinite. One min/max pass (NaN propagates to
    both, +Inf to the max, -Inf to the min), much faster than ``torch.isfinite(t).all()``
    (docs/benchmarks.md, issue 34)."""
    if tensor.numel() == 0:
        return True
    low, high = torch.aminmax(tensor)
    return bool(torch.isfinite(low) & torch.isfinite(high))
