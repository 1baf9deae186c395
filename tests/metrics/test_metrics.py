"""Metric functions on known values: PSNR/SSIM (vs analytic values and scikit-image), Y channel,
NIQE, dlib identity and landmark distance, optional LPIPS."""
from __future__ import annotations

import importlib.util
import math

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dfdnet.metrics import calculate_psnr, calculate_ssim, rgb_to_y


def _textured(seed=0, size=96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min())
    return np.rint(img * 255).astype(np.uint8)


@pytest.fixture(scope='module')
def face_images(shared_data):
    def read(name):
        return cv2.cvtColor(cv2.imread(str(shared_data / 'faces_hq' / 'ffhq_gpen' / name)), cv2.COLOR_BGR2RGB)
    return read('00000.png'), read('00003.png')


def test_identical_images_give_inf_psnr_and_unit_ssim():
    img = _textured()
    assert calculate_psnr(img, img) == math.inf
    assert calculate_psnr(img, img.copy(), test_y_channel=True) == math.inf
    assert calculate_ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert calculate_ssim(img, img, test_y_channel=True, crop_border=4) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_known_noise_level_matches_analytic_value():
    rng = np.random.default_rng(0)
    clean = np.full((256, 256, 3), 0.5)
    sigma = 10.0
    noisy = clean + rng.standard_normal(clean.shape) * sigma / 255.0
    assert noisy.min() > 0 and noisy.max() < 1  # no clipping at 12 sigma
    analytic = 10 * math.log10(255.0 ** 2 / sigma ** 2)  # 28.13 dB
    assert calculate_psnr(noisy, clean) == pytest.approx(analytic, abs=0.05)


def test_uint8_and_float_inputs_agree_and_bad_inputs_fail():
    a, b = _textured(0), _textured(1)
    assert calculate_psnr(a, b) == pytest.approx(calculate_psnr(a / 255.0, b / 255.0), rel=1e-12)
    assert calculate_ssim(a, b) == pytest.approx(calculate_ssim(a / 255.0, b.astype(np.float32) / 255.0), abs=1e-6)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        calculate_psnr(a.astype(np.float32), b.astype(np.float32))
    with pytest.raises(ValueError, match='different shapes'):
        calculate_ssim(a, b[:50])
    with pytest.raises(ValueError, match='crop_border'):
        calculate_psnr(a, b, crop_border=48)


def test_psnr_ssim_match_scikit_image_with_and_without_border():
    a, b = _textured(2), _textured(3)
    b = np.clip(a.astype(int) + (b.astype(int) - 128) // 4, 0, 255).astype(np.uint8)
    assert calculate_psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)
    assert calculate_ssim(a, b) == pytest.approx(structural_similarity(a, b, **kwargs), abs=1e-7)
    c = 5
    assert calculate_ssim(a, b, crop_border=c) == pytest.approx(
        structural_similarity(a[c:-c, c:-c], b[c:-c, c:-c], **kwargs), abs=1e-7)
    assert calculate_psnr(a, b, crop_border=c) == pytest.approx(
        peak_signal_noise_ratio(a[c:-c, c:-c], b[c:-c, c:-c], data_range=255), abs=1e-10)


def test_y_channel_matches_hand_computation():
    # BT.601 studio range: Y = 16 + 65.481 R + 128.553 G + 24.966 B, with R, G, B in [0, 1]
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((16, 16, 3), 128, np.uint8)
    y_red = 16 + 65.481
    y_grey = 16 + (65.481 + 128.553 + 24.966) * 128 / 255
    np.testing.assert_allclose(rgb_to_y(red.astype(np.float64)), y_red)
    np.testing.assert_allclose(rgb_to_y(grey[..., ::-1].astype(np.float64), 'bgr'), y_grey)
    expected = 10 * math.log10(255 ** 2 / (y_red - y_grey) ** 2)
    assert calculate_psnr(red, grey, test_y_channel=True) == pytest.approx(expected, abs=1e-9)
    # SSIM on the Y channel equals scikit-image's SSIM of the two Y planes
    a, b = _textured(4), _textured(5)
    ya, yb = rgb_to_y(a.astype(np.float64)), rgb_to_y(b.astype(np.float64))
    ref = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert calculate_ssim(a, b, test_y_channel=True) == pytest.approx(ref, abs=1e-7)


def test_matlab_imresize_preserves_constants_and_ramps():
    from dfdnet.metrics.niqe import imresize_matlab

    np.testing.assert_allclose(imresize_matlab(np.full((20, 14), 7.0), 0.5), 7.0, atol=1e-12)
    ramp = np.tile(np.arange(40, dtype=np.float64), (40, 1))
    out = imresize_matlab(ramp, 0.5)
    assert out.shape == (20, 20)
    # output pixel j is centred on input 2j + 0.5; the (antialiased) cubic reproduces linear functions
    np.testing.assert_allclose(out[:, 3:-3], np.tile(2 * np.arange(3, 17) + 0.5, (20, 1)), atol=1e-9)


