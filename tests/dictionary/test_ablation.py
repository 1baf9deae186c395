"""scripts/data/ablate_dictionaries.py: dictionaries without their detail, loadable by the network."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import ROOT, write_random_dictionaries
from dfdnet.archs.dfdnet_arch import GeneratorConfig
from dfdnet.archs.dictionary import load_dictionaries

SMALL = GeneratorConfig(image_size=256, width=8, part_sizes=(40, 40, 32, 56))


def _script():
    spec = importlib.util.spec_from_file_location('ablate_dictionaries', ROOT / 'scripts' / 'data' / 'ablate_dictionaries.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mean_and_noise_atoms(tmp_path):
    script = _script()
    source = write_random_dictionaries(tmp_path / 'dicts', num_atoms=6, config=SMALL)
    for mode in ('mean', 'noise'):
        assert script.main(['--dict_dir', str(source), '--mode', mode, '--output', str(tmp_path / mode)]) == 0
    name = 'nose_32_center.npy'
    atoms, mean, noise = (np.load(folder / name) for folder in (source, tmp_path / 'mean', tmp_path / 'noise'))
    assert mean.shape == noise.shape == atoms.shape and mean.dtype == noise.dtype == atoms.dtype
    np.testing.assert_allclose(mean, np.broadcast_to(atoms.mean(0, keepdims=True), atoms.shape), atol=1e-6)
    # noise keeps each atom's per-channel statistics (up to sampling), not its pattern
    assert np.abs(noise.std((2, 3)) / atoms.std((2, 3)) - 1).mean() < 0.35
    assert abs(np.corrcoef(noise.ravel(), atoms.ravel())[0, 1]) < 0.1
    load_dictionaries(tmp_path / 'noise', SMALL.dictionary_layout())  # the network can use them
    with pytest.raises(SystemExit):
        script.main(['--dict_dir', str(source), '--mode', 'mean', '--output', str(tmp_path / 'mean')])  # exists
