"""Degradation presets (Eq. 11 and the released variant) and the motion-kernel generator."""
import dataclasses

import numpy as np
import pytest

from dfdnet.data.degradation_pipeline import PRESETS, SHIPPED_MOTION_KERNELS, DegradationConfig, \
    DegradationPipeline, draw
from dfdnet.data.motion_kernels import generate_motion_kernels, kernel_set_meta, load_kernel_set, \
    random_motion_kernel, save_kernel_set


@pytest.fixture(scope='module')
def face():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 127.0
    img = np.stack([xx, yy, 0.5 * (xx + yy)], axis=2) + 0.05 * rng.standard_normal((128, 128, 3))
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.mark.parametrize('preset', ['paper', 'released'])
def test_pipeline_shapes_ranges_and_seed_determinism(face, preset):
    pipeline = DegradationPipeline(DegradationConfig.from_dict({'preset': preset}))
    a = pipeline(face, np.random.default_rng(7))
    b = pipeline(face, np.random.default_rng(7))
    c = pipeline(face, np.random.default_rng(8))
    for out in (a, c):
        assert out.lq.shape == face.shape and out.gt.shape == face.shape
        assert out.lq.dtype == np.float32 and 0.0 <= out.lq.min() and out.lq.max() <= 1.0
    assert np.array_equal(a.lq, b.lq) and np.array_equal(a.gt, b.gt) and a.params == b.params
    assert not np.array_equal(a.lq, c.lq)
    assert np.abs(a.lq - a.gt).mean() > 0.005  # it really degrades


def test_paper_preset_draws_from_the_grids(face):
    pipeline = DegradationPipeline(PRESETS['paper'])
    seen = {key: set() for key in ('scale', 'noise_sigma', 'jpeg_quality', 'gaussian_sigma', 'motion_kernel')}
    for seed in range(60):
        params = pipeline(face, np.random.default_rng(seed)).params
        for key, value in params.items():
            seen[key].add(value)
    assert all(1.0 < s <= 8.0 and abs(s * 10 - round(s * 10)) < 1e-9 for s in seen['scale'])
    assert all(0 < s <= 15 and float(s).is_integer() for s in seen['noise_sigma'])
    assert all(40 <= q <= 80 for q in seen['jpeg_quality'])
    assert all(1.0 <= s <= 5.0 and abs(s * 10 - round(s * 10)) < 1e-9 for s in seen['gaussian_sigma'])
    assert seen['motion_kernel'] and seen['gaussian_sigma']  # both blur kinds occur
    assert all(0 <= k < 32 for k in seen['motion_kernel'])


def test_stage_probabilities(face):
    off = DegradationConfig(blur_prob=0.0, downsample_prob=0.0, noise_prob=0.0, jpeg_prob=0.0)
    out = DegradationPipeline(off)(face, np.random.default_rng(0))
    assert out.params == {} and np.array_equal(out.lq, face) and np.array_equal(out.gt, face)
    jitter = dataclasses.replace(off, color_jitter_prob=1.0)
    out = DegradationPipeline(jitter)(face, np.random.default_rng(0))
    assert out.params == {'color_jitter': True} and np.array_equal(out.lq, out.gt) and not np.array_equal(out.gt, face)
    noise_only = dataclasses.replace(off, noise_prob=1.0, noise_sigma=(10.0, 10.0))
    out = DegradationPipeline(noise_only)(face, np.random.default_rng(0))
    assert out.params == {'noise_sigma': 10.0}
    assert 8 / 255 < np.std(out.lq - face) < 11 / 255


def test_released_preset_values():
    cfg = PRESETS['released']
    probs = (cfg.blur_prob, cfg.motion_prob, cfg.downsample_prob, cfg.noise_prob, cfg.jpeg_prob)
    assert probs == (0.9, 0.35, 0.95, 0.9, 0.6) and cfg.color_jitter_prob == 1.0
    assert cfg.scale == (2.0, 10.0) and cfg.noise_sigma == (1.0, 10.0) and cfg.gaussian_kernel_size == (3, 35)


