"""scripts/data/make_validation_variants.py: each fixed validation degradation does what its name says."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import ROOT
from dfdnet.data.degradation_pipeline import DegradationConfig, DegradationPipeline

DEGRADED = {'gaussian_sigma', 'motion_kernel', 'scale', 'noise_sigma', 'jpeg_quality'}


def _variants() -> dict:
    spec = importlib.util.spec_from_file_location('make_validation_variants',
                                                  ROOT / 'scripts' / 'data' / 'make_validation_variants.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VARIANTS


@pytest.mark.parametrize('name', sorted(_variants()))
def test_each_variant_degrades_as_named(name):
    fields, seed = _variants()[name]
    pipeline = DegradationPipeline(DegradationConfig.from_dict(dict(fields, preset='paper')))
    img = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    for i in range(8):
        sample = pipeline(img, np.random.default_rng((seed, i)))
        params = sample.params
        assert sample.lq.shape == img.shape and params.get('up_interpolation') == 'bicubic', params
        if name.startswith('clean_x2'):
            assert params['clean_scale'] == 2.0 and not DEGRADED & set(params), params
            if name.endswith('area'):
                assert params['down_interpolation'] == 'area'
        elif name.startswith('x4'):
            assert params['scale'] == 4.0 and 'clean_scale' not in params, params
            assert ('jpeg_quality' in params) == name.endswith('jpeg'), params
            assert ('gaussian_sigma' in params) == ('blur' in name) and 'motion_kernel' not in params, params
