"""Dictionary files: released .npy layout (4-D or flat), BasicSR .pth, and their errors."""
import numpy as np
import pytest
import torch

from conftest import write_random_dictionaries
from dfdnet import DictionaryError, GeneratorConfig, load_dictionaries
from dfdnet.archs.dfdnet_arch import DFDNetGenerator
from dfdnet.archs.dictionary import dictionary_file_name

LAYOUT = GeneratorConfig().dictionary_layout()


def test_layout_matches_reference():
    sizes = {k: v for k, v in LAYOUT.items()}
    assert len(sizes) == 16
    assert sizes[('left_eye', 256)] == (128, 40) and sizes[('mouth', 256)] == (128, 55)
    assert sizes[('nose', 128)] == (256, 12) and sizes[('mouth', 128)] == (256, 27)
    assert sizes[('right_eye', 64)] == (512, 10) and sizes[('mouth', 64)] == (512, 13)
    assert sizes[('nose', 32)] == (512, 3) and sizes[('mouth', 32)] == (512, 6) and sizes[('left_eye', 32)] == (512, 5)


def test_flat_and_4d_files_load_the_same(tmp_path):
    folder = write_random_dictionaries(tmp_path / 'a', num_atoms=3, seed=5)
    flat = tmp_path / 'b'
    flat.mkdir()
    for (part, fsize), _ in LAYOUT.items():
        atoms = np.load(folder / dictionary_file_name(part, fsize))
        np.save(flat / dictionary_file_name(part, fsize), atoms.reshape(atoms.shape[0], -1))
    a = load_dictionaries(folder, LAYOUT, standardized=False)
    b = load_dictionaries(flat, LAYOUT, standardized=False)
    assert a.num_atoms == 3
    for key in LAYOUT:
        assert torch.equal(a.atoms(*key), b.atoms(*key))
        assert torch.equal(a.atoms(*key), torch.from_numpy(np.load(folder / dictionary_file_name(*key))))


def test_standardized_atoms(tmp_path):
    folder = write_random_dictionaries(tmp_path / 'a', num_atoms=2, seed=1)
    bank = load_dictionaries(folder, LAYOUT)
    raw = torch.from_numpy(np.load(folder / dictionary_file_name('nose', 64))).double()
    mean = raw.flatten(2).mean(2)[..., None, None]
    std = (raw.flatten(2).var(2) + 1e-5).sqrt()[..., None, None]
    torch.testing.assert_close(bank.atoms('nose', 64).double(), (raw - mean) / std, rtol=0, atol=1e-6)


def test_basicsr_pth(tmp_path):
    folder = write_random_dictionaries(tmp_path / 'a', num_atoms=2, seed=2)
    data = {}
    for (part, fsize), _ in LAYOUT.items():
        data.setdefault(str(fsize), {})[part] = torch.from_numpy(np.load(folder / dictionary_file_name(part, fsize)))
    torch.save(data, tmp_path / 'DFDNet_dict_512-f79685f0.pth')
    a = load_dictionaries(tmp_path / 'DFDNet_dict_512-f79685f0.pth', LAYOUT)
    b = load_dictionaries(folder, LAYOUT)
    assert all(torch.equal(a.atoms(*k), b.atoms(*k)) for k in LAYOUT)


def _error(folder, match):
    with pytest.raises(DictionaryError, match=match) as info:
        load_dictionaries(folder, LAYOUT)
    return str(info.value)


def test_missing_folder_and_file(tmp_path):
    assert str(tmp_path / 'nowhere') in _error(tmp_path / 'nowhere', 'does not exist')
    folder = write_random_dictionaries(tmp_path / 'a', num_atoms=2)
    (folder / 'mouth_32_center.npy').unlink()
    assert 'mouth_32_center.npy' in _error(folder, 'missing')


def test_wrong_shape_names_file_and_expected(tmp_path):
    folder = write_random_dictionaries(tmp_path / 'a', num_atoms=2)
    np.save(folder / 'nose_128_center.npy', np.zeros((2, 256, 13, 13), np.float32))
    message = _error(folder, r'expected \(K, 256, 12, 12\)')
    assert 'nose_128_center.npy' in message
    np.save(folder / 'nose_128_center.npy', np.zeros((2, 100), np.float32))
    assert 'nose_128_center.npy' in _error(folder, 'not K atoms')


def test_truncated_and_bad_values(tmp_path):
    folder = write_random_dictionaries(tmp_path / 'a', num_atoms=2)
    path = folder / 'left_eye_64_center.npy'
    path.write_bytes(path.read_bytes()[:1000])
    assert str(path) in _error(folder, 'cannot read')
    folder = write_random_dictionaries(tmp_path / 'b', num_atoms=2)
    bad = np.load(folder / 'right_eye_32_center.npy')
    bad[0, 0, 0, 0] = np.nan
    np.save(folder / 'right_eye_32_center.npy', bad)
    assert 'right_eye_32_center.npy' in _error(folder, 'NaN')
    np.save(folder / 'right_eye_32_center.npy', np.zeros((2, 512, 5, 5), np.int32))
    _error(folder, 'dtype')


def test_different_k_is_an_error(tmp_path):
    folder = write_random_dictionaries(tmp_path / 'a', num_atoms=2)
    np.save(folder / 'mouth_256_center.npy', np.zeros((3, 128, 55, 55), np.float32))
    _error(folder, 'different numbers of atoms')


def test_dictionaries_live_on_the_model_and_are_not_saved(tmp_path):
    bank = load_dictionaries(write_random_dictionaries(tmp_path / 'a', num_atoms=2), LAYOUT)
    model = DFDNetGenerator(GeneratorConfig(), bank)
    pointers = {b.data_ptr() for b in model.buffers()}
    atoms = bank.atoms('mouth', 32)
    assert atoms.shape == (2, 512, 6, 6) and atoms.data_ptr() in pointers
    assert not any(k.startswith('dictionaries') for k in model.state_dict())
    # moving the model (also to channels-last) neither copies nor re-lays out the atoms
    model.to('cpu', memory_format=torch.channels_last)
    assert bank.atoms('mouth', 32).data_ptr() == atoms.data_ptr() and bank.atoms('mouth', 32).is_contiguous()


def test_generator_refuses_to_run_without_dictionaries():
    model = DFDNetGenerator(GeneratorConfig())
    with pytest.raises(RuntimeError, match='no dictionaries'):
        model(torch.zeros(1, 3, 512, 512), np.zeros((1, 4, 4), np.int64))


def test_layout_mismatch_is_rejected(tmp_path):
    bank = load_dictionaries(write_random_dictionaries(tmp_path / 'a', num_atoms=2), LAYOUT)
    with pytest.raises(ValueError, match='layout'):
        DFDNetGenerator(GeneratorConfig(part_sizes=(80, 80, 60, 110)), bank)
