"""The generator against a literal re-statement of the released forward, on real faces.

Random weights in the released layout (spectral-norm vectors converged, confidence ~ 1 so the
chosen atoms matter), a random K = 16 dictionary in the released .npy layout, real low-quality
aligned face with its released landmark file. The updated features must agree at every level
and the output within 2/255 per pixel. A batch must agree with single-face calls (a narrow model:
batching does not depend on the width, and a released-width forward costs ~10 s here).
"""
import pytest
import torch

from conftest import make_random_released_model, real_aligned_faces, write_random_dictionaries
from dfdnet import load_generator
from dfdnet.archs.checkpoint import convert_released_state_dict, load_state_strict
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.dictionary import load_dictionaries

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def faces(shared_data):
    """(images (2, 3, 512, 512) in [-1, 1], boxes (2, 4, 4)) of two real low-quality aligned faces."""
    return real_aligned_faces(shared_data, 2)


def _style_inputs(blocks):
    """Forward pre-hooks on the four decoder up-blocks (coarsest first) that keep the updated
    feature each receives, so that one forward gives both the output and the updated features."""
    seen = {}
    for i, block in enumerate(blocks):
        block.register_forward_pre_hook(lambda _m, args, i=i: seen.__setitem__(i, args[1]))
    return seen


@pytest.fixture(scope='module')
def outputs(faces, tmp_path_factory):
    root = tmp_path_factory.mktemp('parity')
    dict_dir = write_random_dictionaries(root / 'dicts', num_atoms=16, seed=7)
    reference = make_random_released_model(seed=11, dict_dir=dict_dir)
    images, boxes = faces[0][1:], faces[1][1:]
    seen = _style_inputs([reference.up0, reference.up1, reference.up2, reference.up3])
    with torch.inference_mode():
        released = reference(images, boxes[0])
    released_updated = [seen[3 - level] for level in range(4)]  # up0 takes the stride-16 level
    # Converted in memory as load_generator converts a released file (file loading: test_checkpoint.py),
    # with one ~1 GB network alive at a time: the suite stays within its memory budget.
    state = convert_released_state_dict(reference.state_dict())
    del reference
    model = DFDNetGenerator(GeneratorConfig())
    load_state_strict(model, state, source='released state')
    del state
    model.eval().fold_spectral_norm().to(memory_format=torch.channels_last)  # as load_generator does
    model.set_dictionaries(load_dictionaries(dict_dir, model.config.dictionary_layout()))
    seen = _style_inputs([model.upsample0, model.upsample1, model.upsample2, model.upsample3])
    with torch.inference_mode():
        ours = model(images, boxes)
        ours_updated = [seen[3 - level] for level in range(4)]
        model.set_dictionaries(load_dictionaries(write_random_dictionaries(root / 'other', num_atoms=16, seed=8),
                                                 model.config.dictionary_layout()))
        _, changed = model.encode(images, boxes)
    return dict(ours=ours, released=released, changed=changed, ours_updated=ours_updated,
                released_updated=released_updated)


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
    diff = (to_255(outputs['ours']) - to_255(outputs['released'])).abs()
    assert diff.max() <= 2.0, f'max |diff| = {diff.max():.3f} / 255'
    assert diff.mean() < 0.05


def test_batch_equals_single_calls(faces, tmp_path):
    from conftest import SMALL_512, write_random_generator
    from dfdnet.archs.dfdnet_arch import GeneratorConfig

    config = GeneratorConfig(**SMALL_512)
    model = load_generator(write_random_generator(tmp_path / 'g.pth', config=config),
                           write_random_dictionaries(tmp_path / 'dicts', num_atoms=16, seed=7, config=config))
    images, boxes = faces
    with torch.inference_mode():
        batch = model(images, boxes)
        single = torch.cat([model(images[i:i + 1], boxes[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(batch, single, rtol=0, atol=1e-5)
