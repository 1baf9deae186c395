"""The cache of prepared dictionary atoms: hit, miss, stale and damaged entries, an unwritable
folder, bad values, reduced-precision atoms, and the mapped atoms' resident pages."""
import gc
import json
import logging

import numpy as np
import pytest
import torch

from conftest import mapped_rss, real_aligned_faces, write_random_dictionaries
from dfdnet import DictionaryError, GeneratorConfig, load_dictionaries
from dfdnet.archs import atom_cache
from dfdnet.archs.dictionary import dictionary_file_name
from dfdnet.utils.cache import cache_folder, cache_root

CONFIG = GeneratorConfig(width=8)
LAYOUT = CONFIG.dictionary_layout()
KEY = ('mouth', 256)


def _load(folder, cache, **kwargs):
    return load_dictionaries(folder, LAYOUT, cache_dir=cache, **kwargs)


def _entries(cache):
    return sorted(p for p in cache.iterdir() if (p / 'manifest.json').is_file()) if cache.is_dir() else []


def _same_atoms(a, b) -> bool:
    return all(torch.equal(a.atoms(*key), b.atoms(*key)) for key in LAYOUT)


@pytest.fixture
def folder(tmp_path):
    return write_random_dictionaries(tmp_path / 'dicts', num_atoms=4, seed=3, config=CONFIG)


def test_cache_folder_is_one_rule_for_every_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('DFDNET_CACHE', str(tmp_path / 'c'))
    assert cache_folder('atoms') == tmp_path / 'c' / 'atoms' and cache_folder('atoms', tmp_path / 'o') == tmp_path / 'o'
    monkeypatch.delenv('DFDNET_CACHE')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'x'))
    assert cache_root() == tmp_path / 'x' / 'dfdnet'


def test_miss_writes_an_entry_and_a_hit_maps_it_unchanged(folder, tmp_path, monkeypatch, caplog):
    cache = tmp_path / 'cache'
    memory = _load(folder, cache, use_cache=False)
    with caplog.at_level(logging.INFO, logger='dfdnet.archs.dictionary'):
        first = _load(folder, cache)
    assert 'missing' in caplog.text and len(_entries(cache)) == 1
    assert _same_atoms(first, memory)  # float32: bit-identical to preparing them in memory
    del first
    gc.collect()  # unmapped

    def no_write(*args, **kwargs):
        raise AssertionError('a valid entry was written again')
    monkeypatch.setattr(atom_cache, 'write_entry', no_write)
    second = _load(folder, cache)
    data = _entries(cache)[0] / f'{KEY[0]}_{KEY[1]}.npy'
    assert mapped_rss(data) == 0  # mapped, its pages dropped after the CRC check: nothing copied or held
    assert _same_atoms(second, memory)
    assert mapped_rss(data) > 0
    second.release_pages(*KEY)
    assert mapped_rss(data) == 0
    assert torch.equal(second.atoms(*KEY), memory.atoms(*KEY))  # mapped again from the page cache


def test_changed_source_file_makes_the_entry_stale(folder, tmp_path):
    cache = tmp_path / 'cache'
    original = _load(folder, cache).atoms(*KEY).clone()
    path = folder / dictionary_file_name(*KEY)
    np.save(path, np.load(path)[::-1].copy())  # same size, new content and mtime
    reloaded = _load(folder, cache)
    assert len(_entries(cache)) == 1  # replaced, not added
    assert torch.equal(reloaded.atoms(*KEY), original.flip(0))


@pytest.mark.parametrize('damage', ['byte', 'manifest', 'missing file'])
def test_damaged_entry_is_rebuilt_with_a_warning_never_used(folder, tmp_path, caplog, damage):
    cache = tmp_path / 'cache'
    memory = _load(folder, cache, use_cache=False)
    _load(folder, cache)
    entry = _entries(cache)[0]
    data = entry / f'{KEY[0]}_{KEY[1]}.npy'
    if damage == 'byte':  # one byte of the atoms' data: only the CRC sees it
        raw = bytearray(data.read_bytes())
        raw[-5] ^= 0x40
        data.write_bytes(bytes(raw))
    elif damage == 'manifest':
        (entry / 'manifest.json').write_text('{"entries": ')
    else:
        data.unlink()
    with caplog.at_level(logging.WARNING, logger='dfdnet.archs.dictionary'):
        rebuilt = _load(folder, cache)
    assert 'damaged' in caplog.text and str(entry) in caplog.text
    assert _same_atoms(rebuilt, memory)
    assert atom_cache.read_entry(entry, *_entry_key(folder, entry))[0] is not None  # the entry is valid again