def test_config_validation():
    with pytest.raises(ValueError, match="unknown degradation option.*'blur_sigma'"):
        DegradationConfig.from_dict({'blur_sigma': [1, 2]})
    with pytest.raises(ValueError, match='jpeg_prob must be a probability'):
        DegradationConfig(jpeg_prob=1.5)
    with pytest.raises(ValueError, match='scale must be'):
        DegradationConfig(scale=(8.0, 1.0))
    with pytest.raises(ValueError, match='unknown degradation preset'):
        DegradationConfig.from_dict({'preset': 'gfpgan'})
    assert DegradationConfig.from_dict({'preset': 'released', 'jpeg_prob': 0.0}).jpeg_prob == 0.0


def test_draw_grid_and_uniform():
    rng = np.random.default_rng(0)
    values = {draw(rng, (1, 2), 0.5) for _ in range(200)}
    assert values == {1.0, 1.5, 2.0}
    cont = [draw(rng, (0.3, 2.0)) for _ in range(200)]
    assert min(cont) >= 0.3 and max(cont) <= 2.0 and len(set(cont)) == 200


def test_motion_kernels_normalised_non_negative_seeded():
    a = generate_motion_kernels(6, seed=5, sizes=(7, 21))
    b = generate_motion_kernels(6, seed=5, sizes=(7, 21))
    c = generate_motion_kernels(6, seed=6, sizes=(7, 21))
    for k in a:
        assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and 7 <= k.shape[0] <= 21
        assert k.dtype == np.float32 and k.min() >= 0 and abs(float(k.sum()) - 1) < 1e-5
        assert (k > 0).sum() >= k.shape[0]  # a path, not a point
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c))
    with pytest.raises(ValueError, match='odd'):
        random_motion_kernel(np.random.default_rng(0), 8)


def test_kernel_set_round_trip_and_shipped_set(tmp_path):
    kernels = generate_motion_kernels(3, seed=1, sizes=(7, 11))
    save_kernel_set(tmp_path / 'k.npz', kernels, seed=1)
    loaded = load_kernel_set(tmp_path / 'k.npz')
    assert all(np.allclose(x, y) for x, y in zip(kernels, loaded))
    assert kernel_set_meta(tmp_path / 'k.npz') == {'seed': 1}
    shipped = load_kernel_set(SHIPPED_MOTION_KERNELS)
    assert len(shipped) == 32 and SHIPPED_MOTION_KERNELS.stat().st_size < 200_000
    assert kernel_set_meta(SHIPPED_MOTION_KERNELS)['seed'] == 0
    bad = tmp_path / 'bad.npz'
    np.savez(bad, kernel_000=-np.ones((3, 3)))
    with pytest.raises(ValueError, match='bad.npz:kernel_000'):
        load_kernel_set(bad)


def test_authors_kernel_folder(shared_data):
    kernels = load_kernel_set(shared_data / 'degradation' / 'motion_kernels')
    assert len(kernels) == 32 and all(abs(float(k.sum()) - 1) < 1e-5 for k in kernels)
    cfg = DegradationConfig(motion_kernels=str(shared_data / 'degradation' / 'motion_kernels'), motion_prob=1.0)
    assert len(DegradationPipeline(cfg).motion_kernels) == 32


