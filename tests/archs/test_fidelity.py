"""Network interpolation (--fidelity): weights, partial sharp checkpoints, non-finite weights, and
which model folder provides a sharp counterpart."""
import json

import pytest
import torch

from conftest import write_random_dictionaries
from dfdnet import CheckpointError, GeneratorConfig, load_generator
from dfdnet.archs.checkpoint import read_checkpoint, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator
from dfdnet.models.export import changed_modules, export_model
from dfdnet.pipeline.photo import resolve_fidelity

CONFIG = GeneratorConfig(dft_levels=(2, 3), width=8, image_size=128)


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    """A generator, a copy whose decoder moved (the 'sharp' fine-tune, saved partially) and dictionaries."""
    folder = tmp_path_factory.mktemp('fidelity')
    dicts = write_random_dictionaries(folder / 'dicts', num_atoms=3, config=CONFIG)
    torch.manual_seed(0)
    base = DFDNetGenerator(CONFIG)
    sharp = DFDNetGenerator(CONFIG)
    sharp.load_state_dict(base.state_dict())
    with torch.no_grad():
        for p in sharp.upsample4.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_generator(base, folder / 'net_g.pth')
    save_generator(sharp, folder / 'sharp_partial.pth', modules=changed_modules(base, sharp))
    return folder, dicts, base, sharp


def _folded(model):
    clone = DFDNetGenerator(model.config)
    clone.load_state_dict(model.state_dict())
    return clone.eval().fold_spectral_norm().state_dict()


def test_partial_checkpoint_holds_only_the_changed_modules(pair):
    folder, _, _, _ = pair
    state, _, _ = read_checkpoint(folder / 'sharp_partial.pth')
    assert {k.split('.')[0] for k in state} == {'upsample4'}
    assert torch.load(folder / 'sharp_partial.pth', weights_only=True)['modules'] == ['upsample4']


@pytest.mark.parametrize('fidelity', [0.0, 0.3, 1.0])
def test_weights_are_interpolated(pair, fidelity):
    folder, dicts, base, sharp = pair
    model = load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth',
                           fidelity=fidelity)
    a, b = _folded(base), _folded(sharp)
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, fidelity * a[key] + (1 - fidelity) * b[key], rtol=1e-5, atol=1e-6)
    moved = [k for k in a if not torch.equal(a[k], b[k])]
    assert moved and all(k.startswith('upsample4.') for k in moved)


def test_outputs_move_between_the_two_models(pair):
    folder, dicts, _, _ = pair
    image = torch.rand(1, 3, 128, 128) * 2 - 1
    boxes = torch.tensor([[[40, 50, 60, 66], [68, 50, 88, 66], [56, 60, 72, 82], [48, 84, 80, 100]]])
    outs = {}
    with torch.no_grad():
        for w in (0.0, 0.5, 1.0):
            outs[w] = load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth',
                                     fidelity=w)(image, boxes)
        plain = load_generator(folder / 'net_g.pth', dicts)(image, boxes)
    assert torch.equal(outs[1.0], plain)
    d_half, d_full = (outs[0.5] - plain).abs().mean(), (outs[0.0] - plain).abs().mean()
    assert 0 < d_half < d_full


def test_bad_fidelity_and_foreign_sharp_checkpoint(pair, tmp_path):
    folder, dicts, _, _ = pair
    with pytest.raises(ValueError, match='fidelity must be within'):
        load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=folder / 'sharp_partial.pth', fidelity=1.5)
    other = DFDNetGenerator(GeneratorConfig(dft_levels=(2, 3), width=16, image_size=128))
    save_generator(other, tmp_path / 'other.pth', modules=['upsample4'])
    with pytest.raises(CheckpointError, match='other.pth: upsample4.* has shape'):
        load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=tmp_path / 'other.pth', fidelity=0.5)


def test_non_finite_weights_are_refused_naming_the_file(pair, tmp_path):
    folder, dicts, base, _ = pair
    broken = DFDNetGenerator(CONFIG)
    broken.load_state_dict(base.state_dict())
    with torch.no_grad():
        broken.upsample4[0].weight_orig.view(-1)[0] = float('nan')
    save_generator(broken, tmp_path / 'nan.pth')
    with pytest.raises(CheckpointError, match=r'nan\.pth: 1 weight tensor\(s\) hold NaN or Inf'):
        load_generator(tmp_path / 'nan.pth', dicts)
    with pytest.raises(CheckpointError, match='nan.pth'):
        load_generator(folder / 'net_g.pth', dicts, sharp_checkpoint=tmp_path / 'nan.pth', fidelity=0.5)


def test_export_writes_the_sharp_part_and_its_default(pair, tmp_path):
    folder, dicts, _, _ = pair
    record = export_model(folder / 'net_g.pth', dicts, tmp_path / 'model', weights='int8',
                          sharp_checkpoint=folder / 'sharp_partial.pth', default_fidelity=0.4)
    assert record['fidelity']['sharp_modules'] == ['upsample4'] and record['fidelity']['default'] == 0.4
    assert 'net_g_sharp.pth' in record['files']
    sharp, fidelity = resolve_fidelity(tmp_path / 'model' / 'net_g.pth')
    assert sharp == tmp_path / 'model' / 'net_g_sharp.pth' and fidelity == 0.4
    assert resolve_fidelity(tmp_path / 'model' / 'net_g.pth', 1.0)[1] == 1.0
    # exported again without a fine-tune: the stale sharp part goes
    record = export_model(folder / 'net_g.pth', dicts, tmp_path / 'model', weights='int8')
    assert 'fidelity' not in record and not (tmp_path / 'model' / 'net_g_sharp.pth').exists()
    assert resolve_fidelity(tmp_path / 'model' / 'net_g.pth') == (None, 1.0)


def test_fidelity_needs_a_sharp_counterpart(pair, tmp_path):
    folder, _, _, _ = pair
    with pytest.raises(ValueError, match='--fidelity 0.5 needs a sharp counterpart'):
        resolve_fidelity(folder / 'sharp_partial.pth', 0.5)
    with pytest.raises(ValueError, match='--sharp_checkpoint needs --fidelity'):
        resolve_fidelity(folder / 'net_g.pth', None, folder / 'sharp_partial.pth')
    assert resolve_fidelity(folder / 'net_g.pth', 0.2, folder / 'sharp_partial.pth') == (folder / 'sharp_partial.pth', 0.2)
    (tmp_path / 'net_g.pth').write_bytes(b'')
    (tmp_path / 'net_g_sharp.pth').write_bytes(b'')
    (tmp_path / 'model.json').write_text(json.dumps({'fidelity': {'default': 'high'}}))
    with pytest.raises(ValueError, match='model.json: cannot read its default fidelity'):
        resolve_fidelity(tmp_path / 'net_g.pth')
