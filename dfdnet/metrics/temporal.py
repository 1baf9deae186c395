"""Frame-to-frame change of a video inside a region: how much restored faces flicker."""
from __future__ import annotations

import numpy as np


def temporal_change(frames, region=None) -> float:
    """Mean absolute difference (0-255 units) between consecutive (H, W, 3) frames, over the
    pixels where ``region`` ((H, W) bool) is set (default: everywhere); needs two frames or more."""
    previous, total, count = None, 0.0, 0
    for frame in frames:
        frame = np.asarray(frame, dtype=np.float32)
        if previous is not None:
            difference = np.abs(frame - previous).mean(axis=2)
            values = difference[region] if region is not None else difference
            total += float(values.sum())
            count += values.size
        previous = frame
    if count == 0:
        raise ValueError('temporal_change needs at least two frames and a non-empty region')
    return total / count
