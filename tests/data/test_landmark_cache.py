"""LandmarkCache (one .npz file) and the released <name>.txt landmark files."""
from __future__ import annotations

import numpy as np
import pytest

from dfdnet.data.landmark_cache import (LandmarkCache, load_landmark_folder, read_landmark_txt,
                                        write_landmark_txt)
from dfdnet.face.landmarks import ALIGNED_LANDMARK_PROCEDURE


def random_points(seed):
    return (np.random.default_rng(seed).random((68, 2)) * 512).astype(np.float32)


def test_save_load_roundtrip_keeps_everything(tmp_path):
    cache = LandmarkCache(tmp_path / 'faces', face_size=512)
    cache.add(tmp_path / 'faces' / 'a' / 'x.png', random_points(0), affine=np.eye(2, 3))
    cache.add('grey.png', flag='no_face')
    cache.add('photo.jpg', random_points(1), face_index=1)
    cache.add('photo.jpg', flag='landmark_failed', face_index=0)
    cache.save(tmp_path / 'lm.npz')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lm.npz']  # no temporary left behind
    loaded = LandmarkCache.load(tmp_path / 'lm.npz')
    assert loaded.root == cache.root and loaded.face_size == 512 and len(loaded) == 4
    np.testing.assert_array_equal(loaded.landmarks('a/x.png'), random_points(0))
    assert loaded.landmarks('a/x.png').dtype == np.float32
    np.testing.assert_array_equal(loaded.get('a/x.png').affine, np.eye(2, 3))
    assert loaded.landmarks('grey.png') is None and loaded.get('grey.png').flag == 'no_face'
    assert [(e.face_index, e.flag) for e in loaded.faces_of('photo.jpg')] == [(0, 'landmark_failed'), (1, 'ok')]
    assert 'photo.jpg' in loaded and 'other.jpg' not in loaded
    assert loaded.counts() == {'ok': 2, 'no_face': 1, 'landmark_failed': 1, 'unreadable': 0}


def test_merge_and_resume(tmp_path):
    first = LandmarkCache(tmp_path)
    first.add('a.png', random_points(0))
    first.save(tmp_path / 'lm.npz')
    resumed = LandmarkCache.load_or_new(tmp_path / 'lm.npz', tmp_path, 512, ALIGNED_LANDMARK_PROCEDURE)
    assert resumed.has_image('a.png')
    # landmarks made another way (e.g. on a detector's box) are not resumed as this procedure's
    assert len(LandmarkCache.load_or_new(tmp_path / 'lm.npz', tmp_path, 512, 'dlib68-hog-box')) == 0
    other = LandmarkCache(tmp_path)
    other.add('a.png', random_points(5))
    other.add('b.png', random_points(1))
    assert resumed.merge(other) == 1  # a.png is kept
    np.testing.assert_array_equal(resumed.landmarks('a.png'), random_points(0))
    assert resumed.merge(other, overwrite=True) == 2
    np.testing.assert_array_equal(resumed.landmarks('a.png'), random_points(5))
    with pytest.raises(ValueError, match='face size'):
        resumed.merge(LandmarkCache(tmp_path, face_size=256))


def test_bad_input_is_refused(tmp_path):
    cache = LandmarkCache(tmp_path)
    with pytest.raises(ValueError, match=r'\(68, 2\)'):
        cache.add('a.png', np.zeros((5, 2)))
    with pytest.raises(ValueError, match='needs landmarks'):
        cache.add('a.png')
    with pytest.raises(ValueError, match='not under the landmark cache root'):
        cache.add('/elsewhere/a.png', random_points(0))
    (tmp_path / 'junk.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='junk.npz'):
        LandmarkCache.load(tmp_path / 'junk.npz')


def test_txt_roundtrip_and_released_folder(tmp_path, shared_data):
    write_landmark_txt(tmp_path / 'face.png.txt', random_points(2))
    assert (tmp_path / 'face.png.txt').read_text().splitlines()[0].count(' ') == 1
    np.testing.assert_allclose(read_landmark_txt(tmp_path / 'face.png.txt'), random_points(2), atol=5e-4)
    (tmp_path / 'short.txt').write_text('1 2\n3 4\n')
    with pytest.raises(ValueError, match='short.txt'):
        read_landmark_txt(tmp_path / 'short.txt')
    folder = shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks'
    names = sorted(p.name for p in (shared_data / 'faces_lq' / 'dfdnet_realvgg').iterdir())
    found = load_landmark_folder(folder, names + ['missing.png'])
    assert len(found) == len(names) == 13 and 'missing.png' not in found
    points = found[names[0]]
    assert points.shape == (68, 2) and 0 <= points.min() and points.max() < 512
    with pytest.raises(FileNotFoundError, match='missing.png'):
        load_landmark_folder(folder, ['missing.png'], strict=True)
