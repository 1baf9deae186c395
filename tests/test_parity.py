"""The generator against a literal re-statement of the released forward, on real faces.

Random weights in the released layout (spectral-norm vectors converged, confidence ~ 1 so the
chosen atoms matter), a random K = 16 dictionary in the released .npy layout, real low-quality
aligned faces with their released landmark files. The updated features must agree at every
level, the output within 2/255 per pixel, and a batch must agree with single-face calls.
"""
import numpy as np
import pytest
import torch

from conftest import make_random_released_model, write_random_dictionaries
from dfdnet import component_boxes, load_generator

pytestmark = pytest.mark.slow


def _read_face(path):
    import cv2
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    rgb = cv2.resize(bgr, (512, 512))[:, :, ::-1].astype(np.float32) / 255
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None] * 2 - 1


@pytest.fixture(scope='module')
def outputs(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp('parity')
    dict_dir = write_random_dictionaries(root / 'dicts', num_atoms=16, seed=7)
    reference = make_random_released_model(seed=11, dict_dir=dict_dir)
    torch.save(reference.state_dict(), root / 'latest_net_G.pth')
    model = load_generator(root / 'latest_net_G.pth', dict_dir)
    lq = shared_data / 'faces_lq' / 'dfdnet_realvgg'
    marks = shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks'
    names = sorted(p.name for p in lq.iterdir() if (marks / f'{p.name}.txt').is_file())[:2]
    images = torch.cat([_read_face(lq / f) for f in names])
    boxes = np.stack([component_boxes(np.loadtxt(marks / f'{f}.txt')) for f in names])
    with torch.inference_mode():
        ours_batch = model(images, boxes)
        ours_single = torch.cat([model(images[i:i + 1], boxes[i:i + 1]) for i in range(2)])
        released = torch.cat([reference(images[i:i + 1], boxes[i]) for i in range(2)])
        _, ours_updated = model.encode(images[1:], boxes[1:])
        released_updated = reference(images[1:], boxes[1], return_updated=True)
        other = write_random_dictionaries(root / 'other', num_atoms=16, seed=8)
        changed = make_random_released_model(seed=11, dict_dir=other)(images[1:], boxes[1], return_updated=True)
    return dict(batch=ours_batch, single=ours_single, released=released, changed=changed,
                ours_updated=ours_updated, released_updated=released_updated)


def to_255(x):
    return ((x + 1) / 2 * 255).clamp(0, 255)


def test_outputs_are_informative(outputs):
    out = outputs['released']
    assert out.abs().max() < 0.999 and out.std() > 0.01  # not saturated, not constant
    # another dictionary changes the updated features a lot: a wrong atom choice would show
    for changed, ref in zip(outputs['changed'], outputs['released_updated']):
        assert (changed - ref).abs().max() > 0.1 * ref.abs().max()


def test_updated_features_match_at_every_level(outputs):
    for ours, ref in zip(outputs['ours_updated'], outputs['released_updated']):
        scale = ref.abs().max()
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-4 * float(scale))


def test_matches_released_within_2_over_255(outputs):
    diff = (to_255(outputs['batch']) - to_255(outputs['released'])).abs()
    assert diff.max() <= 2.0, f'max |diff| = {diff.max():.3f} / 255'
    assert diff.mean() < 0.05


def test_batch_equals_single_calls(outputs):
    torch.testing.assert_close(outputs['batch'], outputs['single'], rtol=0, atol=1e-5)
