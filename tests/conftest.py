"""Shared fixtures: paths to ../shared/data and small random-weight models in the released layout."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dfdnet.archs.random_weights import condition_spectral_norm_  # noqa: F401 (tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get('DFDNET_SHARED_DATA', ROOT.parent / 'shared' / 'data'))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def _glibc():
    try:
        return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    except OSError:  # not glibc: nothing to tune
        return None


_LIBC = _glibc()


@pytest.fixture(autouse=True)
def _release_memory_after_each_test():
    """Give the memory a finished test freed back to the system. glibc keeps freed heap memory
    (it raises its mmap threshold after large frees), so without this the ~1 GB released-width
    state dicts of one test stay resident and the suite's peak grows from test to test (measured
    5.3 GB for test_checkpoint.py alone, at most 3.4 GB for any one of its tests). A full garbage
    collection scans every live object (about a third of a second with torch, dlib and OpenCV
    loaded), so it runs only after a test that grew the process by more than 256 MiB
    or when the process is large; what reference counting freed is trimmed after every test."""
    before = _resident_bytes()
    yield
    after = _resident_bytes()
    if after - before > _COLLECT_GROWTH_BYTES or after > _COLLECT_ABOVE_BYTES:
        gc.collect()
    if _LIBC is not None and hasattr(_LIBC, 'malloc_trim'):
        _LIBC.malloc_trim(0)


@pytest.fixture(autouse=True, scope='session')
def _atom_cache_in_a_temporary_folder(tmp_path_factory):
    """The prepared-dictionary cache (dfdnet.archs.atom_cache) of the whole session goes to a
    temporary folder, not ~/.cache/dfdnet (commands the tests start inherit it)."""
    previous = os.environ.get('DFDNET_CACHE')
    os.environ['DFDNET_CACHE'] = str(tmp_path_factory.mktemp('atom_cache'))
    yield
    if previous is None:
        os.environ.pop('DFDNET_CACHE', None)
    else:
        os.environ['DFDNET_CACHE'] = previous


def mapped_rss(path) -> int:
    """Bytes of ``path``'s memory mappings resident in this process (Linux /proc/self/smaps)."""
    total, inside = 0, False
    with open('/proc/self/smaps') as fh:
        for line in fh:
            if re.match(r'^[0-9a-f]+-[0-9a-f]+ ', line):
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith('Rss:'):
                total += int(line.split()[1]) * 1024
    return total


_COLLECT_GROWTH_BYTES = 256 << 20
_COLLECT_ABOVE_BYTES = 5 << 29  # 2.5 GiB
_PAGE_BYTES = os.sysconf('SC_PAGE_SIZE')


def _resident_bytes() -> int:
    """This process's resident set size (0 where /proc is absent: never collect)."""
    try:
        with open('/proc/self/statm') as fh:
            return int(fh.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def real_aligned_faces(shared_data: Path, count: int, size: int = 512):
    """(images (B, 3, size, size) float32 in [-1, 1], boxes (B, 4, 4) int) of the first ``count`` real
    low-quality aligned faces of ../shared/data/faces_lq/dfdnet_realvgg that have released landmarks,
    each with its own component boxes (faces of another size averaged down as the pipeline does)."""
    from dfdnet.face.alignment import resize_aligned_face
    from dfdnet.face.components import component_boxes
    from dfdnet.utils.image_io import read_rgb
    from dfdnet.utils.pixels import to_network

    faces = shared_data / 'faces_lq' / 'dfdnet_realvgg'
    marks = shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks'
    names = sorted(p.name for p in faces.iterdir() if (marks / f'{p.name}.txt').is_file())[:count]
    images = np.stack([resize_aligned_face(read_rgb(faces / name), size) for name in names])
    boxes = np.stack([component_boxes(np.loadtxt(marks / f'{name}.txt') * size / 512, image_size=size)
                      for name in names])
    return to_network(images).contiguous(), boxes


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
    save_generator(condition_spectral_norm_(DFDNetGenerator(config)), path)
    return path


def make_random_released_model(seed: int = 0, dict_dir=None, confidence_bias: float = 1.0):
    """The released layout (386 keys) with seeded random weights, as ``ReleasedDFDNet``.

    The confidence blocks' output bias is set to ``confidence_bias`` so that A ~ 1 and the chosen
    atoms visibly shape the updated features (random weights otherwise make A ~ 0).
    """
    from dfdnet.archs.released_reference import ReleasedDFDNet

    torch.manual_seed(seed)
    model = condition_spectral_norm_(ReleasedDFDNet(dict_dir)).eval()
    with torch.no_grad():
        for name, module in model.named_children():
            if name[:3] in ('le_', 're_', 'no_', 'mo_'):
                module[2].bias.fill_(confidence_bias)
    return model


# 512-px faces in and out at 1/8 of the released width (a fraction of a second per face instead of
# 10-20 s): for tests of the pipeline around the network, where the width is not the point. No
# residual: the random output must differ clearly from the input face, to be seen pasted back.
SMALL_512 = dict(image_size=512, width=8)


@pytest.fixture(scope='session')
def small_model_files(tmp_path_factory):
    """(checkpoint path, dictionary folder) of a random-weight narrow 512-px model, K = 4."""
    from dfdnet.archs.dfdnet_arch import GeneratorConfig

    config = GeneratorConfig(**SMALL_512)
    root = tmp_path_factory.mktemp('small_model')
    return (write_random_generator(root / 'net_G.pth', config=config),
            write_random_dictionaries(root / 'dicts', config=config))


class IdentityGenerator(torch.nn.Module):
    """Returns its input: lets the pipeline's bookkeeping be tested without real forwards."""

    def forward(self, images, boxes):
        assert images.shape[1:] == (3, 512, 512) and boxes.shape == (images.shape[0], 4, 4)
        return images