def _entry_key(folder, entry):
    manifest = json.loads((entry / 'manifest.json').read_text())
    settings = {k: manifest[k] for k in ('format_version', 'source', 'dtype', 'standardized', 'eps', 'torch')}
    expected = {name: info['shape'][1] for name, info in manifest['entries'].items()}
    files = [folder / dictionary_file_name(*key) for key in LAYOUT]
    return settings, atom_cache.source_fingerprints(files), expected


def test_unwritable_cache_folder_falls_back_to_memory_with_a_warning(folder, tmp_path, caplog):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')  # a folder cannot be made under a file, whoever runs the test (root included)
    with caplog.at_level(logging.WARNING, logger='dfdnet.archs.dictionary'):
        bank = _load(folder, blocker / 'atoms')
    assert 'cannot write the dictionary cache' in caplog.text and 'DFDNET_CACHE' in caplog.text
    assert _same_atoms(bank, _load(folder, None, use_cache=False))


@pytest.mark.parametrize('value', [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize('use_cache', [True, False])
def test_non_finite_atom_names_the_file_and_leaves_no_entry(folder, tmp_path, value, use_cache):
    path = folder / dictionary_file_name('nose', 128)
    atoms = np.load(path)
    atoms[1, 2, 0, 1] = value
    np.save(path, atoms)
    cache = tmp_path / 'cache'
    with pytest.raises(DictionaryError, match='NaN or infinite') as error:
        _load(folder, cache, use_cache=use_cache)
    assert str(path) in str(error.value)
    assert not cache.exists() or not any(cache.iterdir())  # no entry, no temporary folder left


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_reduced_precision_atoms_are_the_float32_ones_rounded(folder, tmp_path, dtype):
    full = _load(folder, tmp_path / 'cache')
    reduced = _load(folder, tmp_path / 'cache', dtype=dtype)
    assert reduced.dtype == dtype and len(_entries(tmp_path / 'cache')) == 2
    assert torch.equal(reduced.atoms(*KEY), full.atoms(*KEY).to(dtype))
    assert torch.equal(_load(folder, tmp_path / 'cache', dtype=dtype).atoms(*KEY), reduced.atoms(*KEY))
    with pytest.raises(ValueError, match='dtype'):
        _load(folder, tmp_path / 'cache', dtype=torch.float64)


def test_bf16_atoms_match_the_same_atom_on_real_faces(shared_data, monkeypatch):
    """The shipped model on 8 real aligned faces (TestData/RealVgg with their released landmarks):
    matching each part's crop against bfloat16 atoms picks the atom float32 atoms pick for at least
    99 % of the (face, part, level) crops (measured: docs/benchmarks.md)."""
    from dfdnet import load_generator
    from dfdnet.archs import dft
    from dfdnet.pipeline.photo import shipped_model_dir

    images, boxes = real_aligned_faces(shared_data, 8)
    assert images.shape == (8, 3, 512, 512)
    model = load_generator(shipped_model_dir() / 'net_g.pth', shipped_model_dir() / 'dictionaries')
    matches = []
    match_atoms = dft.match_atoms

    def recording(atoms, crops, standardized=True):
        index, swap = match_atoms(atoms, crops, standardized)
        matches.append((index, match_atoms(atoms.bfloat16(), crops, standardized)[0]))
        return index, swap
    monkeypatch.setattr(dft, 'match_atoms', recording)
    with torch.inference_mode():
        model(images, boxes)
    full, reduced = (torch.cat(side) for side in zip(*matches))
    assert len(full) == 8 * 4 * 4
    assert (full == reduced).float().mean() >= 0.99


def test_atomic_directory_replaces_a_folder_whole_and_clears_a_killed_writers_leftovers(tmp_path):
    import os

    from dfdnet.utils.files import atomic_directory

    target = tmp_path / 'entry'
    stale, live = tmp_path / '.entry.abcdefgh.tmp', tmp_path / '.entry.ijklmnop.tmp'
    stale.mkdir()
    live.mkdir()
    os.utime(stale, (0, 0))  # as old as a killed writer's; ``live`` could be another writer's, now
    with atomic_directory(target) as tmp:
        (tmp / 'a').write_text('1')
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / 'a').write_text('half')
            raise RuntimeError('killed')
    assert (target / 'a').read_text() == '1'  # a failed writer leaves the old folder as it was
    with atomic_directory(target) as tmp:
        (tmp / 'b').write_text('2')
    assert sorted(p.name for p in target.iterdir()) == ['b']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.entry.ijklmnop.tmp', 'entry']
