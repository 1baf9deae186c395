"""--color_fix: the restored face's low-frequency colour matched to its input crop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dfdnet.face.color import adain_color_fix, color_fix, wavelet_color_fix


def _face_and_cast(size=128):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    smooth = np.stack([120 + 60 * xx, 100 + 50 * yy, 90 + 40 * xx * yy], -1)
    detail = rng.normal(0, 6, (size, size, 1))
    reference = np.clip(smooth + detail, 0, 255).astype(np.uint8)
    cast = np.clip(smooth * [1.1, 0.95, 0.85] + [10, 0, -5] + detail * 1.5, 0, 255).astype(np.uint8)
    return reference, cast


def test_adain_matches_channel_statistics():
    reference, restored = _face_and_cast()
    fixed = adain_color_fix(restored, reference)
    assert np.allclose(fixed.mean((0, 1)), reference.mean((0, 1)), atol=0.6)
    assert np.allclose(fixed.std((0, 1)), reference.std((0, 1)), atol=0.6)


def test_wavelet_takes_the_input_colour_and_keeps_the_restored_detail():
    reference, restored = _face_and_cast()
    fixed = wavelet_color_fix(restored, reference).astype(np.float64)
    before = np.abs(restored.astype(np.float64).mean((0, 1)) - reference.mean((0, 1))).max()
    after = np.abs(fixed.mean((0, 1)) - reference.mean((0, 1))).max()
    assert before > 8 and after < 1.5
    detail = restored[1:, :, 0].astype(np.float64) - restored[:-1, :, 0]
    kept = fixed[1:, :, 0] - fixed[:-1, :, 0]
    assert np.corrcoef(detail.ravel(), kept.ravel())[0, 1] > 0.9  # the restored texture, not the input's


def test_color_fix_dispatch_and_the_restorer_applies_it():
    from dfdnet.pipeline.restorer import CropRestorer

    reference, restored = _face_and_cast(64)
    assert color_fix(restored, reference, 'none') is restored
    with pytest.raises(ValueError, match='one of'):
        color_fix(restored, reference, 'histogram')
    with pytest.raises(ValueError, match='one shape'):
        color_fix(restored, reference[:32], 'adain')

    def tinted(images, boxes):  # a "generator" that adds a colour cast
        return (images + torch.tensor([0.2, 0.0, -0.2]).view(1, 3, 1, 1)).clamp(-1, 1)

    boxes = [np.zeros((4, 4), np.int64)]
    plain = CropRestorer(tinted).restore([reference], boxes)[0]
    fixed = CropRestorer(tinted, color_fix='wavelet').restore([reference], boxes)[0]
    assert np.abs(plain.mean((0, 1)) - reference.mean((0, 1))).max() > 20
    assert np.abs(fixed.astype(float).mean((0, 1)) - reference.mean((0, 1))).max() < 1.5
    with pytest.raises(ValueError, match='color_fix'):
        CropRestorer(tinted, color_fix='lab')
