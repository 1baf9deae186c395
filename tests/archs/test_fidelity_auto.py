"""Per-face fidelity (--fidelity auto): the input-sharpness measure, the rule, batches whose faces get
different fidelities, the blend moving weights in place, and model folders whose default is auto."""
import cv2
import numpy as np
import pytest
import torch

from test_fidelity import pair  # noqa: F401 (the fixture: a generator, its partial fine-tune, dictionaries)
from dfdnet import load_generator
from dfdnet.archs.fidelity import AutoFidelity, input_sharpness, restore_batch
from dfdnet.models.export import export_model
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import resolve_fidelity

BOXES = torch.tensor([[[40, 50, 60, 66], [68, 50, 88, 66], [56, 60, 72, 82], [48, 84, 80, 100]]])


def _texture(size=512, seed=0):
    """(size, size, 3) uint8: a face-like image with detail at every scale (1/f noise)."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((size, size)))
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
    image = np.real(np.fft.ifft2(spectrum / np.maximum(f, 1 / size)))
    image = (image - image.mean()) / image.std() * 40 + 128
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _tensor(images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def _down_up(image, factor):
    small = cv2.resize(image, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, image.shape[:2][::-1], interpolation=cv2.INTER_CUBIC)


def test_sharpness_falls_with_degradation_and_ignores_contrast():
    sharp = _texture()
    scores = input_sharpness(_tensor([sharp, _down_up(sharp, 2), _down_up(sharp, 4), _down_up(sharp, 8),
                                      cv2.GaussianBlur(sharp, (0, 0), 3)]))
    assert all(a > b for a, b in zip(scores[:4], scores[1:4])), scores
    rule = AutoFidelity()
    assert scores[3] < rule.sharp_below < rule.faithful_above < scores[1]  # x8 at the sharp end, x2 faithful
    noisy_x4 = _down_up(np.clip(cv2.resize(sharp, (128, 128), interpolation=cv2.INTER_AREA)
                                + np.random.default_rng(1).normal(0, 10, (128, 128, 3)), 0, 255).astype(np.uint8), 4)
    assert input_sharpness(_tensor([noisy_x4]))[0] < rule.sharp_below  # noise before upsampling is not detail
    low_contrast = (sharp.astype(np.float32) * 0.5 + 64).round().astype(np.uint8)
    assert input_sharpness(_tensor([low_contrast]))[0] == pytest.approx(scores[0].item(), rel=0.02)
    # other sizes are measured at 512 px: a 1024-px face as sharp, a 256-px one as an x2 upsampling
    big = cv2.resize(_texture(1024, seed=2), None, fx=1, fy=1)
    half = cv2.resize(sharp, (256, 256), interpolation=cv2.INTER_AREA)
    assert input_sharpness(_tensor([big]))[0] > rule.faithful_above
    assert input_sharpness(_tensor([half]))[0] == pytest.approx(scores[1].item(), rel=0.3)
    with pytest.raises(ValueError, match=r'expected \(B, 3, S, S\)'):
        input_sharpness(torch.zeros(1, 1, 64, 64))


def test_rule_maps_sharpness_to_fidelity():
    rule = AutoFidelity(sharp_below=0.05, faithful_above=0.15, lowest=0.2, step=0.05)
    sharp = _texture()
    images = _tensor([sharp, _down_up(sharp, 8)])
    faithful, degraded = rule(images)
    assert faithful == 1.0 and degraded == pytest.approx(0.2 + 0.8 * min(max(
        (input_sharpness(images[1:])[0].item() - 0.05) / 0.1, 0), 1), abs=0.026)
    assert all(abs(v / 0.05 - round(v / 0.05)) < 1e-6 for v in (faithful, degraded))
    for bad, match in [(dict(lowest=1.5), 'lowest'), (dict(sharp_below=0.4), 'sharp_below'), (dict(step=0), 'step')]:
        with pytest.raises(ValueError, match=match):
            AutoFidelity(**bad)


def test_each_face_of_a_batch_gets_its_own_fidelity(pair):
    folder, dicts, _, _ = pair
    sharp_face = cv2.resize(_texture(), (128, 128), interpolation=cv2.INTER_AREA)
    images = _tensor([sharp_face, _down_up(sharp_face, 8), sharp_face])
    boxes = BOXES.repeat(3, 1, 1)
    low, high = sorted(input_sharpness(images[:2]).tolist())  # (at 128 px the rule's edges are set here)
    rule = AutoFidelity(sharp_below=low + (high - low) / 4, faithful_above=low + (high - low) / 2, lowest=0.0)
    expected = rule(images)
    assert expected[0] == expected[2] and sorted(expected[:2]) == [0.0, 1.0]
    model = load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth', fidelity=rule)
    with torch.no_grad():
        output, fidelities = restore_batch(model, images, boxes)
        for i, w in enumerate(expected):  # the same as each face alone at its fixed fidelity
            alone = load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth', fidelity=w)
            torch.testing.assert_close(output[i:i + 1], alone(images[i:i + 1], boxes[i:i + 1]), rtol=1e-4, atol=1e-5)
    assert fidelities == expected
    # a fixed fidelity reports itself; a plain generator reports none
    fixed = load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth', fidelity=0.3)
    assert restore_batch(fixed, images, boxes)[1] == [0.3] * 3
    assert restore_batch(load_generator(folder / 'net_g.pth', dicts), images, boxes)[1] is None


def test_blend_moves_weights_in_place_and_back(pair):
    folder, dicts, _, _ = pair
    model = load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth', fidelity=1.0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    blend = model.fidelity_blend
    assert blend.keys and all(k.startswith('upsample4.') for k in blend.keys)
    blend.apply(model, 0.0)
    zero = load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth', fidelity=0.0)
    for key, value in zero.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)
    blend.apply(model, 1.0)
    for key, value in start.items():
        torch.testing.assert_close(model.state_dict()[key], value)
    with pytest.raises(ValueError, match='fidelity must be within'):
        blend.apply(model, -0.1)
    with pytest.raises(ValueError, match='auto needs a sharp checkpoint'):
        load_generator(folder / 'net_g.pth', dicts, fidelity='auto')


def test_model_folder_with_auto_default(pair, tmp_path):
    folder, dicts, _, _ = pair
    export_model(folder / 'net_g.pth', dicts, tmp_path / 'model', sharp_checkpoint=folder / 'sharp_partial.pth',
                 default_fidelity='auto', auto_fidelity=AutoFidelity(lowest=0.25))
    sharp, rule = resolve_fidelity(tmp_path / 'model' / 'net_g.pth')
    assert sharp == tmp_path / 'model' / 'net_g_sharp.pth' and rule == AutoFidelity(lowest=0.25)
    assert resolve_fidelity(tmp_path / 'model' / 'net_g.pth', 0.7)[1] == 0.7
    assert resolve_fidelity(tmp_path / 'model' / 'net_g.pth', 'auto')[1] == AutoFidelity(lowest=0.25)
    with pytest.raises(ValueError, match='--fidelity auto needs a sharp counterpart'):
        resolve_fidelity(folder / 'sharp_partial.pth', 'auto')


@pytest.mark.parametrize('value, expected', [('auto', 'auto'), ('0.3', 0.3), (1, 1.0)])
def test_option_accepts_auto_or_a_number(value, expected):
    assert RestoreOptions(fidelity=value).fidelity == expected


@pytest.mark.parametrize('value, match', [('sharp', "a number within \\[0, 1\\] or 'auto'"), ('1.5', 'within')])
def test_option_refuses_other_values(value, match):
    with pytest.raises(ValueError, match=match):
        RestoreOptions(fidelity=value)
