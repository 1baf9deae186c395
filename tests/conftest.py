"""Shared fixtures: paths to ../shared/data and small random-weight models in the released layout."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get('DFDNET_SHARED_DATA', ROOT.parent / 'shared' / 'data'))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """../shared/data, or skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'shared test data not found at {SHARED_DATA} (set DFDNET_SHARED_DATA)')
    return SHARED_DATA


def write_random_dictionaries(folder: Path, num_atoms: int = 4, seed: int = 0, config=None) -> Path:
    """Write a released-layout dictionary folder (16 .npy, float32, (K, C, s, s)) of random atoms."""
    from dfdnet.archs.dfdnet_arch import GeneratorConfig
    from dfdnet.archs.dictionary import dictionary_file_name

    config = config or GeneratorConfig()
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for (part, fsize), (channels, size) in config.dictionary_layout().items():
        atoms = rng.standard_normal((num_atoms, channels, size, size)).astype(np.float32)
        np.save(folder / dictionary_file_name(part, fsize), atoms)
    return folder


def write_random_generator(path: Path, seed: int = 0, config=None) -> Path:
    """Write a generator checkpoint in this project's format with seeded random weights."""
    from dfdnet.archs.checkpoint import save_generator
    from dfdnet.archs.dfdnet_arch import DFDNetGenerator

    torch.manual_seed(seed)
    save_generator(DFDNetGenerator(config), path)
    return path


@pytest.fixture(scope='session')
def random_model_files(tmp_path_factory):
    """(checkpoint path, dictionary folder) of a random-weight model with K = 4 atoms."""
    root = tmp_path_factory.mktemp('random_model')
    return write_random_generator(root / 'net_G.pth'), write_random_dictionaries(root / 'dicts')
