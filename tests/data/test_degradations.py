"""Degradation primitives: shapes, ranges, identity cases, measured noise, JPEG, kernels."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from dfdnet.data import degradations as deg


def _smooth_image(height=64, width=48, seed=0) -> np.ndarray:
    """A smooth RGB test image in [0.1, 0.9] (gradients + a disc) with fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 3) ** 2).astype(np.float32)
    img = np.stack([xx / width, yy / height, disc], axis=-1)
    img = 0.1 + 0.7 * img + 0.1 * rng.random((height, width, 1), dtype=np.float32)
    return img.astype(np.float32)


def test_gaussian_blur_identity_range_and_smoothing():
    img = _smooth_image()
    before = img.copy()
    assert np.array_equal(deg.gaussian_blur(img, 0), img)
    out = deg.gaussian_blur(img, 2.0)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.array_equal(img, before), 'input must not be modified'
    assert out.min() >= img.min() - 1e-6 and out.max() <= img.max() + 1e-6
    # blurring removes high-frequency energy and keeps the mean (reflect border)
    assert np.abs(np.diff(out, axis=1)).mean() < 0.5 * np.abs(np.diff(img, axis=1)).mean()
    assert abs(out.mean() - img.mean()) < 5e-3
    # the explicit kernel path gives the same result as the separable OpenCV blur
    same = deg.filter_kernel(img, deg.gaussian_kernel(2.0))
    np.testing.assert_allclose(same, out, atol=1e-5)
    with pytest.raises(ValueError, match='odd'):
        deg.gaussian_blur(img, 1.0, kernel_size=4)


def test_filter_kernel_identity_shift_and_flip():
    img = _smooth_image()
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    np.testing.assert_allclose(deg.filter_kernel(img, delta), img, atol=1e-7)
    # a true convolution with a delta one pixel right of centre shifts the image right by one
    shift = np.zeros((3, 3))
    shift[1, 2] = 1
    out = deg.filter_kernel(img, shift)
    np.testing.assert_allclose(out[:, 1:], img[:, :-1], atol=1e-7)
    with pytest.raises(ValueError, match='2-D'):
        deg.filter_kernel(img, np.ones(3))


def test_resize_scale_size_and_identity():
    img = _smooth_image(64, 48)
    small = deg.resize(img, scale=0.25)
    assert small.shape == (16, 12, 3) and small.dtype == np.float32
    assert 0.0 <= small.min() and small.max() <= 1.0
    back = deg.resize(small, size=(64, 48))
    assert back.shape == img.shape
    assert np.array_equal(deg.resize(img, scale=1.0), img)
    assert deg.resize(img, size=(10, 20), interpolation='nearest').shape == (10, 20, 3)
    # a constant image stays constant under every interpolation
    const = np.full((20, 20, 3), 0.3, np.float32)
    for name in deg.INTERPOLATIONS:
        np.testing.assert_allclose(deg.resize(const, scale=1 / 3.3, interpolation=name), 0.3, atol=1e-5)
    with pytest.raises(ValueError, match='exactly one'):
        deg.resize(img)
    with pytest.raises(ValueError, match='interpolation'):
        deg.resize(img, scale=2, interpolation='cubic-ish')


def test_noise_sigma_measured_back_and_seeded():
    img = np.full((256, 256, 3), 0.5, np.float32)
    out = deg.add_gaussian_noise(img, 10.0, np.random.default_rng(3))
    residual_255 = (out - img) * 255.0
    assert abs(residual_255.std() - 10.0) < 0.1
    assert abs(residual_255.mean()) < 0.1
    again = deg.add_gaussian_noise(img, 10.0, np.random.default_rng(3))
    assert np.array_equal(out, again)
    other = deg.add_gaussian_noise(img, 10.0, np.random.default_rng(4))
    assert not np.array_equal(out, other)
    assert np.array_equal(deg.add_gaussian_noise(img, 0, np.random.default_rng(0)), img)
    clipped = deg.add_gaussian_noise(np.zeros((8, 8, 3), np.float32), 50, np.random.default_rng(0))
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0
    with pytest.raises(TypeError, match='Generator'):
        deg.add_gaussian_noise(img, 5.0, 0)


def test_jpeg_error_decreases_with_quality():
    img = _smooth_image(96, 96, seed=1)
    errors = [float(np.abs(deg.jpeg_compress(img, q) - img).mean()) for q in (10, 40, 80, 100)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.01
    out = deg.jpeg_compress(img, 40)
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    with pytest.raises(ValueError, match='quality'):
        deg.jpeg_compress(img, 101)


def test_bad_image_inputs_are_rejected():
    with pytest.raises(TypeError, match='uint8'):
        deg.gaussian_blur(np.zeros((4, 4, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        deg.jpeg_compress(np.zeros((4, 4), np.float32), 50)


def test_shared_motion_kernels_sum_to_one(shared_data):
    kernels = deg.load_motion_kernels(shared_data / 'degradation' / 'motion_kernels')
    assert len(kernels) == 32
    assert list(kernels) == sorted(kernels)
    for name, kernel in kernels.items():
        assert kernel.ndim == 2 and kernel.min() >= 0, name
        assert abs(kernel.sum() - 1.0) < 1e-9, name
    blurred = deg.filter_kernel(_smooth_image(), kernels['m_01'])
    assert 0.0 <= blurred.min() and blurred.max() <= 1.0


def test_kernel_formats_and_clear_errors(tmp_path):
    kernel = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float64)
    scipy.io.savemat(tmp_path / 'a.mat', {'kernel': kernel})
    np.save(tmp_path / 'b.npy', kernel * 3)
    import cv2
    cv2.imwrite(str(tmp_path / 'c.png'), (kernel * 30).astype(np.uint8))
    kernels = deg.load_motion_kernels(tmp_path)
    assert list(kernels) == ['a', 'b', 'c']
    for value in kernels.values():
        np.testing.assert_allclose(value, kernel / 8.0)

    scipy.io.savemat(tmp_path / 'bad.mat', {'psf': kernel})
    with pytest.raises(ValueError, match=r'bad\.mat.*no variable "kernel"'):
        deg.load_motion_kernels(tmp_path)
    (tmp_path / 'bad.mat').write_bytes(b'not a mat file')
    with pytest.raises(ValueError, match=r'bad\.mat'):
        deg.load_kernel(tmp_path / 'bad.mat')
    np.save(tmp_path / 'zero.npy', np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r'zero\.npy.*sums to'):
        deg.load_kernel(tmp_path / 'zero.npy')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no kernel files'):
        deg.load_motion_kernels(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='not found'):
        deg.load_motion_kernels(tmp_path / 'missing')
