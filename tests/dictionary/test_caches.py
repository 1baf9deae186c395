"""Dictionary-building caches are checked before reuse: a truncated or corrupt file is named and
rebuilt (feature store) or refused (landmark cache), never silently used."""
from __future__ import annotations

import json
import logging
import os
import re

import numpy as np
import pytest

from dfdnet.data.landmark_cache import LandmarkCache
from dfdnet.dictionary.feature_store import FeatureStore
from dfdnet.dictionary.kmeans import kmeans
from dfdnet.errors import UnreadableFileError
from dfdnet.utils.files import check_npy, read_json, read_npz

LAYOUT = {('nose', 32): (0, 2, 3), ('mouth', 64): (1, 1, 2)}  # (level, channels, side)
MANIFEST = {'encoder_sha256': 'test'}
SAMPLES = 4


def features_of(sample: int) -> dict:
    rng = np.random.default_rng(sample)
    return {key: (rng.standard_normal((c, s, s)) + 1, True) for key, (_, c, s) in LAYOUT.items()}


def filled_store(folder) -> FeatureStore:
    store = FeatureStore(folder, SAMPLES, 1, LAYOUT, MANIFEST)
    for i in range(SAMPLES):
        store.write(i, 0, features_of(i))
        store.mark_done(i)
    store.commit()
    return store


def truncate(path, keep: int | None = None) -> None:
    os.truncate(path, os.path.getsize(path) // 2 if keep is None else keep)


def test_truncated_feature_file_is_rebuilt_not_zero_filled(tmp_path, caplog):
    folder = tmp_path / 'features'
    row_bytes = 2 * 3 * 3 * 2
    filled_store(folder)
    path = folder / 'nose_32.npy'
    truncate(path, os.path.getsize(path) - row_bytes)  # the last sample's row is gone
    with caplog.at_level(logging.WARNING):
        store = FeatureStore(folder, SAMPLES, 1, LAYOUT, MANIFEST)
    assert re.search(rf'{re.escape(str(path))}: truncated feature cache file: \d+ bytes', caplog.text)
    assert not store.done.any()  # nothing of the damaged store is reused
    for i in range(SAMPLES):
        store.write(i, 0, features_of(i))
        store.mark_done(i)
    store.commit()
    features = np.asarray(store.features(('nose', 32)), dtype=np.float32)
    expected = np.stack([features_of(i)[('nose', 32)][0].reshape(-1) for i in range(SAMPLES)])
    np.testing.assert_allclose(features, expected, rtol=1e-3)
    atoms = kmeans(features, SAMPLES, seed=0).centers.numpy()
    assert np.abs(atoms).max(axis=1).min() > 0  # no all-zero atom


def test_corrupt_row_recomputes_only_its_sample(tmp_path, caplog):
    folder = tmp_path / 'features'
    filled_store(folder)
    path = folder / 'mouth_64.npy'
    data = np.load(path, mmap_mode='r+')
    data[2] = 0  # same size, other content: only the CRC can tell
    data.flush()
    del data
    with caplog.at_level(logging.WARNING):
        store = FeatureStore(folder, SAMPLES, 1, LAYOUT, MANIFEST)
    assert f'{path}: 1 row(s) do not match their CRC' in caplog.text
    assert store.done.tolist() == [True, True, False, True]


@pytest.mark.parametrize('name, problem', [('state.npz', 'truncated or corrupt feature cache state (BadZipFile'),
                                           ('manifest.json', 'truncated or corrupt feature cache manifest (JSON')])
def test_truncated_state_or_manifest_is_named_and_rebuilt(tmp_path, caplog, name, problem):
    folder = tmp_path / 'features'
    filled_store(folder)
    truncate(folder / name)
    with caplog.at_level(logging.WARNING):
        store = FeatureStore(folder, SAMPLES, 1, LAYOUT, MANIFEST)
    assert f'{folder / name}: {problem}' in caplog.text
    assert not store.done.any()
    assert json.loads((folder / 'manifest.json').read_text())['encoder_sha256'] == 'test'


def test_readers_name_the_file_and_the_problem(tmp_path):
    np.savez(tmp_path / 'a.npz', x=np.arange(1000))
    truncate(tmp_path / 'a.npz')
    with pytest.raises(UnreadableFileError, match=re.escape(f'{tmp_path / "a.npz"}: truncated or corrupt thing '
                                                            '(BadZipFile')):
        read_npz(tmp_path / 'a.npz', 'thing')
    (tmp_path / 'a.json').write_text('{"a": [1, 2')
    with pytest.raises(UnreadableFileError, match=re.escape(f'{tmp_path / "a.json"}: truncated or corrupt record '
                                                            '(JSONDecodeError')):
        read_json(tmp_path / 'a.json', 'record')
    np.save(tmp_path / 'a.npy', np.ones((4, 5), np.float32))
    check_npy(tmp_path / 'a.npy', (4, 5), np.float32)
    with pytest.raises(UnreadableFileError, match=re.escape(f'{tmp_path / "a.npy"}: npy file holds (4, 5) float32, '
                                                            'expected (4, 6) float32')):
        check_npy(tmp_path / 'a.npy', (4, 6), np.float32)
    truncate(tmp_path / 'a.npy', os.path.getsize(tmp_path / 'a.npy') - 4)
    with pytest.raises(UnreadableFileError, match=re.escape(f'{tmp_path / "a.npy"}: truncated npy file')):
        check_npy(tmp_path / 'a.npy', (4, 5), np.float32)


def test_truncated_landmark_cache_is_refused_naming_the_file(tmp_path):
    cache = LandmarkCache(tmp_path)
    cache.add('a.png', np.random.default_rng(0).uniform(100, 400, (68, 2)))
    cache.save(tmp_path / 'landmarks.npz')
    truncate(tmp_path / 'landmarks.npz')
    with pytest.raises(ValueError, match=re.escape(f'{tmp_path / "landmarks.npz"}: truncated or corrupt landmark '
                                                   'cache (BadZipFile')) as info:
        LandmarkCache.load(tmp_path / 'landmarks.npz')
    assert str(info.value).endswith('delete it to detect the landmarks again')