def test_niqe_is_plausible_and_worse_when_blurred(shared_data, face_images):
    from dfdnet.metrics.niqe import calculate_niqe, load_pristine_model

    model = load_pristine_model(shared_data / 'metrics' / 'niqe_pris_params.npz')
    sharp = face_images[0]
    score = calculate_niqe(sharp, model)
    assert math.isfinite(score) and 2.0 < score < 8.0
    assert calculate_niqe(sharp, model) == score  # deterministic
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    assert calculate_niqe(blurred, model) > score + 2.0
    with pytest.raises(ValueError, match='at least 96'):
        calculate_niqe(sharp[:64, :64], model)


def test_niqe_parameter_file_errors_name_the_file(tmp_path):
    from dfdnet.metrics.niqe import load_pristine_model

    with pytest.raises(FileNotFoundError, match='missing.npz'):
        load_pristine_model(tmp_path / 'missing.npz')
    np.savez(tmp_path / 'partial.npz', mu_pris_param=np.zeros((1, 36)))
    with pytest.raises(ValueError, match=r'partial\.npz.*cov_pris_param'):
        load_pristine_model(tmp_path / 'partial.npz')


def test_identity_and_landmark_distance_on_real_faces(face_images):
    from dfdnet.metrics.face_dlib import DlibFaceModels
    from dfdnet.metrics.identity import identity_similarity
    from dfdnet.metrics.landmark_distance import landmark_distance

    models = DlibFaceModels()
    face, other = face_images
    same = identity_similarity(face, face, models)
    assert same.cosine == pytest.approx(1.0, abs=1e-6) and same.distance == pytest.approx(0.0, abs=1e-6)
    low = cv2.resize(cv2.resize(face, (128, 128), interpolation=cv2.INTER_AREA), (512, 512),
                     interpolation=cv2.INTER_CUBIC)
    degraded = identity_similarity(low, face, models)
    different = identity_similarity(other, face, models)
    assert 1.0 > degraded.cosine > different.cosine
    assert different.distance > degraded.distance
    assert landmark_distance(face, face, models) == 0.0
    assert 0.0 < landmark_distance(low, face, models) < landmark_distance(other, face, models)


def test_normalised_landmark_distance_by_hand():
    from dfdnet.metrics.landmark_distance import normalised_landmark_distance

    gt = np.zeros((68, 2))
    gt[36] = (100, 200)
    gt[45] = (200, 200)  # inter-ocular distance 100
    pred = gt + np.array([3.0, 4.0])  # every point 5 px off
    assert normalised_landmark_distance(pred, gt) == pytest.approx(0.05)
    with pytest.raises(ValueError, match='68, 2'):
        normalised_landmark_distance(pred[:5], gt)


def test_face_box_falls_back_to_aligned_box_when_no_face():
    from dfdnet.face.landmarks import aligned_face_box
    from dfdnet.metrics.face_dlib import DlibFaceModels

    box = DlibFaceModels().face_box(np.full((256, 256, 3), 127, np.uint8))
    assert not box.detected
    assert np.allclose(box.as_array(), aligned_face_box(256), atol=0.5)


@pytest.mark.skipif(importlib.util.find_spec('lpips') is not None, reason='lpips is installed here')
def test_lpips_unavailable_is_a_clear_skip():
    from dfdnet.metrics.learned import LpipsMetric, MetricUnavailable

    with pytest.raises(MetricUnavailable, match='LPIPS skipped.*lpips'):
        LpipsMetric()


def test_component_mask_and_masked_psnr():
    from dfdnet.metrics import component_mask, masked_psnr

    mask = component_mask([[2, 1, 5, 3], [4, 2, 12, 20], [-3, -3, 1, 1], [6, 6, 6, 9]], 8, 10)
    assert mask.shape == (8, 10) and mask.sum() == 6 + 36 - 1 + 1  # boxes clipped, overlap counted once, an empty box
    assert mask[1, 2] and not mask[0, 2] and mask[7, 9] and mask[0, 0] and not mask[1, 1]
    gt = np.zeros((8, 10, 3), np.uint8)
    out = gt.copy()
    out[~mask] = 200  # errors outside the boxes do not count
    assert masked_psnr(out, gt, mask) == float('inf')
    out[mask] = 5
    assert masked_psnr(out, gt, mask) == pytest.approx(10 * np.log10(255 ** 2 / 25))
    with pytest.raises(ValueError, match='empty'):
        masked_psnr(out, gt, np.zeros((8, 10), bool))


def test_validation_component_psnr_skips_faces_without_boxes():
    import torch

    from dfdnet.models.validation import score_generator

    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    lq = (gt + 0.1 * torch.randn(2, 3, 32, 32, generator=gen)).clamp(-1, 1)
    boxes = torch.tensor([[[4, 4, 12, 12]] * 4, [[40, 40, 50, 50]] * 4])  # face 1: all boxes off the image
    scores = score_generator(lambda x, b: x, [{'lq': lq, 'gt': gt, 'boxes': boxes, 'path': ['a', 'b']}])
    assert math.isfinite(scores.component_psnr[0]) and math.isnan(scores.component_psnr[1])
    assert scores.means()['component_psnr'] == scores.component_psnr[0] and len(scores.psnr) == 2