def test_resize_kernels_are_drawn_per_face_only_when_asked():
    from dfdnet.data import degradations as deg

    hq = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    kernels = ['bicubic', 'bilinear', 'area']
    drawn = DegradationPipeline(DegradationConfig.from_dict(
        {'clean_prob': 1.0, 'clean_scale': [2.0, 2.0], 'resize_interpolations': kernels}))
    seen = set()
    for seed in range(30):
        sample = drawn(hq, np.random.default_rng(seed))
        down, up = sample.params['down_interpolation'], sample.params['up_interpolation']
        seen.add((down, up))
        expected = deg.resize(deg.resize(hq, size=(32, 32), interpolation=down), size=(64, 64), interpolation=up)
        assert np.array_equal(sample.lq, expected)
    assert len(seen) >= 6  # down and up are drawn independently
    with pytest.raises(ValueError, match='resize_interpolations'):
        DegradationConfig.from_dict({'resize_interpolations': ['bicubic', 'sinc']})
    # up_interpolation fixes the kernel back to full size (the restore pipeline's); only down is drawn
    down_only = DegradationPipeline(DegradationConfig.from_dict(
        {'clean_prob': 1.0, 'clean_scale': [2.0, 2.0], 'resize_interpolations': kernels,
         'up_interpolation': 'bicubic'}))
    downs = set()
    for seed in range(12):
        sample = down_only(hq, np.random.default_rng(seed))
        down = sample.params['down_interpolation']
        downs.add(down)
        assert sample.params['up_interpolation'] == 'bicubic'
        expected = deg.resize(deg.resize(hq, size=(32, 32), interpolation=down), size=(64, 64), interpolation='bicubic')
        assert np.array_equal(sample.lq, expected)
    assert downs == set(kernels)
    with pytest.raises(ValueError, match='up_interpolation'):
        DegradationConfig.from_dict({'up_interpolation': 'sinc'})
    # Unset, the streams are those of before: the paper preset with bicubic throughout.
    plain = DegradationPipeline(DegradationConfig.from_dict({}))
    assert 'up_interpolation' not in plain(hq, np.random.default_rng(3)).params


def test_clean_part_of_the_degradation_only_resizes():
    from dfdnet.data import degradations as deg

    rng = np.random.default_rng(0)
    hq = rng.random((64, 64, 3), dtype=np.float32)
    identity = DegradationPipeline(DegradationConfig.from_dict({'clean_prob': 1.0, 'clean_scale': [1.0, 1.0]}))
    sample = identity(hq, np.random.default_rng(1))
    assert np.array_equal(sample.lq, hq) and sample.params == {'clean_scale': 1.0}
    mild = DegradationPipeline(DegradationConfig.from_dict({'clean_prob': 1.0, 'clean_scale': [2.0, 2.0]}))
    again = [mild(hq, np.random.default_rng(seed)).lq for seed in (1, 2)]
    assert np.array_equal(again[0], again[1])  # no noise, no JPEG: deterministic
    assert np.array_equal(again[0], deg.resize(deg.resize(hq, size=(32, 32)), size=(64, 64)))
    mixed = DegradationPipeline(DegradationConfig.from_dict({'clean_prob': 0.3}))
    clean = sum('clean_scale' in mixed(hq, np.random.default_rng(seed)).params for seed in range(200))
    assert 40 <= clean <= 80
    with pytest.raises(ValueError, match='clean_prob'):
        DegradationConfig.from_dict({'clean_prob': 1.5})
    # The presets draw nothing for it: their random streams are unchanged.
    plain = DegradationPipeline(DegradationConfig.from_dict({}))
    explicit = DegradationPipeline(DegradationConfig.from_dict({'clean_prob': 0.0}))
    assert np.array_equal(plain(hq, np.random.default_rng(5)).lq, explicit(hq, np.random.default_rng(5)).lq)


def test_clean_x2_test_setting_is_a_plain_half_resolution_face():
    from dfdnet.data import degradations as deg
    from dfdnet.data.degradation_pipeline import DegradationPipeline
    from dfdnet.data.testset import SETTINGS, setting_rng

    hq = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    sample = DegradationPipeline(SETTINGS['clean_x2'])(hq, setting_rng(0, 'clean_x2', 'a.png'))
    assert sample.params == {'scale': 2.0}
    assert np.array_equal(sample.small, deg.resize(hq, size=(16, 16)))
    assert np.array_equal(sample.lq, deg.resize(sample.small, size=(32, 32)))
